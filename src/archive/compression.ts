/**
 * Compression of the image tarball: streaming compressors and decompressors from Node's own zlib (zstd is
 * built into Node 24, so no zstd binary is needed), and detection by magic bytes, never by file name.
 */
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { CompressionLevels, type Compression } from '../constants.ts';
import { UserError } from '../errors.ts';
import { zstdCommandAvailable, zstdProcess } from './zstd-process.ts';

export type DetectedFormat = Compression | 'bzip2' | 'xz' | 'unknown';

/**
 * Size of the chunks every streaming stage reads, writes and (de)compresses into. zlib's default of 16 KiB turns a
 * GiB into 65,536 hand-offs between stages and as many pipe writes to `docker load`; 1 MiB measured 20-35% faster
 * on both sides (README, Performance) for a few MiB more memory.
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** 2^27 = 128 MiB: zstd's default limit for decoders, so every zstd reads what is written. */
const ZSTD_LONG_WINDOW_LOG = 27;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const BZIP2_MAGIC = Buffer.from('BZh');
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
/** Bytes needed to tell a plain tar: its header's checksum field covers the first 512 bytes. */
export const DETECT_BYTES = 512;

/** What the first bytes of a file are: a compressed stream, a plain tar, or something else. */
export function detectFormat(head: Buffer): DetectedFormat {
  const startsWith = (magic: Buffer) => head.length >= magic.length && head.subarray(0, magic.length).equals(magic);
  if (startsWith(ZSTD_MAGIC)) return 'zstd';
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
 * no faster on two cores (114-179 MB/s against 173 MB/s for one stream).
 */
export function createCompressor(compression: Compression, level?: number): Duplex | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGzip({ level: level ?? defaultLevel('gzip'), chunkSize: STREAM_CHUNK_BYTES });
    case 'zstd':
      if (zstdCommandAvailable()) {
        // Long-distance matching over a 128 MiB window finds the files an image repeats across its layers: on the
        // benchmark's 1 GiB image it wrote 0.84x the baseline's zip at level 3, against 0.95x without (README,
        // Performance). 128 MiB is the largest window any zstd decoder accepts without being told to.
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

/**
 * The pipeline stages that decompress a detected format (none for a plain tar), capped so that a small hostile file cannot expand without
 * bound: output may exceed `floorBytes` only while it stays within `maxRatio` times the compressed input size.
 */
export function createDecompressor(
  format: DetectedFormat,
  compressedSize: number,
  limits: { maxRatio?: number; floorBytes?: number } = {},
): Duplex[] {
  let inflate: Duplex;
  switch (format) {
    case 'none':
      return [];
    case 'gzip':
      inflate = zlib.createGunzip({ chunkSize: STREAM_CHUNK_BYTES });
      break;
    case 'zstd':
      inflate = zstdCommandAvailable()
        ? zstdProcess(['-d'], 'decompress the tarball')
        : zlib.createZstdDecompress({ chunkSize: STREAM_CHUNK_BYTES });
      break;
    default:
      throw new UserError(
        `The tarball is compressed with ${format}, which this action does not read: expected zstd, gzip or a plain tar; ` +
          'save it again with this action, or decompress it first.',
      );
  }
  const cap = Math.max(limits.floorBytes ?? 4 * 1024 ** 3, compressedSize * (limits.maxRatio ?? 200));
  return [inflate, new OutputCap(cap, format)];
}

class OutputCap extends Transform {
  private seen = 0;
  private readonly cap: number;
  private readonly format: string;

  constructor(cap: number, format: string) {
    super();
    this.cap = cap;
    this.format = format;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.cap) {
      callback(
        new UserError(
          `The ${this.format} tarball expands to more than ${this.cap} bytes, far beyond any real image of its size ` +
            '(a compression bomb or a corrupt file): refusing it; check where the artifact came from.',
        ),
      );
      return;
    }
    callback(null, chunk);
  }
}
