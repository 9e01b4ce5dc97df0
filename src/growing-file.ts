/**
 * A file read from its first byte while another writer still appends to it: the tarball the save writes, read by the
 * upload (transfer.ts), and the artifact the library downloads, read by the load (tarball.ts).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { STREAM_CHUNK_BYTES as READ_BYTES } from './constants.ts';

/** How often the file is looked at again when the reader has caught up with its writer. */
export const POLL_MS = 10;

/**
 * Reads a file as it grows. A read that finds no more bytes waits, unless the writer had finished (`end`) before that
 * read began. The file is given at once or later (`follow`), and ends where its writer says: at the size `end` gives,
 * or, with none, at the end a read finds after `end`. A writer that starts over (a download retried from its start
 * truncates the file) writes the same bytes again, which are read where the reader is.
 *
 * `fail` makes the stream fail with the writer's reason. `cut` ends it where it is; so does a file that ends short of
 * the size it was said to have, and, with `onReadError: 'cut'`, a file that cannot be read.
 */
export class GrowingFileStream extends Readable {
  #handle: Promise<FileHandle> | undefined;
  #position = 0;
  /** Set by `end`: the size to stop at, or null for wherever the writer stopped. */
  #end: number | null | undefined;
  #failure: Error | undefined;
  #cut = false;
  #wake: (() => void) | undefined;
  /** The buffer the next read goes into, kept while reads come back short. */
  #buffer: Buffer | undefined;
  readonly #onReadError: 'fail' | 'cut';

  constructor(options: { handle?: FileHandle; onReadError?: 'fail' | 'cut' } = {}) {
    super({ highWaterMark: READ_BYTES });
    if (options.handle) this.#handle = Promise.resolve(options.handle);
    this.#onReadError = options.onReadError ?? 'fail';
  }

  /** The file to read, when it was not given at first; only the first one counts. */
  follow(file: string): void {
    if (this.#handle !== undefined) return;
    this.#handle = open(file, 'r');
    this.#handle.catch(() => undefined);
    this.#wake?.();
  }

  /** The writer has finished: the file ends at `size`, or where it is now. */
  end(size?: number): void {
    this.#end = size ?? null;
    this.#wake?.();
  }

  /** The writer failed: so does the stream, with `reason`. */
  fail(reason: Error): void {
    this.#failure = reason;
    this.#wake?.();
  }

  /** Ends the stream where it is. */
  cut(): void {
    this.#cut = true;
    this.#wake?.();
  }

  override _read(): void {
    this.#next().catch((error: unknown) => {
      if (this.#onReadError === 'cut' && error !== this.#failure) {
        this.#cut = true;
        this.push(null);
      } else {
        this.destroy(error as Error);
      }
    });
  }

  async #next(): Promise<void> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#cut || this.#position === this.#end) {
        this.push(null);
        return;
      }
      const finished = this.#end !== undefined;
      const handle = await this.#handle;
      if (handle !== undefined) {
        const wanted = typeof this.#end === 'number' ? Math.min(READ_BYTES, this.#end - this.#position) : READ_BYTES;
        // One buffer, handed on only when a read fills it, else copied out at its size: a reader caught up with its
        // writer reads many times a second, and a buffer per read fed the collector (docs/performance.md, "Streamed upload").
        const buffer = (this.#buffer ??= Buffer.allocUnsafe(READ_BYTES));
        const { bytesRead } = await handle.read(buffer, 0, wanted, this.#position);
        if (bytesRead > 0) {
          this.#position += bytesRead;
          if (bytesRead === READ_BYTES) {
            this.#buffer = undefined;
            this.push(buffer);
          } else {
            // A copy: a slice would keep the whole buffer alive, and this one is read into again.
            this.push(Buffer.from(buffer.subarray(0, bytesRead)));
          }
          return;
        }
        // Finished before this read began, and nothing more: the end (short of a size given, the stream is cut).
        if (finished) {
          this.push(null);
          return;
        }
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, POLL_MS);
      });
      this.#wake = undefined;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const closed = this.#handle?.then((handle) => handle.close()) ?? Promise.resolve();
    closed.then(
      () => callback(error),
      () => callback(error),
    );
  }
}
