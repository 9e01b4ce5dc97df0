import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor, detectFormat } from '../../src/archive/compression.ts';
import { UserError } from '../../src/errors.ts';

function tarHeader(name: string): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('00000000000\0', 124);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return header;
}

async function collect(stages: NodeJS.ReadWriteStream[], input: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline([
    Readable.from([input]),
    ...stages,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  ]);
  return Buffer.concat(chunks);
}

describe('detectFormat goes by magic bytes', () => {
  const tar = tarHeader('manifest.json');
  it.each([
    ['zstd', zlib.zstdCompressSync(tar), 'zstd'],
    ['gzip', zlib.gzipSync(tar), 'gzip'],
    ['plain tar', tar, 'none'],
    ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2]), 'xz'],
    ['bzip2', Buffer.from('BZh91AY&SY'), 'bzip2'],
    ['empty', Buffer.alloc(0), 'unknown'],
    ['text', Buffer.from('{"not": "a tar"}'.padEnd(600, ' ')), 'unknown'],
    ['tar with a broken checksum', Buffer.concat([tar.subarray(0, 10), Buffer.from('X'), tar.subarray(11)]), 'unknown'],
    ['short tar', tar.subarray(0, 300), 'unknown'],
  ])('%s', (_name, bytes, format) => {
    expect(detectFormat(bytes)).toBe(format);
  });
});

describe('compressors round-trip through the matching decompressor', () => {
  const data = Buffer.concat([tarHeader('a'), Buffer.alloc(100_000, 7), Buffer.from('tail')]);
  it.each(['zstd', 'gzip'] as const)('%s', async (compression) => {
    const compressed = await collect([createCompressor(compression, 1)!], data);
    expect(compressed.length).toBeLessThan(data.length / 10);
    expect(detectFormat(compressed)).toBe(compression);
    const restored = await collect(createDecompressor(compression, compressed.length), compressed);
    expect(restored.equals(data)).toBe(true);
  });

  // Tens of MiB of data that compresses like an image layer at the default level, fed in small chunks as `docker save` writes:
  // the case where a multi-threaded Node zstd stream pushes after EOF (nodejs/node#59899).
  it.each(['zstd', 'gzip'] as const)('%s at its default level, 48 MiB that compresses 2:1', async (compression) => {
    // Random hex: compresses about 2:1, like real image layers; a repeated block does not keep a zstd worker busy
    // long enough for the stream to end while it still has output, and passes either way.
    const data = Buffer.from(randomBytes(24 * 1024 * 1024).toString('hex'));
    const chunks = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) =>
      data.subarray(i * 65536, (i + 1) * 65536),
    );
    const compressed: Buffer[] = [];
    await pipeline([
      Readable.from(chunks),
      createCompressor(compression)!,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          compressed.push(chunk);
          callback();
        },
      }),
    ]);
    const all = Buffer.concat(compressed);
    const restored = await collect(createDecompressor(compression, all.length), all);
    expect(restored.equals(data)).toBe(true);
  });

  it('none has no stages', () => {
    expect(createCompressor('none')).toBeUndefined();
    expect(createDecompressor('none', 10)).toEqual([]);
  });
});

describe('decompression is capped against bombs', () => {
  it('fails a stream that expands beyond the ratio and floor', async () => {
    const bomb = zlib.zstdCompressSync(Buffer.alloc(8 * 1024 * 1024));
    const stages = createDecompressor('zstd', bomb.length, { maxRatio: 10, floorBytes: 1024 * 1024 });
    await expect(collect(stages, bomb)).rejects.toThrow(/expands to more than 1048576 bytes.*compression bomb/);
  });

  it('lets a normal stream through under the same cap', async () => {
    const data = Buffer.alloc(512 * 1024, 1);
    const compressed = zlib.gzipSync(data);
    const restored = await collect(
      createDecompressor('gzip', compressed.length, { maxRatio: 10, floorBytes: 1024 * 1024 }),
      compressed,
    );
    expect(restored.length).toBe(data.length);
  });

  it.each(['xz', 'bzip2', 'unknown'] as const)('refuses %s with a clear error', (format) => {
    expect(() => createDecompressor(format, 1)).toThrow(UserError);
    expect(() => createDecompressor(format, 1)).toThrow(new RegExp(`compressed with ${format}`));
  });
});
