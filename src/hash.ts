import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { STREAM_CHUNK_BYTES } from './constants.ts';

/** A pass-through stage that hashes (sha256) and counts what flows through it, so no extra read pass is needed. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  /** `sha256:<hex>`; call once, after the stream has finished. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/**
 * sha256 of a whole file, read once through `stages` (a progress meter, say). The hash is the last stage, so its
 * output is drained here: a Transform nobody reads from stops the pipeline once its buffer fills.
 */
export async function hashFile(file: string, ...stages: Transform[]): Promise<{ digest: string; bytes: number }> {
  const hash = new HashingStream();
  const drain = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  await pipeline([createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES }), ...stages, hash, drain]);
  return { digest: hash.digest(), bytes: hash.bytes };
}
