/**
 * handOver (src/artifacts/library.ts): the library's `fs.createReadStream` of one path gets the stream given, once; every other
 * call, and every call after, is the real one.
 */
import * as fsNamespace from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handOver } from '../../src/artifacts/library.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'transfer-unit-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  let all = '';
  for await (const chunk of stream) all += String(chunk);
  return all;
}

describe('handOver', () => {
  it('gives the stream to the one call that opens its path, through the ES module binding, then restores', async () => {
    const original = fsNamespace.createReadStream;
    const placeholder = path.join(work, 'placeholder');
    const other = path.join(work, 'other');
    await writeFile(placeholder, '');
    await writeFile(other, 'a real file');
    const given = Readable.from(['the tarball']);
    let opened = 0;
    const restore = handOver(placeholder, given, () => opened++);
    // Another path is read for real, and does not use up the hand-over.
    expect(await text(fsNamespace.createReadStream(other))).toBe('a real file');
    expect(opened).toBe(0);
    // The library's own `import * as fs` sees the same binding as this namespace import.
    expect(fsNamespace.createReadStream(placeholder)).toBe(given);
    expect(opened).toBe(1);
    expect(fsNamespace.createReadStream).toBe(original);
    // A second open of the same path is the real file (empty), not the stream again.
    expect(await text(fsNamespace.createReadStream(placeholder))).toBe('');
    restore();
    expect(fsNamespace.createReadStream).toBe(original);
  });

  it('restores createReadStream when the library never opened the path (it failed before)', () => {
    const original = fsNamespace.createReadStream;
    const restore = handOver(path.join(work, 'never-opened'), Readable.from([]), () => undefined);
    expect(fsNamespace.createReadStream).not.toBe(original);
    restore();
    expect(fsNamespace.createReadStream).toBe(original);
  });

  it('leaves a later hand-over in place when an earlier one is restored, and disarms the earlier one', async () => {
    const first = path.join(work, 'first');
    const second = path.join(work, 'second');
    await writeFile(first, 'first file');
    await writeFile(second, 'second file');
    const firstStream = Readable.from([]);
    const secondStream = Readable.from([]);
    const restoreFirst = handOver(first, firstStream, () => undefined);
    const restoreSecond = handOver(second, secondStream, () => undefined);
    restoreFirst();
    // The first is disarmed: its path is opened for real.
    expect(await text(fsNamespace.createReadStream(first))).toBe('first file');
    expect(fsNamespace.createReadStream(second)).toBe(secondStream);
    restoreSecond();
    // The disarmed first wrapper may stay in the chain; it passes every call on to the real function.
    const real = fsNamespace.createReadStream(second);
    expect(real).toBeInstanceOf(fsNamespace.ReadStream);
    expect(await text(real)).toBe('second file');
  });
});
