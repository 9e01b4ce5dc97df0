/**
 * Compression of the image tarball: streaming compressors and decompressors from Node's own zlib (zstd is
 * built into Node 24, so no zstd binary is needed), and detection by magic bytes, never by file name.
 */
import { Duplex, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { CompressionLevels, STREAM_CHUNK_BYTES, type Compression } from '../constants.ts';
import { shown } from '../display.ts';
import { UserError, messageOf } from '../errors.ts';
import { zstdCommandAvailable, zstdProcess } from './zstd-process.ts';

export type DetectedFormat = Compression | 'bzip2' | 'xz' | 'unknown';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** 2^27 = 128 MiB: zstd's default limit for decoders, so every zstd reads what is written. */
const ZSTD_LONG_WINDOW_LOG = 27;
const ZSTD_FRAME_MAGIC = ZSTD_MAGIC.readUInt32LE(0);
/** Skippable frames carry metadata a decoder passes over: magic 0x184D2A50 to 0x184D2A5F, a length, the bytes. */
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** The format's largest block (Block_Maximum_Size); a larger size field is damage. */
const MAX_BLOCK_BYTES = 128 * 1024;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const BZIP2_MAGIC = Buffer.from('BZh');
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
/** Bytes needed to tell a plain tar: its header's checksum field covers the first 512 bytes. */
export const DETECT_BYTES = 512;

/** What the first bytes of a file are: a compressed stream, a plain tar, or something else. */
export function detectFormat(head: Buffer): DetectedFormat {
  const startsWith = (magic: Buffer) => head.length >= magic.length && head.subarray(0, magic.length).equals(magic);
  if (startsWith(ZSTD_MAGIC)) return 'zstd';
  // pzstd starts its output with a skippable frame that records the sizes of the frames after it.
  if (head.length >= 4 && (head.readUInt32LE(0) & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) return 'zstd';
  if (startsWith(GZIP_MAGIC)) return 'gzip';
  if (startsWith(XZ_MAGIC)) return 'xz';
  if (startsWith(BZIP2_MAGIC)) return 'bzip2';
  if (isTarHeader(head)) return 'none';
  return 'unknown';
}

/** A tar header is recognised by its checksum (ustar, GNU and v7 headers alike have one). */
function isTarHeader(head: Buffer): boolean {
  if (head.length < DETECT_BYTES) return false;
  const field = head
    .subarray(148, 156)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < DETECT_BYTES; i++) sum += i >= 148 && i < 156 ? 0x20 : head[i]!;
  return sum === parseInt(field, 8);
}

export function defaultLevel(compression: Exclude<Compression, 'none'>): number {
  return CompressionLevels[compression].default;
}

/**
 * A compressing Transform, or undefined for `none`. zstd runs single-threaded: Node's streaming zstd fails with
 * ERR_STREAM_PUSH_AFTER_EOF once ZSTD_c_nbWorkers is set and the input is large and compressible
 * (nodejs/node#59899, still open for Node 24), and compressing separate frames in parallel on the thread pool measured
 * no faster on two cores (docs/performance.md, "zstd").
 */
export function createCompressor(compression: Compression, level?: number): Duplex | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGzip({ level: level ?? defaultLevel('gzip'), chunkSize: STREAM_CHUNK_BYTES });
    case 'zstd':
      if (zstdCommandAvailable()) {
        // Long-distance matching finds the files an image repeats across its layers; 128 MiB is the largest window
        // every zstd decoder accepts untold (docs/performance.md, "zstd").
        return zstdProcess(
          [`-${level ?? defaultLevel('zstd')}`, '-T0', `--long=${ZSTD_LONG_WINDOW_LOG}`],
          'compress the tarball',
        );
      }
      return zlib.createZstdCompress({
        chunkSize: STREAM_CHUNK_BYTES,
        params: {
          [zlib.constants.ZSTD_c_compressionLevel]: level ?? defaultLevel('zstd'),
        },
      });
  }
}

