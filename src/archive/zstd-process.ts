/**
 * zstd as a separate process, where the runner has the `zstd` command (GitHub's hosted images do): it compresses on
 * every core (`-T0`) beside the Node process that parses and hashes, where Node's own zstd stream runs on the
 * action's thread, in series with that work, and cannot use worker threads (nodejs/node#59899). It also reads files
 * of several frames, which Node's decoder stops after the first of. Node's zlib remains the fallback.
 */
import { spawn, spawnSync } from 'node:child_process';
import { Duplex } from 'node:stream';
import { UserError } from '../errors.ts';

let available: boolean | undefined;

/** Whether a `zstd` command runs here; asked once. `HANDOFF_ZSTD=node` turns the process off (tests, benchmarks). */
export function zstdCommandAvailable(): boolean {
  if (process.env.HANDOFF_ZSTD === 'node') return false;
  available ??= spawnSync('zstd', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return available;
}

const STDERR_KEPT = 4096;

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
  const child = spawn('zstd', ['-q', '-c', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-STDERR_KEPT)));
  let stdinBroken = false;
  let waiting: (() => void) | undefined;
  const release = () => {
    const callback = waiting;
    waiting = undefined;
    callback?.();
  };
  // A closed stdin means zstd stopped reading: its exit, below, says why.
  child.stdin.on('error', () => {
    stdinBroken = true;
    release();
  });
  child.stdin.on('drain', release);

  const duplex = new Duplex({
    readableHighWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (stdinBroken || child.stdin.write(chunk)) callback();
      else waiting = () => callback();
    },
    final(callback) {
      child.stdin.end();
      callback();
    },
    read() {
      child.stdout.resume();
    },
    destroy(error, callback) {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      callback(error);
    },
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) child.stdout.pause();
  });
  child.on('error', (error) => duplex.destroy(new UserError(`Could not run zstd to ${what}: ${error.message}`)));
  child.on('close', (code, signal) => {
    if (code === 0) {
      duplex.push(null);
      return;
    }
    const line =
      stderr
        .trim()
        .split('\n')
        .at(-1)
        ?.replace(/^zstd: /, '') ?? '';
    duplex.destroy(failure(`${signal ? `signal ${signal}` : `exit code ${code}`}${line ? `: ${line}` : ''}`));
  });
  return duplex;
}
