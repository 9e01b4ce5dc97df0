import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { selectReferences, type CanonicalOptions } from '../../src/archive/canonical.ts';
import { openTarball, writeTarball } from '../../src/archive/tarball.ts';
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
      { file, compression: 'none', canonical: { select: (report) => selectReferences(report, undefined) } },
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
      { file, compression: 'zstd', canonical: { select: (report) => selectReferences(report, undefined) } },
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
    return writeTarball(() => ({ stream: opened.stream, decode: opened.decode, phase: 'test' }), {
      file,
      compression: 'zstd',
      level: 1,
      canonical: all,
    });
  }

  it.each([
    ['gzip', (tar: Buffer) => gzipSync(tar), /compressed stream is cut short/],
    // Read by the zstd command here (the runner has it); the frame walker's own words are tested in compression.test.ts.
    ['zstd', (tar: Buffer) => zstdCompressSync(tar), /zstd tarball is cut short/],
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
    const failure = writeTarball(() => ({ stream: Readable.from([tar]), decode: [], phase: 'test' }), {
      file: '/proc/image.tar.zst',
      compression: 'zstd',
      level: 1,
      canonical: all,
    });
    await expect(failure).rejects.toThrow(
      /Cannot create files in `\/proc` \(ENOENT\): .*set `path` to a writable directory/,
    );
  });

  it('a directory where the file should be is named as such (EISDIR)', async () => {
    const tar = await packTar(dockerArchiveEntries([await image]));
    const file = path.join(directory, 'taken', 'image.tar');
    await mkdir(file, { recursive: true });
    const failure = writeTarball(() => ({ stream: Readable.from([tar]), decode: [], phase: 'test' }), {
      file,
      compression: 'none',
      level: 1,
      canonical: all,
    });
    await expect(failure).rejects.toThrow(/a directory of that name is in the way/);
  });
});

describe('openTarball follows a file still downloading', () => {
  /** A plain tar of `size` bytes of content, and a promise the test settles as the "download". */
  async function arriving(name: string) {
    const tar = await packTar([{ name: 'blob', content: Buffer.alloc(3 * 1024 * 1024, 7) }]);
    const file = path.join(directory, name);
    let settle!: { resolve: () => void; reject: (error: Error) => void };
    const complete = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // As artifact.ts does with its download: a failure is for the reader to report, never an unhandled rejection.
    complete.catch(() => undefined);
    return { tar, file, complete, settle };
  }

  async function readAll(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  const later = () => new Promise((resolve) => setTimeout(resolve, 40));

  it('waits for the first bytes, reads what arrives, and ends only after the download has', async () => {
    const { tar, file, complete, settle } = await arriving('growing.tar');
    await writeFile(file, tar.subarray(0, 100));
    const opening = openTarball(file, 'The artifact', undefined, { complete, expectedSize: tar.length });
    await later();
    await appendFile(file, tar.subarray(100, 1_000_000));
    const opened = await opening;
    expect(opened.compression).toBe('none');
    const reading = readAll(opened.stream);
    await later();
    await appendFile(file, tar.subarray(1_000_000));
    // Every byte is on disk, but the download has not said it is done: the read must not have ended.
    const early = await Promise.race([reading.then(() => 'ended'), later().then(() => 'waiting')]);
    expect(early).toBe('waiting');
    settle.resolve();
    expect(sha256(await reading)).toBe(sha256(tar));
  });

  it('reads the same bytes again when the download starts the file over (a retry truncates it)', async () => {
    const { tar, file, complete, settle } = await arriving('retried.tar');
    await writeFile(file, tar.subarray(0, 2_000_000));
    const opened = await openTarball(file, 'The artifact', undefined, { complete, expectedSize: tar.length });
    const reading = readAll(opened.stream);
    await later();
    await writeFile(file, tar.subarray(0, 500_000));
    await later();
    await appendFile(file, tar.subarray(500_000));
    settle.resolve();
    expect(sha256(await reading)).toBe(sha256(tar));
  });

  it('fails with the download failure instead of waiting for bytes that will not come', async () => {
    const { tar, file, complete, settle } = await arriving('failed.tar');
    await writeFile(file, tar.subarray(0, 1_500_000));
    const opened = await openTarball(file, 'The artifact', undefined, { complete, expectedSize: tar.length });
    const reading = readAll(opened.stream);
    await later();
    settle.reject(new UserError('Downloading artifact "failed" failed: connection reset.'));
    await expect(reading).rejects.toThrow('Downloading artifact "failed" failed: connection reset.');
  });

  it('fails with the download failure when it comes before the first bytes', async () => {
    const { file, complete, settle } = await arriving('never.tar');
    await writeFile(file, '');
    const opening = openTarball(file, 'The artifact', undefined, { complete, expectedSize: 1 });
    settle.reject(new UserError('Downloading artifact "never" failed: 403.'));
    await expect(opening).rejects.toThrow('Downloading artifact "never" failed: 403.');
  });
});

describe('writeTarball names its partial file for an upload to follow', () => {
  it('names the file before the producer starts, and a reader of it from then gets exactly the tarball', async () => {
    const tar = await packTar(dockerArchiveEntries([await makeImage(['example.com/follow:1'])]));
    const file = path.join(directory, 'followed', 'image.tar.zst');
    let follower: number | undefined;
    let startedBeforeOpen = false;
    const written = await writeTarball(
      () => {
        startedBeforeOpen = follower === undefined;
        return { stream: Readable.from([tar]), decode: [], finished: Promise.resolve(), phase: 'test' };
      },
      {
        file,
        compression: 'zstd',
        canonical: all,
        onOpen: (partial) => {
          expect(partial).not.toBe(file);
          follower = openSync(partial, 'r');
        },
      },
    );
    expect(startedBeforeOpen).toBe(false);
    // The partial file was renamed into place; the descriptor opened on it reads the finished tarball.
    const followedBytes = readFileSync(follower!);
    closeSync(follower!);
    expect(sha256(followedBytes)).toBe(written.digest);
    expect(sha256(await readFile(file))).toBe(written.digest);
  });
});
