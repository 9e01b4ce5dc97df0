/**
 * The fields of one tar header block and the records of a PAX header, read so that only what every reader (Go's
 * archive/tar above all) sees alike is accepted; anything else is refused before a byte of the entry is consumed.
 */
import { describeCharacter, firstNonAscii, shown } from '../display.ts';
import { refuse as fail } from '../errors.ts';

export const BLOCK = 512;
/**
 * A PAX or GNU long-name header larger than this is an attack, not a file name: the records this reader models
 * (a path of at most MAX_NAME_BYTES, a size, times and owners) fit in a few KiB.
 */
export const MAX_META_BYTES = 64 * 1024;
/** All extended headers of one archive together: image tarballs have a handful, if any. */
export const MAX_TOTAL_META_BYTES = 16 * 1024 * 1024;
/** PATH_MAX on Linux: no tool writes longer entry names. */
export const MAX_NAME_BYTES = 4096;

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'character-device' | 'block-device' | 'fifo';

export const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file: a regular file to every reader but one long-gone system
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

/** Type flags no image tarball holds, named for the message that refuses them. */
export const REFUSED_TYPES: Record<string, string> = {
  g: 'a global PAX header (which Go, and so docker, ignores while other readers apply it)',
  S: 'a GNU sparse file',
  D: 'a GNU dump directory',
  M: 'a GNU multi-volume continuation',
  V: 'a GNU volume label',
  N: 'an old GNU long-name record',
  A: 'a Solaris ACL',
  E: 'a Solaris extended attribute',
  X: 'an old extended header',
};

/**
 * The PAX keys this reader models, and what their values must look like. Every other key (GNU.sparse.*,
 * hdrcharset, SCHILY.*, LIBARCHIVE.*, comment, …) changes or may change what some reader sees, so it is refused.
 * Each may appear once, so a PAX header holds at most ten records, and an entry has at most one PAX header.
 */
const PAX_KEYS: Record<string, RegExp> = {
  path: /^[^\0]+$/,
  linkpath: /^[^\0]+$/,
  size: /^[0-9]{1,16}$/,
  mtime: /^-?[0-9]{1,20}(?:\.[0-9]{1,20})?$/,
  atime: /^-?[0-9]{1,20}(?:\.[0-9]{1,20})?$/,
  ctime: /^-?[0-9]{1,20}(?:\.[0-9]{1,20})?$/,
  uid: /^[0-9]{1,20}$/,
  gid: /^[0-9]{1,20}$/,
  uname: /^[^\0]{0,256}$/,
  gname: /^[^\0]{0,256}$/,
};
/** The largest size the 11 octal digits of a ustar size field hold; larger files need a PAX size or base-256. */
export const MAX_OCTAL_SIZE = 0o77777777777;

/** Where a field of the 512-byte header block lies, and its name for the line that refuses it. */
export interface HeaderField {
  start: number;
  length: number;
  what: string;
}

const field = (start: number, length: number, what: string): HeaderField => ({ start, length, what });

/** The header fields the reader reads or checks (POSIX ustar, and the GNU fields at 345). */
export const FIELDS = {
  name: field(0, 100, 'name'),
  mode: field(100, 8, 'mode'),
  uid: field(108, 8, 'uid'),
  gid: field(116, 8, 'gid'),
  size: field(124, 12, 'size'),
  mtime: field(136, 12, 'mtime'),
  linkname: field(157, 100, 'link target'),
  devmajor: field(329, 8, 'device major number'),
  devminor: field(337, 8, 'device minor number'),
  prefix: field(345, 155, 'prefix field'),
  gnuAtime: field(345, 12, 'GNU access time'),
  gnuCtime: field(357, 12, 'GNU change time'),
} as const;

/**
 * A NUL-terminated header field, which must hold nothing after its terminator: node-tar drops what follows the NUL
 * only up to a newline, so `name\0\nrest` is `name` to Go and GNU tar but `name\nrest` to node-tar.
 */
export function headerString(block: Buffer, { start, length, what }: HeaderField, at: number): string {
  const bytes = block.subarray(start, start + length);
  const nul = bytes.indexOf(0);
  if (nul >= 0 && bytes.subarray(nul).some((byte) => byte !== 0)) {
    fail(
      `The tar header at byte ${at} has bytes after the end of its ${what}; readers disagree on them, so it is refused.`,
    );
  }
  return cString(block, start, length);
}

