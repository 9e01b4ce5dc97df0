/**
 * The step's lifetime: its deadlines and its cancellation. GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later,
 * then kills it; a step that runs past its bound is stopped the same way. Either way every piece of work under way has
 * registered how to undo itself (stop a child process, delete a partial file, end an upload without finalizing it, put
 * back the tags a load moved), and those run, at most CLEANUP_MS together, before the step ends with one line.
 */
import { Stalled } from './errors.ts';

/** What ended the step early: a signal from the runner, or the step's own bound. */
export class Stopped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Stopped';
  }
}

/** How long undoing may take in all before the step exits anyway: well inside the 7.5 s between SIGINT and SIGTERM. */
export const CLEANUP_MS = 5_000;
/** Default `stall-timeout`: seconds a transfer or an engine command may go without progress. */
export const DEFAULT_STALL_SECONDS = 60;

interface Cleanup {
  /** What it does, for the line that ends the step: `stopping \`docker load\``, `removing the partial tarball`. */
  what: string;
  undo: () => Promise<unknown> | unknown;
}

export class Job {
  readonly #controller = new AbortController();
  readonly #cleanups = new Set<Cleanup>();
  #stallMs = DEFAULT_STALL_SECONDS * 1000;
  #deadline: NodeJS.Timeout | undefined;
  /** What the step is doing, for the line that says where it stopped. */
  doing = 'starting';
  /** Called once the cleanups of a stop have run, with what they did (main.ts ends the step there). */
  afterStop: ((reason: Stopped, undone: { done: string[]; failed: string[] }) => void) | undefined;

  /** Aborted when the step is cancelled or runs past its bound; `reason` is the Stopped error. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get stopped(): Stopped | undefined {
    return this.signal.aborted ? (this.signal.reason as Stopped) : undefined;
  }

  /** Milliseconds a transfer or a command may go without progress (`stall-timeout`). */
  get stallMs(): number {
    return this.#stallMs;
  }

  set stallMs(ms: number) {
    this.#stallMs = ms;
  }

  /** Stops the step after `ms`, from now, with a line naming `how` the bound was set. */
  bound(ms: number, how: string): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(
      () => void this.stop(new Stopped(`The step ran past its bound of ${minutes(ms)} (${how}) while ${this.doing}`)),
      ms,
    );
    this.#deadline.unref();
  }

  /** Registers how to undo work under way should the step stop early (`what` it does); returns what unregisters it. */
  onStop(what: string, undo: Cleanup['undo']): () => void {
    const cleanup = { what, undo };
    this.#cleanups.add(cleanup);
    return () => this.#cleanups.delete(cleanup);
  }

  /** Throws the reason the step stopped, if it has. */
  check(): void {
    const stopped = this.stopped;
    if (stopped) throw stopped;
  }

  /** Stops the step: aborts everything listening to `signal`, then runs the cleanups, newest first. */
  async stop(reason: Stopped): Promise<void> {
    if (this.signal.aborted) return;
    this.#controller.abort(reason);
    clearTimeout(this.#deadline);
    const cleanups = [...this.#cleanups].reverse();
    this.#cleanups.clear();
    const done: string[] = [];
    const failed: string[] = [];
    const all = (async () => {
      for (const { what, undo } of cleanups) {
        await Promise.resolve()
          .then(undo)
          .then(
            () => done.push(what),
            () => failed.push(what),
          );
      }
    })();
    await Promise.race([all, new Promise((resolve) => setTimeout(resolve, CLEANUP_MS).unref())]);
    this.afterStop?.(reason, { done: [...new Set(done)], failed: [...new Set(failed)] });
  }

  /** The step has ended: no deadline stays armed. */
  finish(): void {
    clearTimeout(this.#deadline);
  }
}

/** The one job of this process. */
export const job = new Job();

/**
 * The step's default bound once the size of what it moves is known: ten minutes, and two more per GiB (a GiB at
 * GitHub's published artifact speeds takes under a minute each way, and the engine's own save or load about as long).
 */
export function boundFor(bytes: number): number {
  return (10 + 2 * Math.ceil(bytes / 1024 ** 3)) * 60_000;
}

/** How a bound derived from the size is named in the line of a step stopped by it. */
export const BOUND_BY_SIZE = '10 min and 2 per GiB of what it moves; set `step-timeout` to change it';

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${(ms / 60_000).toFixed(1)} min`;
}

/** A call that may never answer (the library's requests have no deadline of their own): it fails after `ms`. */
export async function within<T>(what: string, ms: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      call(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Stalled(`${what} did not answer within ${Math.round(ms / 1000)} s`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
