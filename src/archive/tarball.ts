/**
 * Writing the image tarball in ONE streaming pass: the tar stream (from `docker save`, or a source tarball after
 * decompression) is verified blob by blob and rewritten as the canonical archive (archive/canonical.ts), which is
 * compressed, hashed and written to disk at once. Nothing is buffered whole, and a failure leaves no file behind.
 */
import { once } from 'node:events';
import { constants, createWriteStream, type Stats } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { STREAM_CHUNK_BYTES } from '../constants.ts';
import {
  DETECT_BYTES,
  createCompressor,
  createDecompressor,
  detectFormat,
  type DetectedFormat,
} from './compression.ts';
import { HashingStream } from '../hash.ts';
import { createCanonicalWriter, type CanonicalOptions, type Selection } from './canonical.ts';
import type { ArchiveFormat, ArchiveReport } from './model.ts';
import type { Compression } from '../constants.ts';
import { shown } from '../display.ts';
import { Stalled, UserError, messageOf } from '../errors.ts';
import { fileProblem, freeBytes, isFileSystemProblem, makeDirectory } from '../files.ts';
import { GrowingFileStream, POLL_MS } from '../growing-file.ts';
import { job } from '../job.ts';
import { ProgressMeter, type StallLimit } from '../progress.ts';

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
  /** Stops the producer (the stream failed for another reason). */
  stop?: () => void;
  /** Phase name for progress lines. */
  phase: string;
  /** How long the stream may go without a byte (the producer's stall). */
  stall?: StallLimit;
}

/**
 * A failure of the bytes read rather than of the place written: zlib's codes for a damaged or cut-short gzip or
 * zstd stream. Named for what it is, so that a truncated download is never reported as a failure to write.
 */
export function inputProblem(error: unknown): UserError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (!/^(?:Z_|ZSTD_error_)/.test(code)) return undefined;
  const cutShort = code === 'Z_BUF_ERROR';
  return new UserError(
    `The tarball's compressed stream is ${cutShort ? 'cut short' : 'corrupt'} (${messageOf(error)}): ` +
      `${cutShort ? 'an interrupted transfer or a full disk where it was made' : 'it was damaged after it was made'}; ` +
      'produce it again.',
  );
}

/** Where and how the tarball is written. */
export interface TarballTarget {
  file: string;
  compression: Compression;
  /** The compressor's level; its default when undefined. */
  level?: number | undefined;
  /** Which images, under which names, the canonical archive holds (archive/canonical.ts). */
  canonical: CanonicalOptions;
  /** Stages the canonical archive passes through before it is compressed: another sink of the read (layout.ts). */
  after?: Duplex[] | undefined;
  /** Told the partial file's path once it is open, for a reader that follows it as it grows (the upload). */
  onOpen?: ((partial: string) => void) | undefined;
}

/** Writes what `start` produces as the canonical archive into `target.file`, compressed and hashed, in one pass. */
export async function writeTarball(
  start: () => TarballSource,
  { file, compression, level, canonical, onOpen, after = [] }: TarballTarget,
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
  onOpen?.(partial);
  const unregister = job.onStop('removing the partial tarball', () => rm(partial, { force: true }));
  const source = start();
  // Awaited below; handled now too, since the producer may fail before the pipeline does.
  source.finished?.catch(() => undefined);
  const writer = createCanonicalWriter(canonical);
  const meter = new ProgressMeter(source.phase, { ...(source.stall && { stall: source.stall }) });
  const fileHash = new HashingStream();
  const compressor = createCompressor(compression, level);
  try {
    await pipeline([
      source.stream,
      ...source.decode,
      meter,
      writer.stream,
      ...after,
      ...(compressor ? [compressor] : []),
      fileHash,
      output,
    ]);
    await source.finished;
    const { report, format, selections } = await writer.result;
    await rename(partial, file);
    unregister();
    return { file, digest: fileHash.digest(), size: fileHash.bytes, tarBytes: meter.bytes, report, format, selections };
  } catch (error) {
    unregister();
    source.stream.destroy();
    source.stop?.();
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
    const cause = isFileSystemProblem(error) || error instanceof Stalled ? error : (producerError ?? error);
    if (cause instanceof UserError) throw cause;
    throw (
      inputProblem(cause) ??
      (output.errored || isFileSystemProblem(cause) ? fileProblem(cause, file, 'writing') : cause)
    );
  }
}

