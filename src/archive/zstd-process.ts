/**
 * zstd as a separate process, where the runner has the `zstd` command (GitHub's hosted images do): it compresses on
 * every core (`-T0`) beside the Node process that parses and hashes, where Node's own zstd stream runs on the
 * action's thread, in series with that work, and cannot use worker threads (nodejs/node#59899). It also reads files
 * of several frames, which Node's decoder stops after the first of. Node's zlib remains the fallback.
 */
import { spawnSync } from 'node:child_process';
import { Duplex } from 'node:stream';
import { UserError, messageOf } from '../errors.ts';
import { CommandFailed, lastLine, startCommand, type RunningCommand } from '../process.ts';

let available: boolean | undefined;

/** Whether a `zstd` command runs here; asked once. `HANDOFF_ZSTD=node` turns the process off (tests, benchmarks). */
export function zstdCommandAvailable(): boolean {
  if (process.env.HANDOFF_ZSTD === 'node') return false;
  available ??= spawnSync('zstd', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return available;
}

/**
 * A Duplex over one `zstd` process: what is written goes to its stdin, what it writes comes out, with back-pressure
 * both ways. It ends only once the process has exited cleanly, and a failing zstd is reported by its exit and its
 * own message, not by the broken pipe that the writer sees first.
 */
export function zstdProcess(
  args: readonly string[],
  what: string,
  failure: (detail: string) => UserError = (detail) => new UserError(`zstd failed to ${what} (${detail}).`),
): Duplex {
  let child: RunningCommand;
  try {
    child = startCommand('zstd', ['-q', '-c', ...args], { stdin: true });
  } catch (error) {
    throw new UserError(`Could not run zstd to ${what}: ${messageOf(error)}`);
  }
  const stdin = child.stdin!;
  let stdinBroken = false;
  let waiting: (() => void) | undefined;
  const release = () => {
    const callback = waiting;
    waiting = undefined;
    callback?.();
  };
  // A closed stdin means zstd stopped reading: its exit, below, says why.
  stdin.on('error', () => {
    stdinBroken = true;
    release();
  });
  stdin.on('drain', release);

  const duplex = new Duplex({
    readableHighWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (stdinBroken || stdin.write(chunk)) callback();
      else waiting = () => callback();
    },
    final(callback) {
      stdin.end();
      callback();
    },
    read() {
      child.stdout.resume();
    },
    destroy(error, callback) {
      child.kill();
      callback(error);
    },
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) child.stdout.pause();
  });
  child.exited.then(
    () => duplex.push(null),
    (error: unknown) => {
      if (!(error instanceof CommandFailed) || error.notStarted) {
        duplex.destroy(new UserError(`Could not run zstd to ${what}: ${messageOf(error)}`));
        return;
      }
      const line = lastLine(error.stderr).replace(/^zstd: /, '');
      const how = error.how.replace(/^exited with code/, 'exit code').replace(/^was stopped by/, 'signal');
      duplex.destroy(failure(`${how}${line ? `: ${line}` : ''}`));
    },
  );
  return duplex;
}
