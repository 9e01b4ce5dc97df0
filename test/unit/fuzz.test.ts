/**
 * Valid tarballs, damaged at random: whatever the damage, the inspector answers quickly, fails only with a
 * UserError, and when it accepts, every blob it vouches for is one of the original, untouched contents.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { BLOCK } from '../../src/archive/tar.ts';
import type { ArchiveReport } from '../../src/archive/inspect.ts';
import {
  dockerArchiveEntries,
  forPlatform,
  inspectBuffer,
  makeImage,
  ociLayoutEntries,
  packTar,
  sha256,
  unpackTar,
} from '../support/fixtures.ts';

const app = await makeImage(['app:1'], { seed: 'fuzz' });
const arm = forPlatform(app, { os: 'linux', architecture: 'arm64', variant: 'v8' });
const bases = {
  'docker-archive': await packTar(dockerArchiveEntries([app])),
  'docker-oci': await packTar(ociLayoutEntries([app], { docker25: true })),
  'oci-layout (nested, gzip)': await packTar(ociLayoutEntries([app, arm], { gzip: true, nested: true })),
};
/** Generous: one inspection of these takes about a millisecond. */
const DEADLINE_MS = 2000;

async function truths(tar: Buffer): Promise<Set<string>> {
  const files = await unpackTar(tar);
  return new Set([...files.values()].map((content) => `${sha256(content)} ${content.length}`));
}

function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = 0; offset + BLOCK <= tar.length;) {
    if (tar.subarray(offset, offset + BLOCK).every((byte) => byte === 0)) break;
    offsets.push(offset);
    const size = parseInt(tar.toString('latin1', offset + 124, offset + 136).replace(/\0.*$/, ''), 8) || 0;
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return offsets;
}

function rechecksum(tar: Buffer, at: number): void {
  tar.write('        ', at + 148, 'latin1');
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += tar[i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 'latin1');
}

async function judge(tar: Buffer, chunkSize: number, truth: Set<string>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no verdict within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  let report: ArchiveReport | undefined;
  try {
    report = await Promise.race([inspectBuffer(tar, chunkSize), deadline]);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    expect(error.message).not.toContain('\n');
    return;
  } finally {
    clearTimeout(timer);
  }
  for (const blob of report.blobs)
    expect(truth, `accepted blob ${blob.digest}`).toContain(`${blob.digest} ${blob.size}`);
}

describe.each(Object.entries(bases))('damaged %s', (_name, base) => {
  const offsets = headerOffsets(base);
  const chunkSize = fc.integer({ min: 1, max: 5000 });

  it('a cut anywhere', async () => {
    const truth = await truths(base);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: base.length - 1 }), chunkSize, async (cut, size) => {
        await judge(base.subarray(0, cut), size, truth);
      }),
      { numRuns: 150 },
    );
  });

  it('random byte flips', async () => {
    const truth = await truths(base);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        chunkSize,
        async (flips, size) => {
          const tar = Buffer.from(base);
          for (const [at, mask] of flips) tar[at] = tar[at]! ^ mask;
          await judge(tar, size, truth);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('headers rewritten with a valid checksum (names, sizes, types that lie)', async () => {
    const truth = await truths(base);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...offsets),
        fc.array(fc.tuple(fc.nat({ max: 499 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }),
        chunkSize,
        async (at, edits, size) => {
          const tar = Buffer.from(base);
          for (const [field, value] of edits) if (field < 148 || field >= 156) tar[at + field] = value;
          rechecksum(tar, at);
          await judge(tar, size, truth);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('the undamaged bases', () => {
  it.each(Object.entries(bases))('%s verifies, and its blobs are its contents', async (_name, base) => {
    const report = await inspectBuffer(base);
    const truth = await truths(base);
    expect(report.blobs.length).toBeGreaterThan(2);
    for (const blob of report.blobs) expect(truth).toContain(`${blob.digest} ${blob.size}`);
  });
});
