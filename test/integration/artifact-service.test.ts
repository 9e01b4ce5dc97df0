/**
 * The local artifact service behaves as GitHub does where clients can tell: any repository, owner and name compared
 * without regard to case, and signed URLs whose signature is a fresh secret (clients mask it in every later log line).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';

const savedEnv = { ...process.env };
let service: ArtifactService;
let artifact: typeof import('../../src/artifact.ts');
let work: string;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'artifact-service-test-'));
  Object.assign(process.env, service.env(1));
  // Only now: @actions/github fixes its API URL (the service's random port) when first imported.
  artifact = await import('../../src/artifact.ts');
});

afterAll(async () => {
  process.env = savedEnv;
  await service?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function upload(runId: number, name: string, repository?: string): Promise<void> {
  Object.assign(process.env, service.env(runId, repository));
  const file = path.join(work, `${name}.bin`);
  await writeFile(file, randomBytes(1000));
  await artifact.uploadFile(file, name, { overwrite: false });
}

describe('the local artifact service', () => {
  it("serves any repository's runs, its owner and name compared without regard to case", async () => {
    await upload(31, 'charon-image', 'Wikid82/Charon');
    Object.assign(process.env, service.env(32, 'Wikid82/Charon'));
    for (const repository of ['Wikid82/Charon', 'wikid82/charon', 'WIKID82/CHARON']) {
      expect(await artifact.listArtifactNames({ runId: 31, repository, token: 'ghs_local' })).toEqual(['charon-image']);
    }
    // A run belongs to one repository: another repository's API does not show it.
    await expect(
      artifact.listArtifactNames({ runId: 31, repository: 'octo-org/octo-repo', token: 'ghs_local' }),
    ).rejects.toThrow(/Not Found/);
  });

  it('signs every URL with a fresh random signature, so the secret clients mask is never a word', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await upload(33, 'first');
      await upload(33, 'second');
      await (
        await artifact.downloadFile('first', await mkdtemp(path.join(work, 'download-')), {})
      ).downloaded;
    } finally {
      spy.mockRestore();
    }
    const masked = written
      .join('')
      .match(/^::add-mask::.*$/gm)
      ?.map((line) => line.slice('::add-mask::'.length));
    expect(masked, written.join('')).toBeDefined();
    // Two uploads and a download: three URLs, three secrets, none of them reused or readable.
    expect(new Set(masked).size).toBeGreaterThanOrEqual(3);
    for (const secret of masked!) expect(secret).toMatch(/^[0-9a-f]{32}$/);
  });
});
