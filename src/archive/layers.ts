/**
 * What each layer blob expands to, as the engine will see it: the engine trusts a config's diff_ids, so every layer is
 * decompressed as it streams past (by its bytes, never by its media type alone) and its content hashed, bounded in how
 * far it may expand. docs/decisions/layers-against-diff-ids.md says why and what it costs.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { shown } from '../display.ts';
import { UserError, messageOf } from '../errors.ts';
import { formatBytes } from '../progress.ts';
import { STREAM_CHUNK_BYTES } from '../constants.ts';
import { createZstdFramesDecompressor } from './compression.ts';
import { abort as abortLayer, finish as finishLayer, send as sendChunk, startLayer } from './gunzip-worker.ts';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** What a blob holds once decompressed: for a layer, its diff_id and size. */
export interface LayerContent {
  compression: LayerCompression;
  /** `sha256:` of the uncompressed bytes. */
  digest: string;
  size: number;
}

/** Bytes needed to tell a compressed blob from a plain one. */
export const LAYER_HEAD_BYTES = 4;
/** A layer may expand to this many times its compressed size; real layers stay far below (README: Limits). */
export const LAYER_EXPANSION_RATIO = 200;
/** …and always to this much, so that a small layer holding a file of zeros is not taken for a bomb. */
export const LAYER_EXPANSION_FLOOR = 512 * 1024 * 1024;
/** The default of `max-image-size`: every layer of an artifact, uncompressed, together. */
export const DEFAULT_MAX_IMAGE_BYTES = 16 * 1024 * 1024 * 1024;
/** Compressed bytes queued for one layer's decompressor before the reader waits for it. */
const INFLATE_QUEUE_BYTES = 8 * STREAM_CHUNK_BYTES;

/** The compression a blob's first bytes show (gzip, a zstd frame or a skippable one); anything else is plain. */
export function detectLayerCompression(head: Buffer): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4) {
    const magic = head.readUInt32LE(0);
    if (magic === 0xfd2fb528 || (magic & 0xfffffff0) >>> 0 === 0x184d2a50) return 'zstd';
  }
  return 'none';
}

/**
 * The compression a layer's media type declares: `none` for a plain tar, undefined when no media type is given, and
 * `unknown` for a type no engine unpacks as a layer (an encrypted layer, an artifact's blob).
 */
export function declaredCompression(mediaType: string | undefined): LayerCompression | 'unknown' | undefined {
  if (mediaType === undefined) return undefined;
  if (/[+.]gzip$/.test(mediaType)) return 'gzip';
  if (/[+.]zstd$/.test(mediaType)) return 'zstd';
  if (/[./]tar$/.test(mediaType)) return 'none';
  return 'unknown';
}

/** The most a layer of `compressedSize` bytes may expand to. */
export function layerExpansionLimit(compressedSize: number): number {
  return Math.max(LAYER_EXPANSION_FLOOR, compressedSize * LAYER_EXPANSION_RATIO);
}

/** Every layer's uncompressed bytes together, against `max-image-size`. */
export class ExpansionBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number = DEFAULT_MAX_IMAGE_BYTES) {
    this.limit = limit;
  }

  take(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.limit) {
      throw new UserError(
        `The image's layers expand to more than ${formatBytes(this.limit)} in all, the limit \`max-image-size\` sets: ` +
          'set `max-image-size` higher if the image is really that large; otherwise the artifact is not what it claims to be.',
      );
    }
  }
}

/** Decompresses one compressed blob as it streams past and hashes what it expands to. */
export interface LayerDigester {
  /** What the blob holds once decompressed, or the one line that says why it could not be. */
  readonly result: Promise<LayerContent>;
  /** Whether the decompressor has as much queued as it may: wait for `drained` before writing more. */
  readonly full: boolean;
  drained(): Promise<void>;
  write(chunk: Buffer): void;
  end(): void;
  destroy(): void;
}

/** gzip on the worker thread (gunzip-worker.ts), zstd (rare in layers) on this one. */
export function layerDigester(
  compression: Exclude<LayerCompression, 'none'>,
  compressedSize: number,
  name: string,
  budget: ExpansionBudget,
): LayerDigester {
  const problems = layerProblems(compression, compressedSize, name);
  return compression === 'gzip' ? new WorkerDigester(budget, problems) : new ThreadDigester(budget, problems);
}

/** The lines for what can go wrong with one compressed layer. */
function layerProblems(compression: Exclude<LayerCompression, 'none'>, compressedSize: number, name: string) {
  const limit = layerExpansionLimit(compressedSize);
  return {
    limit,
    bomb: () =>
      new UserError(
        `Layer ${shown(name)} expands to more than ${formatBytes(limit)} from ${formatBytes(compressedSize)} of ` +
          `${compression}, more than ${LAYER_EXPANSION_RATIO} times its size: no real layer does, so the tarball is ` +
          'refused as a decompression bomb.',
      ),
    corrupt: (detail: string) =>
      new UserError(
        `Layer ${shown(name)} is not a whole ${compression} stream (${shown(detail, 200)}): it is corrupt or cut short; ` +
          'produce the tarball again.',
      ),
    trailing: (bytes: string) =>
      new UserError(
        `Layer ${shown(name)} has ${bytes} bytes after its last gzip member, which the engine's gzip reader refuses: ` +
          'it is corrupt; produce the tarball again.',
      ),
  };
}

type Problems = ReturnType<typeof layerProblems>;

/** A gzip layer decompressed and hashed on the worker thread. */
class WorkerDigester implements LayerDigester {
  readonly result: Promise<LayerContent>;
  readonly #id: number;
  readonly #state = { pending: 0 };
  #settled = false;
  readonly #waiting: Array<() => void> = [];