/** Limits on what a compressed tarball may expand to. */
export interface DecompressionLimits {
  /** Output may exceed `floorBytes` only while it stays within this many times the compressed size (200). */
  maxRatio?: number;
  floorBytes?: number;
  /** Where the output is written and the bytes free there: the output may not need more than that. */
  disk?: { where: string; freeBytes: number };
}

/**
 * The pipeline stages that decompress a detected format (none for a plain tar, which is read for exactly its
 * size), capped so that a small hostile file cannot expand without bound, nor past the disk it is written to.
 */
export function createDecompressor(
  format: DetectedFormat,
  compressedSize: number,
  limits: DecompressionLimits = {},
): Duplex[] {
  let inflate: Duplex;
  switch (format) {
    case 'none':
      return [];
    case 'gzip':
      // Node's gunzip reads concatenated gzip members, as gzip -d does.
      inflate = zlib.createGunzip({ chunkSize: STREAM_CHUNK_BYTES });
      break;
    case 'zstd':
      // The zstd command decodes on its own core, beside the parsing and hashing; the frame walker is the fallback.
      inflate = zstdCommandAvailable()
        ? zstdProcess(['-d'], 'decompress the tarball', (detail) => zstdDamage(`zstd -d stopped (${detail})`))
        : createZstdFramesDecompressor();
      break;
    default:
      throw new UserError(
        `The tarball is compressed with ${format}, which this action does not read: expected zstd, gzip or a plain tar; ` +
          'save it again with this action, or decompress it first.',
      );
  }
  const ratioCap = Math.max(limits.floorBytes ?? 4 * 1024 ** 3, compressedSize * (limits.maxRatio ?? 200));
  const disk = limits.disk && limits.disk.freeBytes < ratioCap ? limits.disk : undefined;
  return [inflate, new OutputCap(disk?.freeBytes ?? ratioCap, format, disk?.where)];
}

class OutputCap extends Transform {
  private seen = 0;
  private readonly cap: number;
  private readonly format: string;
  private readonly disk: string | undefined;

  constructor(cap: number, format: string, disk: string | undefined) {
    super();
    this.cap = cap;
    this.format = format;
    this.disk = disk;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen <= this.cap) {
      callback(null, chunk);
      return;
    }
    callback(
      new UserError(
        this.disk === undefined
          ? `The ${this.format} tarball expands to more than ${this.cap} bytes, far beyond any real image of its size ` +
              '(a compression bomb or a corrupt file): refusing it; check where the artifact came from.'
          : `The ${this.format} tarball expands to more than the ${this.cap} bytes free at ${shown(this.disk)}: ` +
              'free space on the runner or set `path` to a larger disk.',
      ),
    );
  }
}

/** A zstd stream that cannot be decoded: cut short (the usual way, a transfer or a disk that stopped) or damaged. */
function zstdDamage(detail: string): UserError {
  if (/premature end|ends inside a frame|truncated|unexpected end/i.test(detail)) {
    return new UserError(
      `The zstd tarball is cut short (${detail}): it was truncated in transfer or when it was made; produce it again.`,
    );
  }
  return new UserError(
    `The zstd tarball is damaged: ${detail}. It was cut short or corrupted in transfer; produce it again.`,
  );
}

