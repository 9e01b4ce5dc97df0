/**
 * The local artifact service behaves as GitHub does where clients can tell: any repository, owner and name compared
 * without regard to case, and signed URLs whose signature is a fresh secret (clients mask it in every later log line).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

/** Calls `method` of the service's Twirp API as a job of `runId`; the answer must be 200. */
async function twirp(runId: number, method: string, body: Record<string, unknown>): Promise<unknown> {
  const env = service.env(runId);
  const response = await fetch(
    `${env.ACTIONS_RESULTS_URL}twirp/github.actions.results.api.v1.ArtifactService/${method}`,
    {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env.ACTIONS_RUNTIME_TOKEN}` },
      body: JSON.stringify({ workflow_run_backend_id: String(runId), workflow_job_run_backend_id: 'job', ...body }),
    },
  );
  expect(response.status, method).toBe(200);
  return response.json();
}

const blockId = (n: number) => Buffer.from(`block-${n}`).toString('base64');
const blockList = (ids: string[]) =>
  `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;

describe('the local artifact service', () => {
  it("commits a block list as Azure does: the blocks in the list's order, and a block never staged refused", async () => {
    const { signed_upload_url: upload } = (await twirp(34, 'CreateArtifact', { name: 'blocks', version: 4 })) as {
      signed_upload_url: string;
    };
    const blocks = [randomBytes(3000), randomBytes(5000), randomBytes(1)];
    for (const [n, block] of blocks.entries()) {
      const staged = await fetch(`${upload}&comp=block&blockid=${encodeURIComponent(blockId(n))}`, {
        method: 'PUT',
        body: block,
      });
      expect(staged.status).toBe(201);
    }
    const missing = await fetch(`${upload}&comp=blocklist`, {
      method: 'PUT',
      body: blockList([blockId(0), blockId(7)]),
    });
    expect(missing.status).toBe(400);
    expect(missing.headers.get('x-ms-error-code')).toBe('InvalidBlockList');
    // Out of the order they were staged in, one of them twice.
    const order = [2, 0, 1, 0];
    const committed = await fetch(`${upload}&comp=blocklist`, {
      method: 'PUT',
      headers: { 'x-ms-blob-content-type': 'application/octet-stream' },
      body: blockList(order.map(blockId)),
    });
    expect(committed.status).toBe(201);
    const expected = Buffer.concat(order.map((n) => blocks[n]!));
    await twirp(34, 'FinalizeArtifact', { name: 'blocks', size: String(expected.length) });
    // Downloaded from the blocks as committed, then from the one file the blocks are stitched into for tests.
    Object.assign(process.env, service.env(34));
    for (const round of ['blocks', 'stitched']) {
      if (round === 'stitched') expect(await readFile(service.blobPath(34, 'blocks'))).toEqual(expected);
      const into = await mkdtemp(path.join(work, 'blocks-'));
      const download = await artifact.downloadFile('blocks', into, {});
      await download.downloaded;
      expect(await readFile(download.file), round).toEqual(expected);
    }
  });

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