export function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul < 0 ? length : nul);
}

/** A NUL- or space-terminated octal field, or undefined when it is not one. */
export function octal(block: Buffer, start: number, length: number): number | undefined {
  const text = block
    .toString('latin1', start, start + length)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

/** A numeric field: octal, or GNU base-256 for values too large for its octal digits. */
export function parseNumber(block: Buffer, { start, length, what }: HeaderField, at: number): number {
  const first = block[start]!;
  if (first & 0x80) {
    // GNU base-256, which tar writers use for files of 8 GiB and more; negative values are never a size.
    if (first & 0x40) fail(`The tar header at byte ${at} has a negative ${what}; the tarball is corrupt.`);
    let value = first & 0x3f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    if (!Number.isSafeInteger(value)) fail(`The tar header at byte ${at} has a ${what} too large to be real.`);
    return value;
  }
  const value = octal(block, start, length);
  if (value === undefined)
    fail(`The tar header at byte ${at} has a ${what} that is not an octal number; the tarball is corrupt.`);
  return value;
}

export function checksumMatches(block: Buffer, stored: number): boolean {
  // Only the sum of unsigned bytes: node-tar accepts no other, so a header only Go and GNU tar accept (the signed
  // sum of long-gone writers) would be read differently by different tools.
  let unsigned = 0;
  for (let i = 0; i < BLOCK; i++) unsigned += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return stored === unsigned;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Parses `len key=value\n` records; the length counts the whole record, digits and newline included. Only the keys
 * of PAX_KEYS, each once, with a value of their form: a header this reader does not fully model is refused.
 */
export function parsePax(data: Buffer, at: number): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad the record block with NULs
    const space = data.indexOf(0x20, pos);
    const lengthText = space < 0 ? '' : data.toString('latin1', pos, space);
    const length = Number(lengthText);
    if (!/^[1-9][0-9]*$/.test(lengthText) || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      fail(`The PAX header at byte ${at} has a malformed record; the tarball is corrupt.`);
    }
    const record = data.toString('utf8', space + 1, pos + length - 1);
    const equals = record.indexOf('=');
    if (equals <= 0) fail(`The PAX header at byte ${at} has a record without "key="; the tarball is corrupt.`);
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    const form = Object.hasOwn(PAX_KEYS, key) ? PAX_KEYS[key] : undefined;
    if (!form) {
      fail(
        `The PAX header at byte ${at} has the record ${shown(key, 60)}, which this action does not model ` +
          `(expected only ${Object.keys(PAX_KEYS).join(', ')}): tar readers disagree on such headers, so the tarball is refused.`,
      );
    }
    if (records.has(key)) fail(`The PAX header at byte ${at} sets ${key} twice; the tarball is refused.`);
    if (!form.test(value)) {
      fail(`The PAX header at byte ${at} has ${key}=${shown(value, 60)}, which is not a valid ${key}; it is refused.`);
    }
    records.set(key, value);
    pos += length;
  }
  return records;
}

/**
 * Checks an entry name and returns its normalised form. Names are compared after normalisation, so `./a` and `a`
 * are the same entry (and a duplicate).
 */
export function normaliseName(raw: string, at: number): string {
  if (Buffer.byteLength(raw) > MAX_NAME_BYTES) {
    fail(
      `The tar entry at byte ${at} has a name of ${Buffer.byteLength(raw)} bytes; at most ${MAX_NAME_BYTES} are allowed.`,
    );
  }
  if (raw.includes('\0')) fail(`The tar entry at byte ${at} has a NUL byte inside its name; the tarball is corrupt.`);
  const foreign = firstNonAscii(raw);
  if (foreign) {
    // Image layouts name their files in ASCII; other bytes are decoded, normalised and compared differently by each reader.
    fail(
      `The tar entry ${shown(raw, 120)} at byte ${at} has ${describeCharacter(foreign.character)} in its name: ` +
        'image tarballs name their files in printable ASCII, so it is refused.',
    );
  }
  if (raw.startsWith('/')) {
    fail(
      `The tar entry ${shown(raw, 120)} has an absolute path; an image tarball only holds paths relative to its root.`,
    );
  }
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    fail(`The tar entry ${shown(raw, 120)} has a ".." component that would reach outside the archive; it is refused.`);
  }
  return parts.join('/');
}
