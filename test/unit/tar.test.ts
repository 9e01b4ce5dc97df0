import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { TarReader, createTarAppender, tarEntry, type TarEntry } from '../../src/archive/tar.ts';
import { packTar, sha256, unpackTar } from '../support/fixtures.ts';

interface Seen {
  entry: TarEntry;
  digest: string;
}

function read(tar: Buffer, chunkSize = tar.length): Seen[] {
  const seen: Seen[] = [];
  let parts: Buffer[] = [];
  let current: TarEntry | undefined;
  const reader = new TarReader({
    entry: (entry) => {
      current = entry;
      parts = [];
    },
    data: (chunk) => parts.push(Buffer.from(chunk)),
    entryEnd: () => seen.push({ entry: current!, digest: sha256(Buffer.concat(parts)) }),
  });
  for (let offset = 0; offset < tar.length; offset += chunkSize) reader.write(tar.subarray(offset, offset + chunkSize));
  reader.end();
  return seen;
}

const work = mkdtempSync(path.join(tmpdir(), 'handoff-tar-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A directory tree with names past every ustar limit, archived by GNU tar itself in `format`. */
const made = new Map<string, Buffer>();
function gnuTar(format: 'gnu' | 'pax'): Buffer {
  const cached = made.get(format);
  if (cached) return cached;
  const root = path.join(work, format);
  const deep = path.join(root, 'd'.repeat(120), 'e'.repeat(120));
  mkdirSync(deep, { recursive: true });
  writeFileSync(path.join(deep, 'f'.repeat(150)), 'long name content\n'.repeat(100));
  writeFileSync(path.join(root, 'short.txt'), 'short');
  symlinkSync('t'.repeat(150), path.join(root, 'link'));
  const tar = execFileSync('tar', ['-C', root, `--format=${format}`, '--sort=name', '-cf', '-', '.'], {
    maxBuffer: 1 << 24,
  });
  made.set(format, tar);
  return tar;
}

describe('TarReader', () => {
  it.each(['gnu', 'pax'] as const)('reads long names and link targets from GNU tar --format=%s', (format) => {
    const seen = read(gnuTar(format));
    const long = `${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(150)}`;
    const file = seen.find((s) => s.entry.name === long);
    expect(file?.entry).toMatchObject({ type: 'file', size: 1800 });
    expect(file?.digest).toBe(sha256('long name content\n'.repeat(100)));
    expect(seen.find((s) => s.entry.name === 'link')?.entry).toMatchObject({
      type: 'symlink',
      linkname: 't'.repeat(150),
    });
    expect(seen.find((s) => s.entry.name === '')?.entry.type).toBe('directory');
  });

  it('reads the ustar prefix field', () => {
    const root = path.join(work, 'ustar');
    const dir = path.join(root, 'p'.repeat(60), 'q'.repeat(60));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'r'.repeat(90)), 'in ustar');
    const tar = execFileSync('tar', ['-C', root, '--format=ustar', '-cf', '-', '.']);
    const seen = read(tar);
    expect(seen.find((s) => s.entry.name === `${'p'.repeat(60)}/${'q'.repeat(60)}/${'r'.repeat(90)}`)?.digest).toBe(
      sha256('in ustar'),
    );
  });

  it('gives the same entries and content whatever the chunk boundaries', () => {
    const tar = gnuTar('pax');
    const whole = read(tar);
    for (const size of [1, 7, 511, 512, 513, 10_000]) expect(read(tar, size)).toEqual(whole);
  });

  it('hands content over as slices of the written chunk, without copying', () => {
    const tar = Buffer.concat([tarEntry('a', Buffer.alloc(4096, 1)), Buffer.alloc(1024)]);
    const slices: Buffer[] = [];
    const reader = new TarReader({ entry: () => {}, data: (chunk) => slices.push(chunk), entryEnd: () => {} });
    reader.write(tar);
    expect(slices).toHaveLength(1);
    expect(slices[0]!.buffer).toBe(tar.buffer);
  });

  it('reads PAX path and size overrides, and global headers', async () => {
    const tar = await packTar([
      { name: 'short', content: 'x'.repeat(10), pax: { path: 'from-pax/name.json' } },
      { name: 'other', content: 'y' },
    ]);
    expect(read(tar).map((s) => s.entry.name)).toEqual(['from-pax/name.json', 'other']);
  });

  it('normalises ./ prefixes and trailing slashes', async () => {
    const tar = await packTar([
      { name: './dir/', type: 'directory' },
      { name: './dir//x', content: 'x' },
    ]);
    expect(read(tar).map((s) => s.entry.name)).toEqual(['dir', 'dir/x']);
  });

  it('knows a tar cut at any point is cut', async () => {
    const tar = await packTar([{ name: 'a', content: 'a'.repeat(700) }]);
    for (const cut of [0, 100, 512, 1000, 1536, tar.length - 513]) {
      expect(() => read(tar.subarray(0, cut)), `cut at ${cut}`).toThrow(cut === 0 ? /empty/ : /cut short/);
    }
  });

  it('throws UserError on a header that fails its checksum', async () => {
    const tar = await packTar([{ name: 'a', content: 'a' }]);
    tar[0] = 0x62;
    expect(() => read(tar)).toThrow(UserError);
    expect(() => read(tar)).toThrow(/fails its checksum/);
  });
});

