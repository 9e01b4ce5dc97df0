import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor, detectFormat } from '../../src/archive/compression.ts';
import { UserError } from '../../src/errors.ts';
import { collect } from '../support/streams.ts';
import { tarHeader } from '../../src/archive/tar-write.ts';

describe('detectFormat goes by magic bytes', () => {
  const tar = tarHeader('manifest.json', 0);
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
    ['pzstd (a skippable frame first)', Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]), 'zstd'],
  ])('%s', (_name, bytes, format) => {
    expect(detectFormat(bytes)).toBe(format);
  });
});

describe('compressors round-trip through the matching decompressor', () => {
  const data = Buffer.concat([tarHeader('a', 0), Buffer.alloc(100_000, 7), Buffer.from('tail')]);
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

/** Runs a zstd tool (the real CLI, as users and other pipelines compress) on `input`, returning its stdout. */
function zstdCli(command: string, args: string[], input: Buffer): Buffer {
  return execFileSync(command, args, { input, maxBuffer: 1 << 28 });
}

/** A skippable frame: magic 0x184D2A50 + n, a little-endian length, then that many bytes of anything. */
function skippable(n: number, content: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50 + n, 0);
  head.writeUInt32LE(content.length, 4);
  return Buffer.concat([head, content]);
}

// Both decoders: the zstd command where the runner has it, and the frame walker over Node's zstd where it has not.
describe.each([
  ['the zstd command', undefined],
  ["the frame walker (Node's zstd)", 'node'],
] as const)('zstd files of several frames are read whole, by %s', (_decoder, setting) => {
  beforeAll(() => {
    if (setting) process.env.HANDOFF_ZSTD = setting;
  });
  afterAll(() => {
    delete process.env.HANDOFF_ZSTD;
  });

  // Random hex: compressible but not trivially, so that the CLI really writes several frames and blocks.
  const data = Buffer.from(randomBytes(3 * 1024 * 1024).toString('hex'));
  const a = data.subarray(0, data.length / 2);
  const b = data.subarray(data.length / 2);

  it.each([
    ['cat a.zst b.zst', () => Buffer.concat([zstdCli('zstd', ['-c', '-q'], a), zstdCli('zstd', ['-c', '-q'], b)])],
    ['pzstd -p 2 (a skippable frame before each frame)', () => zstdCli('pzstd', ['-p', '2', '-c', '-q'], data)],
    ['zstd --adapt', () => zstdCli('zstd', ['--adapt', '-c', '-q'], data)],
    [
      'skippable frames of every magic, before, between and after',
      () =>
        Buffer.concat([
          skippable(0, Buffer.from('metadata')),
          zstdCli('zstd', ['-c', '-q', '--no-check'], a),
          skippable(0xf, randomBytes(3000)),
          zstdCli('zstd', ['-c', '-q', '-9'], b),
          skippable(7, Buffer.alloc(0)),
        ]),
    ],
    ['one frame written by Node', () => zlib.zstdCompressSync(data)],
  ])('%s', async (_name, make) => {
    const compressed = make();
    expect(detectFormat(compressed)).toBe('zstd');
    for (const chunk of [compressed.length, 4096, 7]) {
      if (chunk === 7 && compressed.length > 200_000) continue;
      const restored = await collect(createDecompressor('zstd', compressed.length), compressed, chunk);
      expect(restored.length).toBe(data.length);
      expect(restored.equals(data)).toBe(true);
    }
  });

  it("Node's streaming decoder alone stops after the first frame (why the frames are walked here)", async () => {
    const small = Buffer.from(randomBytes(50_000).toString('hex'));
    const twoSmall = Buffer.concat([zlib.zstdCompressSync(small), zlib.zstdCompressSync(small)]);
    // The second frame is dropped without a word (with other sizes and chunkings it fails on it instead).
    expect((await collect([zlib.createZstdDecompress()], twoSmall)).length).toBe(small.length);
    expect((await collect(createDecompressor('zstd', twoSmall.length), twoSmall)).length).toBe(2 * small.length);
  });

  it.each([
    [
      'cut inside a frame',
      (z: Buffer) => z.subarray(0, z.length - 100),
      /zstd tarball is cut short \(it ends inside a frame/,
    ],
    [
      'cut inside a skippable frame',
      (z: Buffer) => Buffer.concat([z, skippable(1, Buffer.alloc(100)).subarray(0, 50)]),
      /ends inside a frame/,
    ],
    [
      'garbage after the last frame',
      (z: Buffer) => Buffer.concat([z, Buffer.from('garbage!')]),
      /the bytes at \d+ are not a zstd frame/,
    ],
    [
      'three stray bytes after the last frame',
      (z: Buffer) => Buffer.concat([z, Buffer.from([1, 2, 3])]),
      /3 stray bytes follow its last frame/,
    ],
    [
      'a corrupt block',
      (z: Buffer) => {
        const bad = Buffer.from(z);
        for (let i = 40; i < 400; i++) bad[i] = bad[i]! ^ 0x5a;
        return bad;
      },
      /zstd tarball is damaged/,
    ],
  ])('refuses a zstd file %s, as damage', async (name, damage, error) => {
    const damaged = damage(zstdCli('zstd', ['-c', '-q'], a));
    const outcome = collect(createDecompressor('zstd', damaged.length), damaged, 65536);
    await expect(outcome).rejects.toThrow(UserError);
    // The zstd command says what is wrong in its own words; a file cut short is called so by both decoders.
    const command = name.startsWith('cut inside a frame')
      ? /^The zstd tarball is cut short \(zstd -d stopped .*premature end/
      : /^The zstd tarball (is damaged|is cut short): zstd -d stopped|^The zstd tarball is (damaged|cut short)/;
    await expect(outcome).rejects.toThrow(setting === 'node' ? error : command);
  });
});

describe('decompression respects the free disk it is written to', () => {
  it('fails with the disk, not a bomb, when the output would not fit', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 1);
    const compressed = zlib.gzipSync(data);
    const stages = createDecompressor('gzip', compressed.length, {
      disk: { where: '/runner/tmp', freeBytes: 1024 * 1024 },
    });
    await expect(collect(stages, compressed)).rejects.toThrow(
      /expands to more than the 1048576 bytes free at `\/runner\/tmp`: free space on the runner or set `path` to a larger disk/,
    );
  });

  it('keeps the bomb cap when the disk is larger', async () => {
    const bomb = zlib.zstdCompressSync(Buffer.alloc(8 * 1024 * 1024));
    const stages = createDecompressor('zstd', bomb.length, {
      maxRatio: 10,
      floorBytes: 1024 * 1024,
      disk: { where: '/big', freeBytes: 1024 ** 4 },
    });
    await expect(collect(stages, bomb)).rejects.toThrow(/compression bomb/);
  });
});
