/**
 * GrowingFileStream (src/growing-file.ts): a file read while its writer appends to it, ending where the writer says.
 * The load's side (a download that arrives, fails or starts over) is tested through openTarball in tarball.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { STREAM_CHUNK_BYTES } from '../../src/constants.ts';
import { GrowingFileStream } from '../../src/growing-file.ts';

let work: string;
let count = 0;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'growing-unit-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function fileWith(text: string | Buffer): Promise<string> {
  const file = path.join(work, `file-${++count}`);
  await writeFile(file, text);
  return file;
}

async function read(stream: GrowingFileStream): Promise<string> {
  let all = '';
  for await (const chunk of stream) all += String(chunk);
  return all;
}

describe('GrowingFileStream', () => {
  it('waits for the file it is told to follow, reads it as it grows, and ends at the size it is given', async () => {
    const stream = new GrowingFileStream();
    const reading = read(stream);
    await sleep(30);
    const file = await fileWith('first ');
    stream.follow(file);
    await sleep(30);
    await appendFile(file, 'second ');
    await sleep(30);
    await appendFile(file, 'third');
    stream.end('first second third'.length);
    // Bytes written past the size it was told are not read: the tarball is what was verified.
    await appendFile(file, ' and more');
    expect(await reading).toBe('first second third');
  });

  it('ends where the file ends, short of the size it was told', async () => {
    const stream = new GrowingFileStream();
    stream.follow(await fileWith('short'));
    stream.end(100);
    expect(await read(stream)).toBe('short');
  });

  it('ends at once when cut while waiting for more', async () => {
    const stream = new GrowingFileStream();
    stream.follow(await fileWith('partial'));
    const reading = read(stream);
    await sleep(30);
    stream.cut();
    expect(await reading).toBe('partial');
  });

  it('with no size, ends at the end found by a read after the writer finished', async () => {
    const file = await fileWith('a');
    const stream = new GrowingFileStream();
    stream.follow(file);
    const reading = read(stream);
    await sleep(30);
    await appendFile(file, 'b');
    stream.end();
    expect(await reading).toBe('ab');
  });

  it('fails with the reason its writer gives', async () => {
    const stream = new GrowingFileStream();
    stream.follow(await fileWith('some'));
    const reading = read(stream);
    await sleep(30);
    stream.fail(new Error('the download failed: connection reset'));
    await expect(reading).rejects.toThrow('the download failed: connection reset');
  });

  it('fails on a file it cannot read, or, told to cut then, ends empty', async () => {
    const missing = path.join(work, 'missing');
    const failing = new GrowingFileStream();
    failing.follow(missing);
    await expect(read(failing)).rejects.toThrow(/ENOENT/);
    const cut = new GrowingFileStream({ onReadError: 'cut' });
    cut.follow(missing);
    cut.end(10);
    expect(await read(cut)).toBe('');
  });

  it('hands on chunks that stay as they were read, short reads and whole ones alike', async () => {
    // Short reads come out of a buffer the stream reads into again: they must be copies, never views of it.
    // Already there: whole reads, each buffer handed on. Then appended while it reads: short reads.
    const start = randomBytes(2 * STREAM_CHUNK_BYTES + 100);
    const pieces = [1000, 700 * 1024, 3, 64 * 1024, STREAM_CHUNK_BYTES + 5, 10].map((size) => randomBytes(size));
    const file = await fileWith(start);
    const stream = new GrowingFileStream();
    stream.follow(file);
    const chunks: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    })();
    for (const piece of pieces) {
      await appendFile(file, piece);
      await sleep(25);
    }
    stream.end();
    await reading;
    expect(chunks.slice(0, 2).map((chunk) => chunk.length)).toEqual([STREAM_CHUNK_BYTES, STREAM_CHUNK_BYTES]);
    expect(Buffer.concat(chunks).equals(Buffer.concat([start, ...pieces]))).toBe(true);
  });

  it('does not take a new read buffer for each read of a file that grows a little at a time', async () => {
    const allocations = vi.spyOn(Buffer, 'allocUnsafe');
    const file = await fileWith('');
    const stream = new GrowingFileStream();
    stream.follow(file);
    const reading = read(stream);
    let written = '';
    for (let i = 0; i < 30; i++) {
      const piece = `piece ${i}; `;
      await appendFile(file, piece);
      written += piece;
      await sleep(15);
    }
    stream.end();
    expect(await reading).toBe(written);
    // 30 writes, each read at least once and the waits between them polled: one buffer does for all of them.
    expect(allocations.mock.calls.filter(([size]) => size === STREAM_CHUNK_BYTES)).toHaveLength(1);
  });
});