/** Exact-length reads over a stream of chunks, without copying when a read falls inside one chunk. */
class ByteSource {
  readonly #source: AsyncIterator<Buffer>;
  #chunks: Buffer[] = [];
  #available = 0;
  #done = false;
  /** Bytes taken so far. */
  offset = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Up to `bytes` bytes: fewer only at the end of the input. */
  async take(bytes: number): Promise<Buffer> {
    while (this.#available < bytes && !this.#done) {
      const next = await this.#source.next();
      if (next.done) this.#done = true;
      else {
        this.#chunks.push(next.value);
        this.#available += next.value.length;
      }
    }
    const length = Math.min(bytes, this.#available);
    const parts: Buffer[] = [];
    for (let needed = length; needed > 0;) {
      const first = this.#chunks[0]!;
      if (first.length <= needed) {
        parts.push(first);
        this.#chunks.shift();
        needed -= first.length;
      } else {
        parts.push(first.subarray(0, needed));
        this.#chunks[0] = first.subarray(needed);
        needed = 0;
      }
    }
    this.#available -= length;
    this.offset += length;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
  }
}

async function need(input: ByteSource, bytes: number): Promise<Buffer> {
  const taken = await input.take(bytes);
  if (taken.length < bytes) throw zstdDamage(`it ends inside a frame, after ${input.offset} bytes`);
  return taken;
}

/**
 * The bytes of one compressed frame, whose magic has been read, in pieces of about STREAM_CHUNK_BYTES. The frame is
 * walked block by block (RFC 8878, 3.1.1) only to find where it ends: decoding is zlib's.
 */
async function* frameBytes(input: ByteSource, magic: Buffer): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [magic];
  let pendingBytes = magic.length;
  const joined = (): Buffer => (pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
  const keep = (piece: Buffer): Buffer[] => {
    const last = pending.at(-1);
    // Blocks read from one chunk lie side by side in it: widen the view instead of copying them together.
    if (last && last.buffer === piece.buffer && last.byteOffset + last.length === piece.byteOffset) {
      pending[pending.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + piece.length);
    } else {
      pending.push(piece);
    }
    pendingBytes += piece.length;
    if (pendingBytes < STREAM_CHUNK_BYTES) return [];
    const out = joined();
    pending = [];
    pendingBytes = 0;
    return [out];
  };
  const descriptor = await need(input, 1);
  yield* keep(descriptor);
  const flags = descriptor[0]!;
  if (flags & 0x08) throw zstdDamage(`the frame at byte ${input.offset - 5} sets a reserved bit`);
  const singleSegment = (flags >> 5) & 1;
  const headerRest = (singleSegment ? 0 : 1) + [0, 1, 2, 4][flags & 3]! + [singleSegment ? 1 : 0, 2, 4, 8][flags >> 6]!;
  if (headerRest > 0) yield* keep(await need(input, headerRest));
  for (let last = false; !last;) {
    const header = await need(input, 3);
    yield* keep(header);
    const value = header[0]! | (header[1]! << 8) | (header[2]! << 16);
    last = (value & 1) === 1;
    const type = (value >> 1) & 3;
    const size = value >>> 3;
    if (type === 3) throw zstdDamage(`a block at byte ${input.offset - 3} has the reserved type`);
    if (size > MAX_BLOCK_BYTES) throw zstdDamage(`a block at byte ${input.offset - 3} claims ${size} bytes`);
    const content = type === 1 ? 1 : size;
    if (content > 0) yield* keep(await need(input, content));
  }
  if (flags & 0x04) yield* keep(await need(input, 4));
  if (pendingBytes > 0) yield joined();
}

/**
 * A zstd decoder that reads every frame: Node's stops after the first, and drops the rest without a word, which
 * is what `pzstd`, `zstd --adapt` and `cat a.zst b.zst` produce. Skippable frames are passed over, and anything
 * after the last frame that is not a frame is damage.
 */
export function createZstdFramesDecompressor(): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const input = new ByteSource(source);
    for (;;) {
      const magic = await input.take(4);
      if (magic.length === 0) return;
      const at = input.offset - magic.length;
      if (magic.length < 4) throw zstdDamage(`${magic.length} stray bytes follow its last frame`);
      const value = magic.readUInt32LE(0);
      if ((value & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        for (let left = (await need(input, 4)).readUInt32LE(0); left > 0;) {
          left -= (await need(input, Math.min(left, STREAM_CHUNK_BYTES))).length;
        }
        continue;
      }
      if (value !== ZSTD_FRAME_MAGIC) throw zstdDamage(`the bytes at ${at} are not a zstd frame`);
      const decoder = zlib.createZstdDecompress({ chunkSize: STREAM_CHUNK_BYTES });
      const feeding = pipeline(Readable.from(frameBytes(input, magic)), decoder);
      feeding.catch(() => undefined);
      try {
        for await (const chunk of decoder) yield chunk as Buffer;
        await feeding;
      } catch (error) {
        throw error instanceof UserError ? error : zstdDamage(`${messageOf(error)} in the frame at byte ${at}`);
      } finally {
        decoder.destroy();
      }
    }
  });
}
