/**
 * An artifact's blob read from its signed URL into a file, for a reader that follows the file as it grows
 * (growing-file.ts). Each attempt must make progress within the stall timeout; one cut short or stalled is resumed
 * where it stopped with an HTTP Range request, as Azure Blob Storage serves them. The file only ever grows by the
 * bytes that come next: a server that ignores the Range sends the blob from its start again, and those first bytes are
 * compared with the file rather than written, so a reader never sees bytes of two attempts.
 */
import { open, type FileHandle } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { HttpClient } from '@actions/http-client';
import { shown } from '../display.ts';
import { UserError, messageOf } from '../errors.ts';
import { job } from '../job.ts';
import { writeAll } from '../files.ts';
import { formatBytes, progressText } from '../progress.ts';
import { Refused, backoff } from './signed-url.ts';

/** Attempts of one download, the first included. */
export const DOWNLOAD_ATTEMPTS = 5;

export interface BlobDownload {
  /** Resolves once the file holds all the blob's bytes; rejects with the one line that says how far it got. */
  complete: Promise<void>;
  /** Bytes in the file so far. */
  written(): number;
  /** Bytes received over the network in all attempts, compared prefixes included. */
  received(): number;
  /** Settles once the file holds `bytes` bytes, or the download has ended (whichever comes first). */
  reached(bytes: number): Promise<void>;
  /** Stops it where it is (the read failed for another reason); `complete` then rejects. */
  abort(): void;
}

/** Why one attempt ended before the blob did: `retry` says whether another attempt may help. */
class AttemptFailed extends Error {
  readonly retry: boolean;
  readonly refreshUrl: boolean;

  constructor(message: string, options: { retry?: boolean; refreshUrl?: boolean } = {}) {
    super(message);
    this.retry = options.retry ?? true;
    this.refreshUrl = options.refreshUrl ?? false;
  }
}

/** The bytes a Content-Range header says a 206 holds: `bytes START-END/TOTAL`. */
export function parseContentRange(
  header: string | undefined,
): { start: number; end: number; total: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!match) return undefined;
  const [start, end, total] = [Number(match[1]), Number(match[2]), match[3] === '*' ? NaN : Number(match[3])];
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) ? { start, end, total } : undefined;
}

/**
 * Downloads a blob of `size` bytes (what the artifact service recorded) into `file`, a new file. `url` gives a signed
 * URL; it is asked again when the blob store refuses one (they expire). `what` names the artifact in lines.
 */
