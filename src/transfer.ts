/**
 * The artifact library's uploads and downloads, run on a worker thread of their own.
 *
 * They overlap the save and the load (artifact.ts): the upload reads a named pipe while the save still writes the
 * tarball, the load reads the file the download is still writing. The library moves bytes in small pieces (reads of a
 * pipe, one socket read at a time from the network), and each piece costs a turn of the event loop that runs it. On
 * the main thread, whose turns the verification holds for milliseconds per MiB, the benchmark's save took 30.4 s
 * instead of 13.0 s (one run); on a thread of its own, with the pipe also written from that thread, the library keeps
 * its pace (README, Performance).
 *
 * The worker is this same module graph: dist/index.js (or src/main.ts under the tests), which serves one transfer
 * instead of running the action when it is not the main thread.
 */
import { constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { getExecOutput } from '@actions/exec';
import { DefaultArtifactClient, type DownloadArtifactOptions, type UploadArtifactOptions } from '@actions/artifact';

export type Transfer =
  | {
      /** Uploads what the main thread sends, through the named pipe `pipe` in `root`, as artifact `name`. */
      kind: 'upload';
      name: string;
      pipe: string;
      root: string;
      options: UploadArtifactOptions;
    }
  | { kind: 'download'; id: number; options: DownloadArtifactOptions };

export interface UploadResult {
  id?: number;
  size?: number;
  digest?: string;
}

export interface DownloadResult {
  downloadPath?: string;
  digestMismatch?: boolean;
}

/** Worker → main. */
type Report =
  | { type: 'opened' }
  | { type: 'written'; bytes: number }
  | { type: 'done'; result: unknown }
  | { type: 'failed'; message: string; code?: string };

/**
 * Main → worker, for an upload: the file to follow (the tarball as it is written), the size it ends at once it is
 * complete and verified, or abort.
 */
type Command = { type: 'follow'; file: string } | { type: 'end'; size: number } | { type: 'abort' };

/** The key in workerData that makes a worker serve a transfer. */
const TASK = 'handoffTransfer';

/** Bytes read from the followed file at a time. */
const READ_BYTES = 1024 * 1024;

/** How often the followed file is looked at again when the reader has caught up with its writer. */
const FOLLOW_POLL_MS = 10;

/** How often the pipe's write end is tried while the library has not opened its read end. */
const PIPE_POLL_MS = 5;

function startWorker(task: Transfer): { worker: Worker; outcome: Promise<unknown> } {
  // Under the tests this module is src/transfer.ts, whose entry is src/main.ts; bundled, every module is dist/index.js.
  const entry = import.meta.url.endsWith('.ts') ? new URL('./main.ts', import.meta.url) : new URL(import.meta.url);
  const worker = new Worker(entry, { workerData: { [TASK]: task } });
  const outcome = new Promise<unknown>((resolve, reject) => {
    let last: Report | undefined;
    worker.on('message', (report: Report) => {
      if (report.type === 'done' || report.type === 'failed') last = report;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (last?.type === 'done') resolve(last.result);
      else if (last?.type === 'failed') reject(Object.assign(new Error(last.message), { code: last.code }));
      else reject(new Error(`the transfer's worker thread exited (${code}) without a result`));
    });
  });
  outcome.catch(() => undefined);
  return { worker, outcome };
}

/** Downloads on a worker thread; rejects with the library's message (and errno code) when it fails. */
export function download(id: number, options: DownloadArtifactOptions): Promise<DownloadResult> {
  return startWorker({ kind: 'download', id, options }).outcome as Promise<DownloadResult>;
}

export interface UploadStream {
  /** Starts sending `file`, the tarball being written, from its first byte, as far as it has been written. */
  follow(file: string): void;
  /** The tarball is complete and verified at `size` bytes: send it to that end, then end the pipe. */
  end(size: number): void;
  /** Ends the pipe where it is (a pipe has no other way to end); the library then finalizes what it had. */
  abort(): void;
  /** The library's result, or its failure. */
  outcome: Promise<UploadResult>;
}

/**
 * Starts an upload on a worker thread from the named pipe `pipe` (made by the caller), and resolves once the library
 * reads it, which is after it has created the artifact; rejects when it fails before that (a name already taken).
 * The worker fills the pipe from the file it is told to follow: the save writes the tarball at its own pace, never
 * held back by the network, and the upload takes what has been written.
 */
export async function upload(task: Omit<Extract<Transfer, { kind: 'upload' }>, 'kind'>): Promise<UploadStream> {
  const { worker, outcome } = startWorker({ kind: 'upload', ...task });
  const opened = new Promise<void>((resolve, reject) => {
    worker.on('message', (report: Report) => report.type === 'opened' && resolve());
    outcome.then(() => reject(new Error('the library finished before reading anything')), reject);
  });
  await opened;
  const send = (command: Command) => {
    // A worker that has finished (the upload failed) takes no more commands; its outcome says why.
    try {
      worker.postMessage(command);
    } catch {
      // ignored: see above
    }
  };
  return {
    follow: (file) => send({ type: 'follow', file }),
    end: (size) => send({ type: 'end', size }),
    abort: () => send({ type: 'abort' }),
    outcome: outcome as Promise<UploadResult>,
  };
}

/** True on a worker thread started here. */
export function isTransferWorker(): boolean {
  return parentPort !== null && typeof workerData === 'object' && workerData !== null && TASK in workerData;
}

function report(message: Report): void {
  parentPort!.postMessage(message);
}

/** F_SETPIPE_SZ (linux/fcntl.h), and the most an unprivileged process may ask for (/proc/sys/fs/pipe-max-size). */
const F_SETPIPE_SZ = 1031;
const PIPE_BYTES = 1024 * 1024;

/**
 * Raises the pipe's capacity from 64 KiB to 1 MiB, through perl (perl-base is essential on Debian and Ubuntu; Node has
 * no fcntl). The library reads the pipe into a new 8 MiB buffer per read, whatever the read returns; at 64 KiB a read,
 * the allocations alone made the worker's garbage collector spend 4.6 s per 256 MiB uploaded (a CPU profile of 18 s
 * of CPU for 256 MiB), and 1 MiB reads make that 16 times rarer. Without perl it stays at 64 KiB: slower, not wrong.
 */
async function widenPipe(pipe: string): Promise<void> {
  const script = `open(my $p, '+<', $ARGV[0]) or exit 1; fcntl($p, ${F_SETPIPE_SZ}, ${PIPE_BYTES}) or exit 2;`;
  await getExecOutput('perl', ['-e', script, pipe], { silent: true, ignoreReturnCode: true }).catch(() => undefined);
}

/** The worker's side of an upload: opens the pipe the library reads, then fills it from the file it follows. */
async function feedPipe(pipe: string, uploading: Promise<unknown>): Promise<void> {
  let settled = false;
  uploading.then(
    () => (settled = true),
    () => (settled = true),
  );
  let fd: number | undefined;
  // Opening a pipe for writing without O_NONBLOCK would block a thread until a reader came, if ever.
  while (fd === undefined && !settled) {
    try {
      fd = openSync(pipe, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      await sleep(PIPE_POLL_MS);
    }
  }
  if (fd === undefined) return;
  await widenPipe(pipe);
  const socket = new Socket({ fd, readable: false, writable: true });
  // The library failing stops its reads: writes then fail (EPIPE), and its failure is what is reported.
  socket.on('error', () => undefined);
  uploading.catch(() => socket.destroy());

  let endSize: number | undefined;
  let aborted = false;
  let following = false;
  const follow = async (file: string) => {
    const handle = await open(file, 'r');
    try {
      let position = 0;
      while (!aborted && !socket.destroyed) {
        const wanted = endSize === undefined ? READ_BYTES : Math.min(READ_BYTES, endSize - position);
        if (wanted <= 0) break;
        const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(wanted), 0, wanted, position);
        if (bytesRead === 0) {
          // Short of the size it was said to end at: it never will; ending the pipe cut short is what abort does.
          if (endSize !== undefined) aborted = true;
          else await sleep(FOLLOW_POLL_MS);
          continue;
        }
        position += bytesRead;
        if (!socket.write(buffer.subarray(0, bytesRead))) {
          await new Promise((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
        }
      }
    } finally {
      await handle.close();
    }
    if (aborted || socket.destroyed) socket.destroy();
    else socket.end();
  };
  parentPort!.on('message', (command: Command) => {
    switch (command.type) {
      case 'follow':
        if (following) return;
        following = true;
        follow(command.file).catch(() => socket.destroy());
        break;
      case 'end':
        endSize = command.size;
        if (!following) socket.end();
        break;
      case 'abort':
        aborted = true;
        socket.destroy();
        break;
    }
  });
  report({ type: 'opened' });
}

/** The worker's side: runs the transfer in workerData and reports its outcome. */
export async function serveTransfer(): Promise<void> {
  const task = (workerData as Record<string, Transfer>)[TASK]!;
  const client = new DefaultArtifactClient();
  try {
    let result: unknown;
    if (task.kind === 'upload') {
      const uploading = client.uploadArtifact(task.name, [task.pipe], task.root, task.options);
      uploading.catch(() => undefined);
      await feedPipe(task.pipe, uploading);
      result = await uploading;
    } else {
      result = await client.downloadArtifact(task.id, task.options);
    }
    report({ type: 'done', result });
  } catch (error) {
    const { message, code } = error as NodeJS.ErrnoException;
    report({ type: 'failed', message: String(message ?? error), ...(typeof code === 'string' && { code }) });
  }
  // The library's HTTP agents may keep sockets open; the thread is done once its outcome is reported.
  process.exit(0);
}
