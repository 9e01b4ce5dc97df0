/**
 * Which failure a load reports, without I/O. When the read into the engine fails, several things fail at once (the
 * archive's check, the stream, the engine's process): the one that is the cause is reported, the others are its result.
 */
import { shown, shownList } from '../display.ts';
import { Stalled, UserError, messageOf } from '../errors.ts';
import { inputProblem } from '../archive/tarball.ts';
import { lastLine } from '../process.ts';

/** How each part of one load into the engine ended. */
export interface LoadOutcome {
  /** The engine did not finish within its time after its input ended (it was stopped). */
  late: Stalled | undefined;
  /** The canonical writer: its verdict on the archive. */
  written: PromiseSettledResult<unknown>;
  /** The stream from the download into the engine's stdin. */
  fed: PromiseSettledResult<unknown>;
  /** The engine's `load` process. */
  exited: PromiseSettledResult<unknown>;
  /** `` `docker load` ``, for the lines. */
  what: string;
  /** The engine's stderr, for its last words. */
  stderr: string;
}

/**
 * The one failure to report: the engine that never finished; the archive refused (the engine's complaint is then
 * only its result); a stall; the engine's own failure; a compressed stream cut short; or the engine that stopped
 * reading (a broken pipe), in its own last words. Undefined when nothing failed.
 */
export function loadFailure(outcome: LoadOutcome): unknown {
  const { late, written, fed, exited, what, stderr } = outcome;
  if (late) return late;
  if (written.status === 'rejected' && written.reason instanceof UserError) return written.reason;
  if (fed.status === 'rejected' && fed.reason instanceof Stalled) return fed.reason;
  if (exited.status === 'rejected' && exited.reason instanceof UserError) return exited.reason;
  const failure = fed.status === 'rejected' ? fed.reason : written.status === 'rejected' ? written.reason : undefined;
  if (failure === undefined) return undefined;
  return inputProblem(failure) ?? engineStopped(what, failure, stderr);
}

/** The engine stopped reading what it was given (a broken pipe): its own last words, when it said any. */
function engineStopped(what: string, error: unknown, stderr: string): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  const said = lastLine(stderr);
  return new UserError(
    `${what} stopped reading the tarball (${code ?? messageOf(error)})${said ? `: ${shown(said, 300)}` : ''}; the engine ` +
      'failed or was stopped. Check the engine (`docker info`, its log), then re-run the job.',
  );
}

/** The engine's own verdict in what it printed, whatever its exit code (the containerd store exits 0 on these). */
export function engineReported(what: string, errors: readonly string[]): UserError | undefined {
  if (errors.length === 0) return undefined;
  return new UserError(
    `${what} reported ${shownList(errors, 3)}: the engine could not use what it was given, though ` +
      'every check of the tarball passed; check the engine (its disk, its log), then load again.',
  );
}
