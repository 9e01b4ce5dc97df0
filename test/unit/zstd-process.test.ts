/** zstd as a process beside the action, and Node's zstd as the fallback: the same bytes either way. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor } from '../../src/archive/compression.ts';
import { zstdCommandAvailable, zstdProcess } from '../../src/archive/zstd-process.ts';
import { UserError } from '../../src/errors.ts';
import { collect } from '../support/streams.ts';

// Compressible, but not trivially: 2:1 text mixed with random runs.
const data = Buffer.concat(
  Array.from({ length: 64 }, (_, i) => Buffer.concat([Buffer.from(`line ${i} `.repeat(4096)), randomBytes(8192)])),
);

afterEach(() => {
  delete process.env.HANDOFF_ZSTD;
});

describe('zstd as a process', () => {
  it('is found on this machine (setup installs it; GitHub-hosted runners have it)', () => {
    expect(zstdCommandAvailable()).toBe(true);
  });

  it('writes an ordinary zstd file that `zstd -d` and Node both read', async () => {
    const compressed = await collect([createCompressor('zstd', 3)!], data);
    expect(compressed.length).toBeLessThan(data.length / 2);
    expect(execFileSync('zstd', ['-d', '-c'], { input: compressed, maxBuffer: 64 * 1024 * 1024 }).equals(data)).toBe(
      true,
    );
    expect(zlib.zstdDecompressSync(compressed).equals(data)).toBe(true);
  });

  it('reads a file of several frames whole, as pzstd and concatenation write them', async () => {
    const halves = [data.subarray(0, data.length / 2), data.subarray(data.length / 2)];
    const frames = Buffer.concat(halves.map((half) => zlib.zstdCompressSync(half)));
    const restored = await collect(createDecompressor('zstd', frames.length), frames);
    expect(restored.equals(data)).toBe(true);
  });

  // The zstd command writes a content checksum (Node's encoder does not), so damage anywhere is caught.
  it('fails with one line when the input is corrupt, never as a short file', async () => {
    const compressed = execFileSync('zstd', ['-3', '-c'], { input: data, maxBuffer: 64 * 1024 * 1024 });
    const corrupt = Buffer.concat([compressed.subarray(0, 100), Buffer.alloc(4000, 0x55), compressed.subarray(4100)]);
    const failure = collect(createDecompressor('zstd', corrupt.length), corrupt);
    await expect(failure).rejects.toThrow(UserError);
    await expect(failure).rejects.toThrow(/^The zstd tarball is damaged: zstd -d stopped \(exit code \d+: .+\)/);
  });

  it('reports a zstd that cannot start', async () => {
    const duplex = zstdProcess(['--no-such-option'], 'compress the tarball');
    await expect(collect([duplex], data)).rejects.toThrow(/zstd failed to compress the tarball/);
  });
});

describe("Node's zstd, when no zstd command is there", () => {
  it('round-trips the same data', async () => {
    process.env.HANDOFF_ZSTD = 'node';
    expect(zstdCommandAvailable()).toBe(false);
    const compressed = await collect([createCompressor('zstd', 3)!], data);
    const restored = await collect(createDecompressor('zstd', compressed.length), compressed);
    expect(restored.equals(data)).toBe(true);
  });
});
