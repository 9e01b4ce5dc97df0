/**
 * Every reliance on @actions/artifact's internals, in one place (docs/decisions.md, "Streamed upload"): the library
 * uploads only from a path, finalizes the artifact when what it reads ends, and has no way to stop an upload. Here it
 * is handed the tarball as the save writes it, where it opens its file, and an upload that must not be finalized is
 * stopped by failing the stream the library feeds its blob upload from. Each step has its way back when the library
 * does not behave as expected: upload.ts uploads the tarball once written, or deletes what was finalized.
 */
import type { PathLike, ReadStream } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import type { Readable, Writable } from 'node:stream';
import { DefaultArtifactClient, type UploadArtifactOptions } from '@actions/artifact';
import { GrowingFileStream } from '../growing-file.ts';

export interface UploadResult {
  id?: number;
  size?: number;
  digest?: string;
}

/**
 * Hands `stream` to the library where it opens `file` to read it, once. The library reads a path with
 * `fs.createReadStream`; a named pipe (the only path readable while it is written) cost the overlap its gain
 * (docs/performance.md, "Streamed upload"). The file itself is an empty placeholder: a library that read it some other
 * way would finish without reading anything, which `upload` reports as the hand-over not taken.
 * HANDOFF_HANDOVER=off (tests) leaves the library to read the placeholder.
 */
export function handOver(file: string, stream: Readable, opened: () => void): () => void {
  if (process.env.HANDOFF_HANDOVER === 'off') return () => undefined;
  const fs = process.getBuiltinModule('node:fs');
  const original = fs.createReadStream;
  let armed = true;
  const restore = () => {
    armed = false;
    // Only while nothing else has replaced it since; a disarmed wrapper left in a chain just passes every call on.
    if (fs.createReadStream === patched) {
      fs.createReadStream = original;
      syncBuiltinESMExports();
    }
  };
  const patched = ((path: PathLike, options?: unknown) => {
    if (!armed || path !== file) return (original as (...args: unknown[]) => ReadStream)(path, options);
    restore();
    opened();
    return stream;
  }) as typeof original;
  fs.createReadStream = patched;
  // The library's `import * as fs` is a live binding of the built-in module's exports: this updates it.
  syncBuiltinESMExports();
  return restore;
}

/**
 * The streams the library pipes what it reads into: its upload stream, and from there the stream its blob client
 * reads and its hash. Failing the blob client's stream is the one way to end the library's upload without it being
 * finalized (the Azure SDK's buffer scheduler rejects the upload on that stream's error).
 */
function watchPipes(reader: Readable): { fail: (error: Error) => boolean } {
  const downstream: Writable[] = [];
  const pipe = reader.pipe.bind(reader);
  reader.pipe = (<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }) => {
    const upload = destination as unknown as Readable & Writable;
    if (typeof upload.pipe === 'function') {
      const next = upload.pipe.bind(upload);
      upload.pipe = (<U extends NodeJS.WritableStream>(target: U, more?: { end?: boolean }) => {
        downstream.push(target as unknown as Writable);
        return next(target, more);
      }) as typeof upload.pipe;
    }
    return pipe(destination, options);
  }) as typeof reader.pipe;
  return {
    fail: (error) => {
      // The blob client's stream is the first the upload stream feeds; without it the library cannot be stopped.
      const [blob] = downstream;
      if (!blob) return false;
      blob.destroy(error);
      return true;
    },
  };
}

export interface StartedUpload {
  /**
   * What the library reads: told the tarball file to `follow`, its verified size to `end` at, or to `cut` where it is
   * (the library then finalizes what it had).
   */
  reader: GrowingFileStream;
  /** The library's result, or its failure. */
  outcome: Promise<UploadResult>;
  /** Ends the upload without the library finalizing it; false when it cannot (the library was not reached). */
  stop: (reason: Error) => boolean;
}

/** The library finished without reading the tarball: it did not take the hand-over, and finalized what it read. */
export class HandOverNotTaken extends Error {
  readonly result: UploadResult;

  constructor(result: UploadResult) {
    super('the artifact library finished the upload without reading the tarball');
    this.result = result;
  }
}

/**
 * Starts uploading artifact `name`, and resolves once the library opens what it uploads, which is after it has created
 * the artifact; rejects when it fails before that (a name already taken), with HandOverNotTaken when it finished
 * without opening it, and when it has not opened it within `openMs` (its request to create the artifact unanswered: the
 * hand-over then stays armed to stop it, should the library ever go on). `placeholder` (in `root`) is the empty file
 * the library is given by name; what it reads is the file it is told to follow.
 */
export async function upload(task: {
  name: string;
  placeholder: string;
  root: string;
  options: UploadArtifactOptions;
  openMs: number;
}): Promise<StartedUpload> {
  // A tarball file that cannot be read ends the upload where it is: the library's own handling of a stream that fails
  // leaves its upload waiting for its stall timer, while one that ends is finalized at once, found short of the
  // tarball's digest and deleted (artifact.ts).
  const reader = new GrowingFileStream({ onReadError: 'cut' });
  const pipes = watchPipes(reader);
  let given = false;
  let gaveUp: Error | undefined;
  let opened!: () => void;
  const isOpen = new Promise<void>((resolve) => (opened = resolve));
  const restore = handOver(task.placeholder, reader, () => {
    given = true;
    opened();
    // Given up on before the library got here: stop it as soon as it has wired its streams.
    if (gaveUp) setImmediate(() => pipes.fail(gaveUp!));
  });
  const outcome = new DefaultArtifactClient().uploadArtifact(task.name, [task.placeholder], task.root, task.options);
  outcome.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      isOpen,
      outcome.then((result) => {
        if (!given) throw new HandOverNotTaken(result);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new OpenTimeout(task.openMs)), task.openMs);
        timer.unref();
      }),
    ]);
  } catch (error) {
    if (error instanceof OpenTimeout) {
      gaveUp = error;
      return Promise.reject(error);
    }
    restore();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  restore();
  return { reader, outcome, stop: (reason) => pipes.fail(reason) };
}

/** The library did not open the tarball within the stall timeout: its request to create the artifact went unanswered. */
export class OpenTimeout extends Error {
  readonly ms: number;

  constructor(ms: number) {
    super(`the artifact service did not answer the request to create the artifact within ${Math.round(ms / 1000)} s`);
    this.ms = ms;
  }
}
