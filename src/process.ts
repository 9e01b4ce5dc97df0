/**
 * Every external command the action runs (the engine's CLI, zstd) goes through here: an argument array (nothing reaches
 * a shell), a bound on its arguments, the last of its stderr kept for the error line, a deadline, and a stop that
 * kills it when the step is cancelled. docs/decisions.md says why not @actions/exec: it cannot stop a command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import * as core from '@actions/core';
import { messageOf } from './errors.ts';
import { job } from './job.ts';

/** The most argument bytes one command is given, far below the kernel's limit (which the environment shares). */
export const MAX_ARGUMENT_BYTES = 512 * 1024;
const STDERR_KEPT = 64 * 1024;
/** Output a short command may print before it is stopped: an engine's list of every image fits many times over. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** After SIGTERM, how long a command has to exit before SIGKILL. */
const KILL_GRACE_MS = 2_000;

/** How a command ended when it did not succeed. */
export class CommandFailed extends Error {
  readonly command: string;
  readonly args: readonly string[];
  /** `exit code 1`, `signal SIGKILL`, `did not finish within 60 s`, or why it could not start. */
  readonly how: string;
  /** The last of what it printed on stderr. */
  readonly stderr: string;
  /** It could not be started: not on PATH (ENOENT), or the kernel refused it. */
  readonly notStarted: 'not-found' | 'refused' | undefined;

  constructor(
    command: string,
    args: readonly string[],
    ended: { how: string; stderr?: string; notStarted?: 'not-found' | 'refused' },
  ) {
    super(`\`${command} ${args[0] ?? ''}\` ${ended.how}`);
    this.name = 'CommandFailed';
    this.command = command;
    this.args = args;
    this.how = ended.how;
    this.stderr = ended.stderr ?? '';
    this.notStarted = ended.notStarted;
  }

  /** Its last meaningful stderr line, or how it ended. */
  get line(): string {
    return lastLine(this.stderr) || this.how;
  }
}

export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? '';
}

export interface RunningCommand {
  stdin: Writable | null;
  stdout: Readable;
  /** Resolves when the command exits 0; rejects with CommandFailed otherwise. */
  exited: Promise<void>;
  /** The last of its stderr so far. */
  stderr(): string;
  /** Stops it: SIGTERM, then SIGKILL if it has not exited. */
  kill(): void;
}

/** The file `command` runs, as PATH finds it: for the `[command]…` log line, as the toolkit's exec prints it. */
function resolved(command: string): string | undefined {
  if (command.includes('/')) return command;
  for (const directory of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!directory) continue;
    const candidate = path.join(directory, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Starts `command` with `args`; stops it when the step stops. `echo` logs the `[command]…` line first. */
export function startCommand(
  command: string,
  args: readonly string[],
  options: { stdin?: boolean; echo?: boolean } = {},
): RunningCommand {
  const bytes = args.reduce((sum, arg) => sum + Buffer.byteLength(arg) + 1, 0);
  if (bytes > MAX_ARGUMENT_BYTES) {
    throw new CommandFailed(command, args, {
      how: `would take ${bytes} bytes of arguments, more than the ${MAX_ARGUMENT_BYTES} one command is given`,
      notStarted: 'refused',
    });
  }
  const file = resolved(command);
  if (file === undefined)
    throw new CommandFailed(command, args, { how: 'was not found on PATH', notStarted: 'not-found' });
  if (options.echo) core.info(`[command]${file} ${args.map(quoted).join(' ')}`);
  let child: ChildProcess;
  try {
    child = spawn(file, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  } catch (error) {
    // Node throws some failures to start (E2BIG) instead of emitting them.
    throw new CommandFailed(command, args, { how: `could not start (${messageOf(error)})`, notStarted: 'refused' });
  }
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-STDERR_KEPT)));
  let killTimer: NodeJS.Timeout | undefined;
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    killTimer.unref();
  };
  const unregister = job.onStop(`stopping \`${command} ${args[0] ?? ''}\``, () => {
    kill();
    return new Promise((resolve) =>
      child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('close', resolve),
    );
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new CommandFailed(command, args, {
          how: `could not run (${error.code ?? error.message})`,
          notStarted: error.code === 'ENOENT' ? 'not-found' : 'refused',
        }),
      );
    });
    child.once('close', (code, signal) => {
      clearTimeout(killTimer);
      unregister();
      if (code === 0) resolve();
      else
        reject(
          new CommandFailed(command, args, {
            how: signal ? `was stopped by ${signal}` : `exited with code ${code}`,
            stderr,
          }),
        );
    });
  });
  exited.catch(() => undefined);
  return { stdin: child.stdin, stdout: child.stdout!, exited, stderr: () => stderr, kill };
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  ok: boolean;
  failure: CommandFailed | undefined;
}

/**
 * Runs a short command to its end, within `deadlineMs` (then it is stopped and fails), and returns what it printed.
 * A command that exits non-zero resolves with `ok: false`; one that cannot start, or is stopped, rejects.
 */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: { deadlineMs: number; echo?: boolean; input?: string },
): Promise<CommandResult> {
  const running = startCommand(command, args, { echo: options.echo, stdin: options.input !== undefined });
  if (options.input !== undefined) running.stdin!.end(options.input);
  let stdout = '';
  let overflow = false;
  running.stdout.setEncoding('utf8').on('data', (text: string) => {
    if (stdout.length + text.length > MAX_OUTPUT_BYTES) {
      overflow = true;
      running.kill();
    } else stdout += text;
  });
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    running.kill();
  }, options.deadlineMs);
  timer.unref();
  try {
    await running.exited;
    return { stdout, stderr: running.stderr(), ok: true, failure: undefined };
  } catch (error) {
    if (!(error instanceof CommandFailed)) throw error;
    if (late) {
      throw new CommandFailed(command, args, {
        how: `did not finish within ${Math.round(options.deadlineMs / 1000)} s and was stopped`,
        stderr: running.stderr(),
      });
    }
    if (overflow) {
      throw new CommandFailed(command, args, {
        how: `printed more than ${MAX_OUTPUT_BYTES} bytes`,
        stderr: running.stderr(),
      });
    }
    if (error.notStarted) throw error;
    return { stdout, stderr: running.stderr(), ok: false, failure: error };
  } finally {
    clearTimeout(timer);
  }
}

/** An argument as the toolkit's exec prints it: quoted when it holds a space or a quote. */
function quoted(arg: string): string {
  return /[\s"]/.test(arg) ? `"${arg.replace(/(["\\])/g, '\\$1')}"` : arg;
}
