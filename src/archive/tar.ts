/**
 * A streaming reader for the outer tar of an image tarball, and the few writing helpers the load side needs.
 *
 * The reader never extracts anything: it hands each entry's header, then its content as slices of the chunks it
 * was given, to a listener. It refuses every header shape it does not fully model (tar-header.ts), since readers
 * disagree on those; test/unit/tar-fuzz.test.ts checks that whatever it accepts, GNU tar and node-tar see alike.
 * Why not node-tar's Parser: docs/decisions.md, "The action's own tar reader".
 */
import { shown } from '../display.ts';
import { refuse as fail } from '../errors.ts';
import {
  BLOCK,
  FIELDS,
  MAX_META_BYTES,
  MAX_OCTAL_SIZE,
  MAX_TOTAL_META_BYTES,
  REFUSED_TYPES,
  TYPES,
  checksumMatches,
  cString,
  headerString,
  isZeroBlock,
  normaliseName,
  octal,
  parseNumber,
  parsePax,
  type EntryType,
} from './tar-header.ts';

export {
  BLOCK,
  MAX_META_BYTES,
  MAX_NAME_BYTES,
  MAX_TOTAL_META_BYTES,
  normaliseName,
  type EntryType,
} from './tar-header.ts';

export interface TarEntry {
  /** Normalised: no leading `./`, no trailing `/`, no empty or `.` components. `''` is the archive's root. */
  readonly name: string;
  readonly type: EntryType;
  /** Bytes of content that follow (0 for every type but `file`). */
  readonly size: number;
  readonly linkname: string;
  /** Offset of the entry's first header (its PAX or long-name header, if any) in the archive. */
  readonly offset: number;
}

export interface TarListener {
  entry(entry: TarEntry): void;
  data(chunk: Buffer): void;
  /** The end of the current entry's content. */
  entryEnd(): void;
}

type State = 'header' | 'data' | 'meta' | 'padding' | 'end-marker' | 'ended';

/** The one extended header (PAX, GNU long name or long link) that an entry may have. */
interface Pending {
  pax: Map<string, string>;
  longName: string | undefined;
  longLink: string | undefined;
  offset: number;
}

/**
 * Push-based tar reader: feed it chunks with `write`, then call `end`. Throws UserError at the first problem;
 * after a throw it must not be used again.
 */
export class TarReader {
  readonly #listener: TarListener;
  readonly #header = Buffer.alloc(BLOCK);
  #headerFill = 0;
  #state: State = 'header';
  /** Bytes left in the current state's unit: content, meta content or padding. */
  #remaining = 0;
  #padding = 0;
  #metaType = '';
  #meta: Buffer = Buffer.alloc(0);
  #metaFill = 0;
  #metaBytes = 0;
  #pending: Pending | undefined;
  #offset = 0;
  #endAt = -1;

