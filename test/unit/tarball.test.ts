import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { selectReferences, type CanonicalOptions } from '../../src/archive/canonical.ts';
import { openTarball, writeTarball } from '../../src/tarball.ts';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { dockerArchiveEntries, makeImage, packTar, sha256 } from '../support/fixtures.ts';

const all: CanonicalOptions = { select: (report) => selectReferences(report, undefined) };
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

describe('openTarball reads only a regular file, without blocking', () => {
  it.each([
    ['a directory', async () => directory, /is a directory: expected an image tarball, a regular file/],
    [
      'a FIFO (which would block forever)',
      async () => {
        const fifo = path.join(directory, 'pipe.tar');
        execFileSync('mkfifo', [fifo]);
        return fifo;
      },
      /is a named pipe \(FIFO\): expected an image tarball/,
    ],
    ['a character device', async () => '/dev/zero', /is a character device: expected an image tarball/],
    ['a missing file', async () => path.join(directory, 'nope.tar'), /does not exist: check the path/],
  ])('%s gets one line', async (_name, make, error) => {
    const file = await make();
    const started = Date.now();
    await expect(openTarball(file, 'The `source` tarball')).rejects.toThrow(error);
    await expect(openTarball(file, 'The `source` tarball')).rejects.toThrow(UserError);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reads the bytes the file had when opened, no more', async () => {
    const tar = await packTar(dockerArchiveEntries([await makeImage(['example.com/app:1'])]));
    const file = path.join(directory, 'growing.tar');
    await writeFile(file, tar);
    const opened = await openTarball(file, 'The tarball');
    await appendFile(file, Buffer.alloc(1024 * 1024, 1));
    const chunks: Buffer[] = [];
    for await (const chunk of opened.stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(tar)).toBe(true);
  });
});

describe('a failure names its real cause', () => {
  const image = makeImage(['example.com/app:1']);

  async function fromSource(compressed: Buffer, file: string) {
    const source = path.join(directory, `source-${Math.random()}`);
    await writeFile(source, compressed);
    const opened = await openTarball(source, 'The `source` tarball');
    return writeTarball(() => ({ stream: opened.stream, decode: opened.decode, phase: 'test' }), file, 'zstd', 1, all);
  }

  it.each([
    ['gzip', (tar: Buffer) => gzipSync(tar), /compressed stream is cut short/],
    // Read by the zstd command here (the runner has it); the frame walker's own words are tested in compression.test.ts.
    ['zstd', (tar: Buffer) => zstdCompressSync(tar), /zstd tarball is damaged/],
  ])('a truncated %s input is damage, not a failure to write', async (_format, compress, error) => {
    const compressed = compress(await packTar(dockerArchiveEntries([await image])));
    const file = path.join(directory, 'cut', 'image.tar.zst');
    const failure = fromSource(compressed.subarray(0, compressed.length - 200), file);
    await expect(failure).rejects.toThrow(error);
    await expect(failure).rejects.not.toThrow(/writ/i);
    expect(await readdir(path.dirname(file))).toEqual([]);
  });

  it('a corrupt gzip input is corrupt', async () => {
    const compressed = gzipSync(await packTar(dockerArchiveEntries([await image])));
    for (let i = 100; i < 200; i++) compressed[i] = compressed[i]! ^ 0xff;
    await expect(fromSource(compressed, path.join(directory, 'corrupt', 'image.tar.zst'))).rejects.toThrow(
      /compressed stream is corrupt .*: it was damaged after it was made; produce it again/,
    );
  });

  it('a path on /proc cannot be written (not "ENOENT")', async () => {
    const tar = await packTar(dockerArchiveEntries([await image]));
    const failure = writeTarball(
      () => ({ stream: Readable.from([tar]), decode: [], phase: 'test' }),
      '/proc/image.tar.zst',
      'zstd',
      1,
      all,
    );
    await expect(failure).rejects.toThrow(
      /Cannot create files in `\/proc` \(ENOENT\): .*set `path` to a writable directory/,
    );
  });

  it('a directory where the file should be is named as such (EISDIR)', async () => {
    const tar = await packTar(dockerArchiveEntries([await image]));
    const file = path.join(directory, 'taken', 'image.tar');
    await mkdir(file, { recursive: true });
    const failure = writeTarball(
      () => ({ stream: Readable.from([tar]), decode: [], phase: 'test' }),
      file,
      'none',
      1,
      all,
    );
    await expect(failure).rejects.toThrow(/a directory of that name is in the way/);
  });
});