export interface OpenedTarball {
  stream: Readable;
  decode: Duplex[];
  compression: DetectedFormat;
  size: number;
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** A file that another writer is still appending to, and the promise that settles when it has finished. */
export interface GrowingFile {
  /** Resolves when the file is complete; rejects, with the reason to give, when it never will be. */
  complete: Promise<void>;
  /** The size the file is expected to reach: bounds the decompression as the final size would. */
  expectedSize: number;
}

/** The first `length` bytes of a file, waiting for them while `growing` has not completed. */
async function headOf(handle: FileHandle, length: number, growing: GrowingFile | undefined): Promise<Buffer> {
  let finished = growing === undefined;
  let failure: unknown;
  growing?.complete.then(
    () => (finished = true),
    (error: unknown) => (failure = error ?? new Error('the download failed')),
  );
  for (;;) {
    if (failure !== undefined) throw failure;
    const wasFinished = finished;
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(length), 0, length, 0);
    if (bytesRead === length || wasFinished) return buffer.subarray(0, bytesRead);
    await sleep(POLL_MS);
  }
}

/**
 * Opens a tarball on disk and works out its compression from its first bytes, never from its name. Only a regular
 * file is read, and only the bytes it had when opened: opened without blocking (a FIFO would wait forever for a
 * writer), then checked, so a directory, pipe or device gets one line instead of a hang or an endless stream.
 * `writtenTo` is where the decompressed tar will be written, if anywhere: it may not expand past the free space.
 * `growing`: the file is still being downloaded; it is read as it arrives, to the end its download leaves.
 */
export async function openTarball(
  file: string,
  what: string,
  writtenTo?: string,
  growing?: GrowingFile,
): Promise<OpenedTarball> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT'
        ? `${what} ${shown(file)} does not exist: check the path (relative paths are from the workspace).`
        : code === 'ENXIO'
          ? `${what} ${shown(file)} is a socket, not a file: expected an image tarball; pass the path of a file.`
          : `Cannot read ${what} ${shown(file)} (${code ?? messageOf(error)}): check the file's permissions.`,
    );
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new UserError(
        `${what} ${shown(file)} is ${kindOf(stats)}: expected an image tarball, a regular file; pass the path of the file.`,
      );
    }
    const size = growing ? growing.expectedSize : stats.size;
    const head = await headOf(handle, DETECT_BYTES, growing);
    const bytesRead = head.length;
    const compression = detectFormat(head);
    if (compression === 'unknown') {
      throw new UserError(
        `${what} ${shown(file)} is not an image tarball: expected a tar (plain, zstd or gzip), found ` +
          `${bytesRead === 0 ? 'an empty file' : `bytes starting ${head.subarray(0, Math.min(8, bytesRead)).toString('hex')}`}.`,
      );
    }
    const free = writtenTo === undefined ? undefined : await freeBytes(writtenTo);
    const decode = createDecompressor(compression, size, {
      ...(free !== undefined && writtenTo !== undefined && { disk: { where: writtenTo, freeBytes: free } }),
    });
    let stream: Readable;
    if (growing) {
      const reader = new GrowingFileStream({ handle });
      growing.complete.then(
        () => reader.end(),
        (error: unknown) => reader.fail((error as Error | undefined) ?? new Error('the download failed')),
      );
      stream = reader;
    } else {
      stream = handle.createReadStream({ start: 0, end: Math.max(0, size - 1), highWaterMark: STREAM_CHUNK_BYTES });
    }
    return { stream, decode, compression, size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
