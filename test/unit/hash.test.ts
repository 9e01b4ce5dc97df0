import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/hash.ts';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'handoff-hash-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

describe('hashFile', () => {
  // Far past any stream buffer: a hash stage whose output nobody drains would stall here and never settle.
  it.each([0, 1, 16 * 1024, 3 * 1024 * 1024 + 7])('hashes a file of %i bytes to its sha256', async (size) => {
    const content = randomBytes(size);
    const file = path.join(directory, `file-${size}`);
    await writeFile(file, content);
    const counted = new PassThrough();
    let seen = 0;
    counted.on('data', (chunk: Buffer) => (seen += chunk.length));
    const result = await hashFile(file, counted);
    expect(result).toEqual({ digest: `sha256:${createHash('sha256').update(content).digest('hex')}`, bytes: size });
    expect(seen).toBe(size);
  });

  it('rejects for a file that does not exist', async () => {
    await expect(hashFile(path.join(directory, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
