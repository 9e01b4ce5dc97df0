import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { selectReferences } from '../../src/archive/canonical.ts';
import { writeTarball } from '../../src/tarball.ts';
import { dockerArchiveEntries, makeImage, packTar, sha256 } from '../support/fixtures.ts';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'handoff-tarball-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

describe('writeTarball', () => {
  it('writes, hashes and inspects a tarball in one pass', async () => {
    const tar = await packTar(dockerArchiveEntries([await makeImage(['example.com/app:1'])]));
    const file = path.join(directory, 'ok', 'image.tar');
    const written = await writeTarball(
      () => ({ stream: Readable.from([tar]), decode: [], finished: Promise.resolve(), phase: 'test' }),
      file,
      'none',
      undefined,
      { select: (report) => selectReferences(report, undefined) },
    );
    expect(written.digest).toBe(sha256(await readFile(file)));
    expect(written.tarBytes).toBe(tar.length);
    expect(written.report.references).toEqual(['example.com/app:1']);
    expect(await readdir(path.dirname(file))).toEqual(['image.tar']);
  });

  // A producer that exits (docker save failing) while its stream is still open: its error is the one reported,
  // it is never an unhandled rejection (which would crash the action with a stack trace), and nothing is left.
  it('reports a producer that fails before its stream ends, leaving no partial file', async () => {
    const file = path.join(directory, 'failed', 'image.tar.zst');
    const stream = new PassThrough();
    const failure = writeTarball(
      () => ({
        stream,
        decode: [],
        finished: Promise.reject(new UserError('`docker save` failed: no such image')),
        phase: 'test',
      }),
      file,
      'zstd',
      undefined,
      { select: (report) => selectReferences(report, undefined) },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.end(Buffer.alloc(300, 1));
    await expect(failure).rejects.toThrow('`docker save` failed: no such image');
    expect(await readdir(path.dirname(file))).toEqual([]);
  });
});
