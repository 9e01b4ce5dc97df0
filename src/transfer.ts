/**
 * An artifact upload that runs while the tarball is still being written (artifact.ts, startUpload).
 *
 * @actions/artifact uploads only from a path, and finalizes the artifact when what it reads from there ends. Here it
 * reads the tarball file as the save writes it, and reaches its end only once the main code says the tarball is
 * complete and verified, at the size it gives.
 *
 * It runs on the main thread. On a worker thread of its own (the bundle loaded a second time), a save of a 305 MiB
 * image peaked at 240–269 MiB of RSS against 176–189 MiB here, and was not faster: 11.8–13.4 s against 12.2–13.7 s,
 * two runs each at loopback speed and at the GitHub-shaped 45 MB/s (Docker 20.10, the local artifact service).
 */
import type { PathLike, ReadStream } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { Readable } from 'node:stream';
import { DefaultArtifactClient, type UploadArtifactOptions } from '@actions/artifact';
import { GrowingFileStream } from './growing-file.ts';

export interface UploadResult {
  id?: number;
  size?: number;
  digest?: string;
}

/**
 * Hands `stream` to the library where it opens `file` to read it, once.
 *
 * The library uploads only from a path, which it reads with `fs.createReadStream` and 8 MiB buffers. The only path
 * that can be read while the tarball is still being written is a named pipe, and reading a pipe, which returns at
 * most what it holds (1 MiB at the most, unprivileged), into a new 8 MiB buffer per read was what the overlap cost:
 * measured on a 305 MiB image (Docker 20.10, loopback service), a save with the upload fed through a pipe used
 * 15.3–20.5 s of CPU against 9.8–10.6 s with the upload after the save, the worker's garbage collector 3.1 s of it
 * (a CPU profile). So the stream is handed over where the library opens the file, for that one path and that one
 * call. The file itself is an empty placeholder: were the library ever to read it some other way, it would
 * upload nothing, whose digest is not the tarball's, and the artifact would be deleted (artifact.ts).
 */
export function handOver(file: string, stream: Readable, opened: () => void): () => void {
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

export interface StartedUpload {
  /**
   * What the library reads: told the tarball file to `follow`, its verified size to `end` at, or to `cut` where it is
   * (the library has no other way to stop; it then finalizes what it had).
   */
  reader: GrowingFileStream;
  /** The library's result, or its failure. */
  outcome: Promise<UploadResult>;
}

/**
 * Starts uploading artifact `name`, and resolves once the library opens what it uploads, which is after it has created
 * the artifact; rejects when it fails before that (a name already taken). `placeholder` (in `root`) is the empty file
 * the library is given by name; what it reads is the file it is told to follow: the save writes the tarball at its own
 * pace, never held back by the network, and the upload takes what has been written.
 */
export async function upload(task: {
  name: string;
  placeholder: string;
  root: string;
  options: UploadArtifactOptions;
}): Promise<StartedUpload> {
  // A tarball file that cannot be read ends the upload where it is: the library's own handling of a stream that fails
  // leaves its upload waiting 5 minutes for an end (its stall timer), while one that ends is finalized at once, found
  // short of the tarball's digest and deleted (artifact.ts).
  const reader = new GrowingFileStream({ onReadError: 'cut' });
  let opened!: () => void;
  const isOpen = new Promise<void>((resolve) => (opened = resolve));
  const restore = handOver(task.placeholder, reader, opened);
  const outcome = new DefaultArtifactClient().uploadArtifact(task.name, [task.placeholder], task.root, task.options);
  outcome.catch(() => undefined);
  try {
    await Promise.race([
      isOpen,
      outcome.then(() => {
        throw new Error('the library finished before reading anything');
      }),
    ]);
  } finally {
    restore();
  }
  return { reader, outcome };
}
