/** The local artifact service can move blobs at a given rate, so benchmarks can take the shape of GitHub's network. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';

const MB = 1000 * 1000;
const savedEnv = { ...process.env };
let service: ArtifactService;
let artifact: typeof import('../../src/artifacts/index.ts');
let work: string;

beforeAll(async () => {
  service = await startArtifactService({ rate: { upload: 4 * MB, download: 8 * MB } });
  work = await mkdtemp(path.join(tmpdir(), 'network-shape-'));
  Object.assign(process.env, service.env(1));
  artifact = await import('../../src/artifacts/index.ts');
});

afterAll(async () => {
  process.env = savedEnv;
  await service?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a rate-limited artifact service', () => {
  // A lower bound only: the limit guarantees it, whatever else the machine is doing.
  it('takes at least size / rate to upload and to download, through the real library', async () => {
    const file = path.join(work, 'shaped.bin');
    await writeFile(file, randomBytes(2 * MB));
    let started = performance.now();
    await artifact.uploadFile(file, 'shaped', { overwrite: false });
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000 * (2 / 4) * 0.95);
    started = performance.now();
    const downloaded = await artifact.downloadFile('shaped', path.join(work, 'out'), {});
    await downloaded.downloaded;
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000 * (2 / 8) * 0.95);
    expect(downloaded.size).toBe(2 * MB);
  });
});
