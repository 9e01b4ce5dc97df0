import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { MAX_TOTAL_META_BYTES, TarReader, type TarEntry } from '../../src/archive/tar.ts';
import { tarEntry } from '../../src/archive/tar-write.ts';
import { packTar, sha256, unpackTar } from '../support/fixtures.ts';
import { BLOCK, END, checksum, entry, extended, pax, rawHeader } from '../support/raw-tar.ts';

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

  it('reads one PAX header with a path, a size and times, and one GNU long name', () => {
    const tar = Buffer.concat([
      pax([
        ['path', 'from-pax/name.json'],
        ['size', '10'],
        ['mtime', '1700000000.5'],
        ['uname', 'root'],
      ]),
      entry({ name: 'short' }, 'x'.repeat(10)),
      extended('L', 'g'.repeat(150)),
      entry({ name: 'cut' }, 'y'),
      END,
    ]);
    expect(read(tar).map((s) => [s.entry.name, s.entry.size])).toEqual([
      ['from-pax/name.json', 10],
      ['g'.repeat(150), 1],
    ]);
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

/**
 * Headers that tar readers interpret differently (Go's archive/tar, which docker uses; node-tar; GNU tar): each was a
 * way to hide an entry from one reader and show it to another, so each is refused with a line naming it.
 */
describe('TarReader refuses every header it does not fully model', () => {
  const file = entry({ name: 'a' }, 'a');
  const cases: Array<[string, Buffer, RegExp]> = [
    [
      'a PAX header followed by a GNU long name',
      Buffer.concat([pax([['path', 'p']]), extended('L', 'manifest.json'), file, END]),
      /second extended header for the entry that starts at byte 0/,
    ],
    [
      'a GNU long name followed by a PAX header',
      Buffer.concat([extended('L', 'manifest.json'), pax([['path', 'p']]), file, END]),
      /second extended header/,
    ],
    [
      'two PAX headers in a row',
      Buffer.concat([pax([['path', 'p']]), pax([['size', '1']]), file, END]),
      /second extended header/,
    ],
    [
      'a GNU long name and a long link name for one entry',
      Buffer.concat([extended('K', 't'.repeat(120)), extended('L', 'n'.repeat(120)), file, END]),
      /second extended header/,
    ],
    [
      'a global PAX header setting path',
      Buffer.concat([pax([['path', 'manifest.json']], 'g'), file, END]),
      /global PAX header .*refused/,
    ],
    ['a global PAX header setting size', Buffer.concat([pax([['size', '0']], 'g'), file, END]), /global PAX header/],
    ['a GNU sparse file', Buffer.concat([entry({ name: 'sparse', type: 'S' }), END]), /GNU sparse file/],
    [
      'PAX GNU sparse records',
      Buffer.concat([pax([['GNU.sparse.map', '0,1']]), file, END]),
      /record `GNU\.sparse\.map`, which this action does not model/,
    ],
    [
      'a PAX hdrcharset',
      Buffer.concat([pax([['hdrcharset', 'BINARY']]), file, END]),
      /record `hdrcharset`, which this action does not model/,
    ],
    [
      'a PAX key set twice',
      Buffer.concat([
        pax([
          ['path', 'a'],
          ['path', 'manifest.json'],
        ]),
        file,
        END,
      ]),
      /sets path twice/,
    ],
    [
      'a PAX size that differs from the header',
      Buffer.concat([pax([['size', '0']]), file, END]),
      /says size `0`, but its entry's header says 1/,
    ],
    ['a PAX mtime that is not a time', Buffer.concat([pax([['mtime', 'soon']]), file, END]), /not a valid mtime/],
    [
      'the ustar prefix field',
      Buffer.concat([entry({ name: 'json', prefix: 'manifest' }, '[]'), END]),
      /uses the ustar prefix field/,
    ],
    [
      'a NUL typeflag with a trailing "/" and content',
      Buffer.concat([entry({ name: 'blobs/', type: '\0' }, rawHeader({ name: 'manifest.json' })), END]),
      /is a file whose name ends in "\/"/,
    ],
    [
      'a directory with a size',
      Buffer.concat([entry({ name: 'blobs', type: '5' }, rawHeader({ name: 'manifest.json' })), END]),
      /is a directory with a size of 512 bytes/,
    ],
    [
      'a regular file with a link target',
      Buffer.concat([entry({ name: 'a', linkname: 'manifest.json' }, 'a'), END]),
      /is a file with a link target/,
    ],
    [
      'a name outside ASCII',
      Buffer.concat([entry({ name: Buffer.from('manif\u0435st.json').toString('latin1') }, '[]'), END]),
      /U\+0435 \(a Cyrillic letter\) in its name/,
    ],
    [
      'an entry after the end-of-archive marker',
      Buffer.concat([file, END, entry({ name: 'manifest.json' }, '[]'), END]),
      /data at byte 2048, after its end-of-archive marker/,
    ],
    [
      'a PAX header over 64 KiB',
      Buffer.concat([pax([['path', 'a'.repeat(70_000)]]), file, END]),
      /PAX header at byte 0 is \d+ bytes; at most 65536/,
    ],
    [
      'a mode that is not a number (Go refuses the header)',
      (() => {
        const header = rawHeader({ name: 'a' });
        header.write('800755 \0', 100, 'latin1');
        checksum(header);
        return Buffer.concat([header, END]);
      })(),
      /has a mode that is not an octal number/,
    ],
    [
      'text where a GNU header keeps its access time',
      Buffer.concat([entry({ name: 'json', prefix: 'manifest', magic: 'ustar  \0' }, '[]'), END]),
      /has a GNU access time that is not an octal number/,
    ],
    [
      'bytes after the NUL that ends a name (node-tar keeps what follows a newline)',
      Buffer.concat([entry({ name: 'a\0\0\nmanifest.json' }, '[]'), END]),
      /has bytes after the end of its name/,
    ],
    [
      'a symbolic link without a target',
      Buffer.concat([entry({ name: 'a', type: '2' }), END]),
      /symlink without a target/,
    ],
    ['a file without a name', Buffer.concat([entry({ name: '' }, 'x'), END]), /has no name/],
    ['a file named "."', Buffer.concat([entry({ name: '.' }, 'x'), END]), /has no name \(`\.`\)/],
    [
      'a checksum only a signed sum matches',
      (() => {
        const header = rawHeader({ name: '\xe9'.repeat(10) });
        let signed = 0;
        for (let i = 0; i < BLOCK; i++) signed += i >= 148 && i < 156 ? 0x20 : (header[i]! << 24) >> 24;
        header.write(signed.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
        return Buffer.concat([header, END]);
      })(),
      /fails its checksum/,
    ],
  ];

  it.each(cases)('%s', (_name, tar, error) => {
    expect(() => read(tar)).toThrow(UserError);
    expect(() => read(tar)).toThrow(error);
    for (const size of [1, 511, 513]) expect(() => read(tar, size)).toThrow(error);
  });

  it('caps the extended headers of a whole archive, so they cannot pile up', () => {
    const one = Buffer.concat([pax([['path', 'p'.repeat(4000)]]), entry({ name: 'x' })]);
    const count = Math.ceil(MAX_TOTAL_META_BYTES / 4000) + 1;
    const names = Array.from({ length: count }, (_, i) =>
      Buffer.concat([pax([['path', `${i}/${'p'.repeat(3990)}`]]), entry({ name: 'x' })]),
    );
    expect(one.length).toBeLessThan(6000);
    expect(() => read(Buffer.concat([...names, END]))).toThrow(/more than 16777216 bytes of extended headers/);
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
