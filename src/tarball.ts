/**
 * Writing the image tarball in ONE streaming pass: the tar stream (from `docker save`, or a source tarball after
 * decompression) is verified blob by blob and rewritten as the canonical archive (archive/canonical.ts), which is
 * compressed, hashed and written to disk at once. Nothing is buffered whole, and a failure leaves no file behind.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DETECT_BYTES,
  STREAM_CHUNK_BYTES,
  createCompressor,
  createDecompressor,
  detectFormat,
  type DetectedFormat,
} from './archive/compression.ts';
import { HashingStream } from './archive/hash.ts';
import { createCanonicalWriter, type CanonicalOptions, type Selection } from './archive/canonical.ts';
import type { ArchiveFormat, ArchiveReport } from './archive/inspect.ts';
import type { Compression } from './constants.ts';
import { UserError, messageOf } from './errors.ts';
import { ProgressMeter } from './progress.ts';

export interface WrittenTarball {
  file: string;
  /** `sha256:<hex>` of the file as written (what the artifact's digest will be). */
  digest: string;
  size: number;
  /** Bytes of the plain tar read, before compression. */
  tarBytes: number;
  /** What the tar read held, verified. */
  report: ArchiveReport;
  /** The layout of the canonical archive written (README: Security). */
  format: ArchiveFormat;
  /** The images written, each under the references it is named by. */
  selections: Selection[];
}

export interface TarballSource {
  stream: Readable;
  /** Stages that turn `stream` into a plain tar (decompression of a source tarball); empty for docker save. */
  decode: Duplex[];
  /** Settles when whatever produces the stream has finished, e.g. the `docker save` process's exit. */
  finished?: Promise<void>;
  /** Phase name for progress lines. */
  phase: string;
}

/** The errno codes `fileProblem` explains: problems of the place written to, never of what is written. */
const FILE_SYSTEM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST']);

function isFileSystemProblem(error: unknown): boolean {
  return FILE_SYSTEM_CODES.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/** Turns file-system failures into the one line a user can act on. */
export function fileProblem(error: unknown, file: string, doing: string): UserError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const directory = path.dirname(file);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(
        `Ran out of disk space ${doing} \`${file}\`: free space on the runner or set \`path\` to a larger disk.`,
      );
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new UserError(`Cannot write to \`${directory}\` (${code}): set \`path\` to a writable directory.`);
    case 'ENOTDIR':
    case 'EEXIST':
      return new UserError(`\`${directory}\` is not a directory: set \`path\` to a directory.`);
    default:
      return error instanceof UserError ? error : new UserError(`Failed ${doing} \`${file}\`: ${messageOf(error)}`);
  }
}

/**
 * `mkdir -p`, with the real reason on failure: Node's recursive mkdir reports ENOENT for a parent it could not
 * create on a read-only file system, so the first missing component is created alone to get EROFS/EACCES.
 */
export async function makeDirectory(directory: string): Promise<void> {
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    let current = directory;
    while (path.dirname(current) !== current) {
      try {
        await stat(path.dirname(current));
        break;
      } catch {
        current = path.dirname(current);
      }
    }
    await mkdir(current);
    throw error;
  }
}

export async function writeTarball(
  start: () => TarballSource,
  file: string,
  compression: Compression,
  level: number | undefined,
  canonical: CanonicalOptions,
): Promise<WrittenTarball> {
  // The output directory comes first: a path problem must fail before any producer (docker save) is started.
  try {
    await makeDirectory(path.dirname(file));
  } catch (error) {
    throw fileProblem(error, file, 'creating the directory for');
  }
  const partial = `${file}.partial-${process.pid}`;
  const output = createWriteStream(partial, { flags: 'wx', highWaterMark: STREAM_CHUNK_BYTES });
  try {
    await once(output, 'open');
  } catch (error) {
    throw fileProblem(error, file, 'creating');
  }
  const source = start();
  // Awaited below; handled now too, since the producer may fail before the pipeline does.
  source.finished?.catch(() => undefined);
  const writer = createCanonicalWriter(canonical);
  const meter = new ProgressMeter(source.phase);
  const fileHash = new HashingStream();
  const compressor = createCompressor(compression, level);
  try {
    await pipeline([
      source.stream,
      ...source.decode,
      meter,
      writer.stream,
      ...(compressor ? [compressor] : []),
      fileHash,
      output,
    ]);
    await source.finished;
    const { report, format, selections } = await writer.result;
    await rename(partial, file);
    return { file, digest: fileHash.digest(), size: fileHash.bytes, tarBytes: meter.bytes, report, format, selections };
  } catch (error) {
    source.stream.destroy();
    if (!output.closed) {
      output.destroy();
      await once(output, 'close').catch(() => undefined);
    }
    await rm(partial, { force: true });
    // When the producer failed (docker save could not find an image), its own message explains the short stream;
    // when the file could not be written (a full disk), that is the cause, and the producer only lost its reader.
    const producerError = await source.finished?.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    const cause = isFileSystemProblem(error) ? error : (producerError ?? error);
    throw cause instanceof UserError ? cause : fileProblem(cause, file, 'writing');
  }
}

export interface OpenedTarball {
  stream: Readable;
  decode: Duplex[];
  compression: DetectedFormat;
  size: number;
}

/** Opens a tarball on disk and works out its compression from its first bytes, never from its name. */
export async function openTarball(file: string, what: string): Promise<OpenedTarball> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT'
        ? `${what} \`${file}\` does not exist: check the path (relative paths are from the workspace).`
        : `Cannot read ${what} \`${file}\`: ${messageOf(error)}`,
    );
  }
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(DETECT_BYTES);
    const { bytesRead } = await handle.read(head, 0, DETECT_BYTES, 0);
    const compression = detectFormat(head.subarray(0, bytesRead));
    if (compression === 'unknown') {
      throw new UserError(
        `${what} \`${file}\` is not an image tarball: expected a tar (plain, zstd or gzip), found ` +
          `${bytesRead === 0 ? 'an empty file' : `bytes starting ${head.subarray(0, Math.min(8, bytesRead)).toString('hex')}`}.`,
      );
    }
    const decode = createDecompressor(compression, size);
    return { stream: createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES }), decode, compression, size };
  } finally {
    await handle.close();
  }
}