export function downloadBlob(options: {
  url: () => Promise<string>;
  file: string;
  size: number;
  what: string;
}): BlobDownload {
  let written = 0;
  let received = 0;
  const aborts = new AbortController();
  const waiting: Array<{ bytes: number; resolve: () => void }> = [];
  const wrote = (bytes: number) => {
    written += bytes;
    for (const waiter of waiting.filter((one) => one.bytes <= written)) {
      waiting.splice(waiting.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const complete = (async () => {
    // Read as well as written: a blob store that ignores a Range is compared against what the file already holds.
    const handle: FileHandle = await open(options.file, 'wx+', 0o600);
    const stopped = job.onStop('stopping the download', () => aborts.abort());
    try {
      let url: string | undefined;
      let last = '';
      // What the blob store says the blob holds, once it has answered: a blob stored shorter than recorded ends there,
      // and the digest check names it.
      let size = options.size;
      for (let attempt = 1; attempt <= DOWNLOAD_ATTEMPTS; attempt++) {
        if (attempt > 1) await backoff(attempt);
        if (aborts.signal.aborted) throw new UserError(`The download of ${options.what} was stopped.`);
        try {
          url ??= await options.url();
          size = await fetchInto(url, handle, {
            from: written,
            size,
            signal: aborts.signal,
            wrote,
            got: (bytes) => (received += bytes),
          });
          if (written === size) return;
          last = `it ended after ${formatBytes(written)}`;
        } catch (error) {
          job.check();
          if (aborts.signal.aborted) throw new UserError(`The download of ${options.what} was stopped.`);
          if (error instanceof AttemptFailed) {
            last = error.message;
            if (error.refreshUrl) url = undefined;
            if (!error.retry) throw failed(options, written, attempt, last);
            continue;
          }
          if (error instanceof Refused) throw failed(options, written, attempt, error.message);
          // A failure of the file, not of the network (a full disk): named by the caller.
          if ((error as NodeJS.ErrnoException).code && (error as NodeJS.ErrnoException).syscall === 'write')
            throw error;
          last = messageOf(error);
        }
      }
      throw failed(options, written, DOWNLOAD_ATTEMPTS, last);
    } finally {
      stopped();
      await handle.close();
    }
  })();
  complete.catch(() => undefined);
  const ended = complete.then(
    () => undefined,
    () => undefined,
  );
  const reached = (bytes: number) =>
    written >= bytes
      ? Promise.resolve()
      : Promise.race([ended, new Promise<void>((resolve) => waiting.push({ bytes, resolve }))]);
  return { complete, written: () => written, received: () => received, reached, abort: () => aborts.abort() };
}

function failed(options: { size: number; what: string }, written: number, attempts: number, last: string): UserError {
  const cut = written > 0 && written < options.size;
  return new UserError(
    `The download of ${options.what} ${cut ? `was cut short after ${formatBytes(written)} of ${formatBytes(options.size)}` : `failed ${progressText(written)}`}, ` +
      `${attempts} attempt${attempts === 1 ? '' : 's'} (the last: ${last}); nothing was loaded: the artifact service or the ` +
      'network failed, so re-run the job; if it keeps failing, check the artifact in the run that made it.',
  );
}

/**
 * One attempt: the blob from `from` on, appended to the file, within the stall timeout at every step. Returns the
 * blob's size as the blob store gives it (at most `size`, what the artifact service recorded).
 */
async function fetchInto(
  url: string,
  handle: FileHandle,
  state: {
    from: number;
    size: number;
    signal: AbortSignal;
    wrote: (bytes: number) => void;
    got: (bytes: number) => void;
  },
): Promise<number> {
  const target = new URL(url);
  const client = new HttpClient('docker-image-handoff');
  // The proxy of the environment, as the library's own requests take it.
  const agent = client.getAgent(url);
  const request = (target.protocol === 'https:' ? https : http).request(target, {
    method: 'GET',
    agent,
    headers: {
      'User-Agent': 'docker-image-handoff',
      'Accept-Encoding': 'identity',
      ...(state.from > 0 && { Range: `bytes=${state.from}-` }),
    },
  });
  const stallMs = job.stallMs;
  let stall: NodeJS.Timeout | undefined;
  const armStall = (phase: string) => {
    clearTimeout(stall);
    stall = setTimeout(
      () => request.destroy(new AttemptFailed(`no byte for ${Math.round(stallMs / 1000)} s ${phase}`)),
      stallMs,
    );
    stall.unref();
  };
  const stop = () => request.destroy(new AttemptFailed('stopped', { retry: false }));
  state.signal.addEventListener('abort', stop);
  armStall('before the blob store answered');
  let position = 0;
  let total = state.size;
  try {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
      request.end();
    });
    const status = response.statusCode ?? 0;
    // The artifact service's size is the one held to: a blob store's length header may be wrong, its bytes are proved.
    if (status === 206) {
      const range = parseContentRange(response.headers['content-range']);
      if (!range || range.start !== state.from) {
        response.resume();
        throw new AttemptFailed(
          `the blob store sent bytes from ${range?.start ?? 'an unknown place'}, not ${state.from}`,
        );
      }
      position = range.start;
      if (Number.isSafeInteger(range.total) && range.total < total) total = range.total;
    } else if (status === 200) {
      // Sent from its start (the Range ignored): what the file already holds is compared, not written again. A length
      // short of the recorded size is read whole and then fails the digest; a longer one is not believed.
      position = 0;
      const length = Number(response.headers['content-length']);
      if (response.headers['content-length'] !== undefined && Number.isSafeInteger(length) && length < total) {
        total = length;
      }
    } else if (status === 416 && state.from === state.size) {
      response.resume();
      return state.size;
    } else {
      response.resume();
      const retry = status >= 500 || status === 408 || status === 429 || status === 403;
      throw new AttemptFailed(`the blob store answered ${status}`, { retry, refreshUrl: status === 403 });
    }
    if (total < state.from) {
      response.resume();
      throw new AttemptFailed(`the blob store holds ${total} bytes for it, fewer than the ${state.from} already read`, {
        retry: false,
      });
    }
    armStall(`${progressText(state.from)} of the blob`);
    const compare = Buffer.allocUnsafe(1024 * 1024);
    for await (const chunk of response as AsyncIterable<Buffer>) {
      armStall(`after ${formatBytes(position + chunk.length)} of the blob`);
      state.got(chunk.length);
      let offset = 0;
      while (offset < chunk.length && position < state.from) {
        // The prefix the reader may already have read: it must be the same bytes.
        const length = Math.min(chunk.length - offset, state.from - position, compare.length);
        const { bytesRead } = await handle.read(compare, 0, length, position);
        if (bytesRead !== length || !compare.subarray(0, length).equals(chunk.subarray(offset, offset + length))) {
          throw new AttemptFailed(
            `the blob store sent other bytes at ${position} than an earlier attempt: the artifact changed meanwhile`,
            { retry: false },
          );
        }
        offset += length;
        position += length;
      }
      if (offset === chunk.length) continue;
      const rest = chunk.subarray(offset);
      if (position + rest.length > total) {
        throw new AttemptFailed(
          `the blob store sent more than the ${total} bytes the artifact service recorded: the blob is not that artifact's`,
          { retry: false },
        );
      }
      await writeAll(handle, rest, {
        position,
        wrote: (bytes) => {
          position += bytes;
          state.wrote(bytes);
        },
      });
    }
    if (position < total) throw new AttemptFailed(`the connection ended ${progressText(position)} of the blob`);
    return total;
  } catch (error) {
    if (error instanceof AttemptFailed) throw error;
    // A connection that ends early after every recorded byte arrived (a length header that overstated it) lost nothing.
    if (position === total && total === state.size) return total;
    const code = (error as NodeJS.ErrnoException).code;
    if (code && (error as NodeJS.ErrnoException).syscall === 'write') throw error;
    throw new AttemptFailed(describeNetworkError(error));
  } finally {
    clearTimeout(stall);
    state.signal.removeEventListener('abort', stop);
    request.destroy();
    client.dispose();
  }
}

function describeNetworkError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  // Node reports a response body cut short as 'aborted' with the code ECONNRESET, whether reset or closed.
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || /aborted/i.test(messageOf(error)))
    return 'the connection was closed early';
  if (code === 'ECONNRESET') return 'the connection was reset';
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  return shown(messageOf(error), 200);
}