describe('tarEntry', () => {
  it('writes an entry GNU tar and tar-stream both read back', async () => {
    const content = Buffer.from('[{"Config":"blobs/sha256/x"}]');
    const tar = Buffer.concat([tarEntry('manifest.json', content), Buffer.alloc(1024)]);
    const file = path.join(work, 'written.tar');
    writeFileSync(file, tar);
    expect(execFileSync('tar', ['-tvf', file]).toString()).toMatch(/-rw-r--r-- .* 29 .*manifest\.json/);
    expect((await unpackTar(tar)).get('manifest.json')).toEqual(content);
    expect(tar.length % 512).toBe(0);
  });
});

describe('createTarAppender', () => {
  async function append(
    tar: Buffer,
    chunkSize: number,
    extra: () => Promise<{ name: string; content: Buffer } | undefined>,
  ) {
    const out: Buffer[] = [];
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < tar.length; offset += chunkSize)
      chunks.push(tar.subarray(offset, offset + chunkSize));
    await pipeline(Readable.from(chunks), createTarAppender(extra), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(chunk);
    });
    return Buffer.concat(out);
  }

  it.each([1, 100, 512, 513, 1024, 1 << 20])('appends one entry before the end marker (chunks of %i)', async (size) => {
    // GNU tar pads to a 10 KiB record: the padding after the end marker must go too.
    const tar = gnuTar('gnu');
    const result = await append(tar, size, async () => ({ name: 'manifest.json', content: Buffer.from('[]') }));
    const names = read(result).map((s) => s.entry.name);
    expect(names.at(-1)).toBe('manifest.json');
    expect(names.slice(0, -1)).toEqual(read(tar).map((s) => s.entry.name));
    expect(result.subarray(-1024)).toEqual(Buffer.alloc(1024));
  });

  it('passes the archive on unchanged but for trailing padding when there is nothing to add', async () => {
    const tar = await packTar([{ name: 'a', content: 'abc' }]);
    expect(await append(tar, 300, async () => undefined)).toEqual(tar);
  });

  it('stops short of the end marker when the entry cannot be made, so a reader sees a cut archive', async () => {
    const tar = await packTar([{ name: 'a', content: 'abc' }]);
    const out: Buffer[] = [];
    const appender = createTarAppender(async () => {
      throw new UserError('verification failed');
    });
    appender.on('data', (chunk: Buffer) => out.push(chunk));
    await expect(pipeline(Readable.from([tar]), appender)).rejects.toThrow(/verification failed/);
    expect(() => read(Buffer.concat(out))).toThrow(/cut short/);
  });

  it('refuses input that is not a whole tar archive', async () => {
    const tar = await packTar([{ name: 'a', content: 'abc' }]);
    await expect(append(tar.subarray(0, 600), 100, async () => undefined)).rejects.toThrow(/cut short/);
  });
});