  constructor(listener: TarListener) {
    this.#listener = listener;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Offset of the first of the two zero blocks that end the archive, once seen; -1 before. */
  get endOffset(): number {
    return this.#endAt;
  }

  /** Bytes consumed that are not part of a header block still being filled (which may be the end marker). */
  get settledOffset(): number {
    return this.#offset - this.#headerFill;
  }

  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.#state) {
        case 'ended': {
          // What follows the end marker is record padding, zeros; anything else is an entry some readers (tar -i,
          // node-tar) would still find.
          const junk = chunk.subarray(pos).findIndex((byte) => byte !== 0);
          if (junk >= 0) {
            fail(
              `The tar archive has data at byte ${this.#offset + junk}, after its end-of-archive marker; it is refused.`,
            );
          }
          this.#offset += chunk.length - pos;
          return;
        }
        case 'header':
        case 'end-marker': {
          const take = Math.min(BLOCK - this.#headerFill, chunk.length - pos);
          chunk.copy(this.#header, this.#headerFill, pos, pos + take);
          this.#headerFill += take;
          pos += take;
          this.#offset += take;
          if (this.#headerFill === BLOCK) {
            this.#headerFill = 0;
            this.#block(this.#offset - BLOCK);
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.#remaining, chunk.length - pos);
          this.#listener.data(chunk.subarray(pos, pos + take));
          pos += take;
          this.#offset += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#listener.entryEnd();
            this.#toPadding();
          }
          break;
        }
        case 'meta': {
          const take = Math.min(this.#remaining, chunk.length - pos);
          chunk.copy(this.#meta, this.#metaFill, pos, pos + take);
          this.#metaFill += take;
          pos += take;
          this.#offset += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#finishMeta();
            this.#toPadding();
          }
          break;
        }
        case 'padding': {
          const take = Math.min(this.#padding, chunk.length - pos);
          pos += take;
          this.#offset += take;
          this.#padding -= take;
          if (this.#padding === 0) this.#state = 'header';
          break;
        }
      }
    }
  }

  /** The input is over: anything but a complete end-of-archive marker means the archive was cut short. */
  end(): void {
    if (this.#state === 'ended') return;
    if (this.#offset === 0) fail('The tarball is empty (0 bytes); expected an image tarball.');
    fail(
      `The tarball ends after ${this.#offset} bytes without the end-of-archive marker: it was cut short ` +
        '(an interrupted download or a full disk?); produce it again.',
    );
  }

  #toPadding(): void {
    const overhang = this.#offset % BLOCK;
    this.#padding = overhang === 0 ? 0 : BLOCK - overhang;
    this.#state = this.#padding === 0 ? 'header' : 'padding';
  }

  #block(at: number): void {
    const block = this.#header;
    if (isZeroBlock(block)) {
      if (this.#state === 'end-marker') {
        this.#state = 'ended';
        return;
      }
      if (this.#pending) fail(`The tar archive ends at byte ${at} right after an extended header; it is corrupt.`);
      this.#endAt = at;
      this.#state = 'end-marker';
      return;
    }
    if (this.#state === 'end-marker') {
      fail(`The tar archive has a lone zero block at byte ${this.#endAt} followed by more data; it is corrupt.`);
    }
    const stored = octal(block, 148, 8);
    if (stored === undefined || !checksumMatches(block, stored)) {
      fail(
        `The tar header at byte ${at} fails its checksum: this is not a tar archive or it is corrupt ` +
          '(was it still compressed, or damaged in transfer?).',
      );
    }
    const typeflag = String.fromCharCode(block[156]!);
    const size = parseNumber(block, FIELDS.size, at);
    // Fields this reader has no use for, checked as Go checks them: a header Go (and so docker) refuses must not pass.
    parseNumber(block, FIELDS.mode, at);
    parseNumber(block, FIELDS.uid, at);
    parseNumber(block, FIELDS.gid, at);
    parseNumber(block, FIELDS.mtime, at);
    const magic = block.toString('latin1', 257, 265);
    const ustar = magic.startsWith('ustar\0');
    if (ustar || magic === 'ustar  \0') {
      parseNumber(block, FIELDS.devmajor, at);
      parseNumber(block, FIELDS.devminor, at);
    }
    if (magic === 'ustar  \0') {
      parseNumber(block, FIELDS.gnuAtime, at);
      parseNumber(block, FIELDS.gnuCtime, at);
    }
    const refused = REFUSED_TYPES[typeflag];
    if (refused) fail(`The tar header at byte ${at} is ${refused}; image tarballs never hold one, so it is refused.`);
    if (ustar && headerString(block, FIELDS.prefix, at) !== '') {
      // Go joins the prefix to the name whatever the version field says, node-tar only for version "00", and star
      // archives have a shorter prefix: readers disagree, and no image tarball needs it (its names are short).
      fail(
        `The tar header at byte ${at} uses the ustar prefix field, which readers interpret differently; it is refused.`,
      );
    }

    if (typeflag === 'x' || typeflag === 'L' || typeflag === 'K') {
      if (this.#pending) {
        // Go keeps the last PAX header, node-tar merges them, and a GNU long name beats a PAX path in Go only.
        fail(
          `The tar header at byte ${at} is a second extended header for the entry that starts at byte ` +
            `${this.#pending.offset}; readers disagree on which one counts, so it is refused.`,
        );
      }
      const kind = typeflag === 'x' ? 'PAX' : 'GNU long-name';
      if (size > MAX_META_BYTES)
        fail(`The ${kind} header at byte ${at} is ${size} bytes; at most ${MAX_META_BYTES} are allowed.`);
      this.#metaBytes += size;
      if (this.#metaBytes > MAX_TOTAL_META_BYTES) {
        fail(
          `The tar archive has more than ${MAX_TOTAL_META_BYTES} bytes of extended headers (at byte ${at}); ` +
            'no image tarball needs that many, so it is refused.',
        );
      }
      this.#pending = { pax: new Map(), longName: undefined, longLink: undefined, offset: at };
      this.#metaType = typeflag;
      this.#meta = Buffer.alloc(size);
      this.#metaFill = 0;
      this.#remaining = size;
      if (size === 0) {
        this.#finishMeta();
        this.#state = 'header';
      } else {
        this.#state = 'meta';
      }
      return;
    }

    const type = TYPES[typeflag];
    if (!type) {
      fail(
        `The tar entry at byte ${at} has type "${typeflag.replace(/[^\x20-\x7e]/g, '?')}", which an image tarball ` +
          'never holds (only files and directories are expected).',
      );
    }
    const pending = this.#pending;
    this.#pending = undefined;
    const offset = pending?.offset ?? at;
    const headerName = headerString(block, FIELDS.name, at);
    const rawName = pending?.pax.get('path') ?? pending?.longName ?? headerName;
    const headerLink = headerString(block, FIELDS.linkname, at);
    const linkname = pending?.pax.get('linkpath') ?? pending?.longLink ?? headerLink;
    const paxSize = pending?.pax.get('size');
    let entrySize = size;
    if (paxSize !== undefined) {
      entrySize = Number(paxSize);
      // The size field is ignored when a PAX size is present; a reader that does not know PAX would use it.
      if (!Number.isSafeInteger(entrySize) || (entrySize !== size && !(size === 0 && entrySize > MAX_OCTAL_SIZE))) {
        fail(
          `The PAX header at byte ${offset} says size ${shown(paxSize, 20)}, but its entry's header says ${size}; ` +
            'readers that know PAX and readers that do not would disagree, so it is refused.',
        );
      }
    }
    if (type === 'file' && /\/$/.test(rawName)) {
      // Go and node-tar read a file entry whose name ends in "/" as a directory, with no content after it.
      fail(`The tar entry ${shown(rawName, 120)} at byte ${offset} is a file whose name ends in "/"; it is refused.`);
    }
    if (type !== 'file' && entrySize !== 0) {
      // Go skips no content for these types, node-tar and GNU tar skip what the size says.
      fail(
        `The tar entry ${shown(rawName, 120)} at byte ${offset} is a ${type.replace('-', ' ')} with a size of ` +
          `${entrySize} bytes; readers disagree on whether content follows, so it is refused.`,
      );
    }
    if (linkname === '' && (type === 'symlink' || type === 'hardlink')) {
      fail(`The tar entry ${shown(rawName, 120)} at byte ${offset} is a ${type} without a target; it is refused.`);
    }
    if (linkname !== '' && type !== 'symlink' && type !== 'hardlink') {
      fail(`The tar entry ${shown(rawName, 120)} at byte ${offset} is a ${type} with a link target; it is refused.`);
    }
    const name = normaliseName(rawName, offset);
    if (name === '' && (type !== 'directory' || rawName === '')) {
      fail(`The tar entry at byte ${offset} has no name (${shown(rawName)}); it is refused.`);
    }
    this.#listener.entry({ name, type, size: entrySize, linkname, offset });
    if (entrySize === 0) {
      this.#listener.entryEnd();
      this.#state = 'header';
    } else {
      this.#remaining = entrySize;
      this.#state = 'data';
    }
  }

  #finishMeta(): void {
    const pending = this.#pending!;
    const data = this.#meta;
    this.#meta = Buffer.alloc(0);
    switch (this.#metaType) {
      case 'x':
        pending.pax = parsePax(data, pending.offset);
        break;
      case 'L':
        pending.longName = cString(data, 0, data.length);
        break;
      case 'K':
        pending.longLink = cString(data, 0, data.length);
        break;
    }
  }
}
