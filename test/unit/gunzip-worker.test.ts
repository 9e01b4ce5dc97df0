import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { abort, finish, send, startLayer, stopWorker, type WorkerLayer } from '../../src/archive/gunzip-worker.ts';
import { STREAM_CHUNK_BYTES } from '../../src/constants.ts';

afterAll(() => stopWorker());

/** Feeds `chunks` of one gzip layer to the worker; resolves with what it found. */
function through(chunks: Buffer[], limit = 1 << 30): Promise<{ digest: string; size: number }> {
  return new Promise((resolve, reject) => {
    const layer: WorkerLayer = {
      pending: 0,
      grew: () => undefined,
      took: () => undefined,
      done: resolve,
      failed: (reason, detail) => reject(new Error(`${reason}: ${detail}`)),
    };
    const id = startLayer(layer, limit);
    for (const chunk of chunks) send(id, chunk);
    finish(id);
  });
}

/** `buffer` cut at the given sizes, the rest as the last piece. */
function cut(buffer: Buffer, sizes: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let offset = 0;
  for (const size of sizes) {
    if (offset >= buffer.length) break;
    pieces.push(buffer.subarray(offset, offset + size));
    offset += size;
  }
  if (offset < buffer.length) pieces.push(buffer.subarray(offset));
  return pieces;
}

const content = Buffer.concat([randomBytes(3 * STREAM_CHUNK_BYTES), Buffer.alloc(2 * STREAM_CHUNK_BYTES, 7)]);
const layer = gzipSync(content);
const expected = { digest: `sha256:${createHash('sha256').update(content).digest('hex')}`, size: content.length };

describe('a gzip layer through the worker, whatever its chunks', () => {
  it.each([
    ['one chunk larger than a carrier', [layer.length]],
    ['exactly a carrier each', Array(8).fill(STREAM_CHUNK_BYTES)],
    ['small chunks that share carriers', Array(200).fill(64 * 1024)],
    ['chunks that straddle carriers', Array(20).fill(STREAM_CHUNK_BYTES - 1)],
    ['one byte, then the rest', [1]],
    ['uneven', [3, STREAM_CHUNK_BYTES * 2 + 5, 17, 65_536, STREAM_CHUNK_BYTES - 3]],
  ])('%s', async (_, sizes) => {
    expect(await through(cut(layer, sizes))).toMatchObject(expected);
  });

  it('keeps two layers fed in turn apart', async () => {
    const other = Buffer.alloc(STREAM_CHUNK_BYTES + 3, 1);
    const otherLayer = gzipSync(other);
    const a = cut(layer, Array(100).fill(100_000));
    const b = cut(otherLayer, Array(100).fill(1000));
    const ids: number[] = [];
    const results = [0, 1].map(
      (index) =>
        new Promise<{ digest: string; size: number }>((resolve, reject) => {
          const failed = (reason: string, detail: string) => reject(new Error(`${reason}: ${detail}`));
          ids[index] = startLayer({ pending: 0, grew: () => {}, took: () => {}, done: resolve, failed }, 1 << 30);
        }),
    );
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i]) send(ids[0]!, a[i]!);
      if (b[i]) send(ids[1]!, b[i]!);
    }
    finish(ids[0]!);
    finish(ids[1]!);
    expect(await Promise.all(results)).toMatchObject([
      expected,
      { digest: `sha256:${createHash('sha256').update(other).digest('hex')}`, size: other.length },
    ]);
  });

  it('starts a layer afresh after one was aborted with a carrier half full', async () => {
    const id = startLayer({ pending: 0, grew: () => {}, took: () => {}, done: () => {}, failed: () => {} }, 1 << 30);
    send(id, layer.subarray(0, 1000));
    abort(id);
    expect(await through(cut(layer, Array(50).fill(300_000)))).toMatchObject(expected);
  });

  it('refuses content past its limit', async () => {
    await expect(through([layer], STREAM_CHUNK_BYTES)).rejects.toThrow(/^limit/);
  });
});