  constructor(budget: ExpansionBudget, problems: Problems) {
    let settle!: { resolve: (content: LayerContent) => void; reject: (error: unknown) => void };
    this.result = new Promise((resolve, reject) => (settle = { resolve, reject }));
    this.result.catch(() => undefined);
    const finish = (outcome: () => void) => {
      if (this.#settled) return;
      this.#settled = true;
      outcome();
      for (const wake of this.#waiting.splice(0)) wake();
    };
    const state = this.#state;
    const layer = {
      get pending() {
        return state.pending;
      },
      set pending(bytes: number) {
        state.pending = bytes;
      },
      grew: (bytes: number) => {
        try {
          budget.take(bytes);
        } catch (error) {
          abortLayer(this.#id);
          finish(() => settle.reject(error));
        }
      },
      took: () => {
        if (!this.full) for (const wake of this.#waiting.splice(0)) wake();
      },
      done: ({ digest, size }: { digest: string; size: number }) =>
        finish(() => settle.resolve({ compression: 'gzip', digest, size })),
      failed: (reason: string, detail: string) =>
        finish(() =>
          settle.reject(
            reason === 'limit'
              ? problems.bomb()
              : reason === 'trailing'
                ? problems.trailing(detail)
                : reason === 'corrupt'
                  ? problems.corrupt(detail)
                  : new UserError(`Decompressing the layers failed (${shown(detail, 200)}); run the job again.`),
          ),
        ),
    };
    this.#id = startLayer(layer, problems.limit);
  }

  get full(): boolean {
    return !this.#settled && this.#state.pending > INFLATE_QUEUE_BYTES;
  }

  drained(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  write(chunk: Buffer): void {
    if (!this.#settled) sendChunk(this.#id, chunk);
  }

  end(): void {
    if (!this.#settled) finishLayer(this.#id);
  }

  destroy(): void {
    if (this.#settled) return;
    this.#settled = true;
    abortLayer(this.#id);
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

/** A layer decompressed and hashed on this thread, through Node's zlib (zstd: the frame walker of compression.ts). */
class ThreadDigester implements LayerDigester {
  readonly result: Promise<LayerContent>;
  readonly #inflate: Duplex;
  #failed = false;

  constructor(budget: ExpansionBudget, problems: Problems) {
    const hash = createHash('sha256');
    let size = 0;
    this.#inflate = createZstdFramesDecompressor();
    this.result = new Promise<LayerContent>((resolve, reject) => {
      const fail = (error: unknown) => {
        if (this.#failed) return;
        this.#failed = true;
        this.#inflate.destroy();
        reject(error);
      };
      this.#inflate.on('data', (chunk: Buffer) => {
        if (this.#failed) return;
        size += chunk.length;
        try {
          if (size > problems.limit) throw problems.bomb();
          budget.take(chunk.length);
        } catch (error) {
          fail(error);
          return;
        }
        hash.update(chunk);
      });
      this.#inflate.on('error', (error: unknown) =>
        fail(error instanceof UserError ? error : problems.corrupt(messageOf(error))),
      );
      this.#inflate.on('end', () => {
        if (!this.#failed) resolve({ compression: 'zstd', digest: `sha256:${hash.digest('hex')}`, size });
      });
    });
    this.result.catch(() => undefined);
  }

  get full(): boolean {
    return this.#inflate.writableNeedDrain;
  }

  drained(): Promise<void> {
    if (!this.full || this.#failed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#inflate.off('drain', done);
        this.#inflate.off('close', done);
        resolve();
      };
      this.#inflate.on('drain', done);
      this.#inflate.on('close', done);
    });
  }

  write(chunk: Buffer): void {
    if (!this.#failed) this.#inflate.write(chunk);
  }

  end(): void {
    if (!this.#failed) this.#inflate.end();
  }

  destroy(): void {
    this.#failed = true;
    this.#inflate.destroy();
  }
}

/**
 * A layer's content against what the image's config and manifest say of it: its compression, when the media type
 * declares one, and the diff_id it must hash to once decompressed.
 */
export function checkLayer(
  content: LayerContent,
  blob: { name: string; size: number },
  expected: { diffId: string; mediaType?: string | undefined },
  where: string,
): void {
  const declared = declaredCompression(expected.mediaType);
  if (declared === 'unknown') {
    fail(
      `${where} has media type ${shown(expected.mediaType!, 120)}, which is not a layer an engine unpacks ` +
        '(expected an OCI or docker layer: a tar, plain, gzip or zstd); the tarball is refused.',
    );
  }
  if (declared !== undefined && declared !== content.compression) {
    fail(
      `${where} has media type ${shown(expected.mediaType!, 120)}, which says ${describe(declared)}, but its bytes are ` +
        `${describe(content.compression)}: the tarball is refused.`,
    );
  }
  if (content.digest === expected.diffId) return;
  if (blob.size === 0) {
    fail(
      `Layer ${shown(blob.name)} is empty (0 bytes) but the image config expects diff_id ${expected.diffId}: a blob that was ` +
        'never filled in (an unfinished cache or export); save the image again.',
    );
  }
  fail(
    `Layer ${shown(blob.name)} ${content.compression === 'none' ? 'hashes' : `decompresses (${content.compression}) and hashes`} ` +
      `to ${content.digest}, but the image config expects diff_id ${expected.diffId} (${where}): the layer is corrupt, ` +
      'was replaced, or is listed out of order; the tarball is refused.',
  );
}

function describe(compression: LayerCompression): string {
  return compression === 'none' ? 'an uncompressed tar' : `${compression}-compressed`;
}

function fail(message: string): never {
  throw new UserError(message);
}
