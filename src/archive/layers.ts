/**
 * What each layer blob expands to, as the engine will see it: the engine trusts a config's diff_ids, so every layer is
 * decompressed as it streams past (by its bytes, never by its media type alone) and its content hashed, bounded in how
 * far it may expand. docs/decisions/layers-against-diff-ids.md says why and what it costs.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import * as zlib from 'node:zlib';
import { shown } from '../display.ts';
import { UserError, messageOf } from '../errors.ts';
import { formatBytes } from '../progress.ts';
import { STREAM_CHUNK_BYTES, createZstdFramesDecompressor } from './compression.ts';

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
const INFLATE_QUEUE_BYTES = 4 * STREAM_CHUNK_BYTES;

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
export class LayerDigester {
  readonly result: Promise<LayerContent>;
  readonly #inflate: Duplex;
  #fed = 0;
  #failed = false;

  constructor(
    compression: Exclude<LayerCompression, 'none'>,
    compressedSize: number,
    name: string,
    budget: ExpansionBudget,
  ) {
    const limit = layerExpansionLimit(compressedSize);
    const hash = createHash('sha256');
    let size = 0;
    this.#inflate =
      compression === 'gzip'
        ? zlib.createGunzip({
            chunkSize: STREAM_CHUNK_BYTES,
            writableHighWaterMark: INFLATE_QUEUE_BYTES,
          } as zlib.ZlibOptions)
        : createZstdFramesDecompressor();
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
          if (size > limit) {
            throw new UserError(
              `Layer ${shown(name)} expands to more than ${formatBytes(limit)} from ${formatBytes(compressedSize)} of ` +
                `${compression}, more than ${LAYER_EXPANSION_RATIO} times its size: no real layer does, so the tarball is ` +
                'refused as a decompression bomb.',
            );
          }
          budget.take(chunk.length);
        } catch (error) {
          fail(error);
          return;
        }
        hash.update(chunk);
      });
      this.#inflate.on('error', (error: unknown) =>
        fail(
          error instanceof UserError
            ? error
            : new UserError(
                `Layer ${shown(name)} is not a whole ${compression} stream (${messageOf(error)}): it is corrupt or cut ` +
                  'short; produce the tarball again.',
              ),
        ),
      );
      this.#inflate.on('end', () => {
        // Node's gunzip passes over zeros after the last member; Go's gzip reader, which the engine uses, does not.
        const consumed = (this.#inflate as zlib.Gunzip).bytesWritten;
        if (compression === 'gzip' && consumed !== this.#fed) {
          fail(
            new UserError(
              `Layer ${shown(name)} has ${this.#fed - consumed} bytes after its last gzip member, which the engine's ` +
                'gzip reader refuses: it is corrupt; produce the tarball again.',
            ),
          );
          return;
        }
        if (this.#failed) return;
        resolve({ compression, digest: `sha256:${hash.digest('hex')}`, size });
      });
    });
    this.result.catch(() => undefined);
  }

  /** Whether the decompressor has as much queued as it may: wait for `drained` before writing more. */
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
    if (this.#failed) return;
    this.#fed += chunk.length;
    this.#inflate.write(chunk);
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
