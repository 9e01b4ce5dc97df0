/**
 * The bundled action as a process the test holds: to signal it mid-step (the runner's cancellation), to time it, to
 * give up on it past a bound (killing it and everything it started, so a hung step never outlives its test), and to
 * see which processes it started and whether any outlived it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DIST, parseOutputFile, prepareRun, type ActionRun } from './action.ts';

const exec = promisify(execFile);

export interface TimedRun extends ActionRun {
  /** Milliseconds from the start of the process to its end (or to the test giving up on it). */
  ms: number;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  /** Every `::error::` line, decoded as ActionRun.error is. */
  errors: string[];
  /** Whether the test gave up on it at its limit (it was then killed, with every process it started). */
  timedOut: boolean;
}

export interface RunningAction {
  child: ChildProcess;
  pid: number;
  runnerTemp: string;
  /** What it printed on stdout so far. */
  stdout(): string;
  /** Milliseconds since it started. */
  elapsed(): number;
  /** Resolves when the process has ended. */
  ended: Promise<TimedRun>;
  /** Every process it was seen to start (it is looked at every 250 ms while it runs), and theirs. */
  started(): ProcessEntry[];
  /** SIGKILLs the action and every process it started that is still running. */
  killAll(): Promise<void>;
}

export interface ProcessEntry {
  pid: number;
  ppid: number;
  args: string;
}

function decodeError(line: string): string {
  return line.slice('::error::'.length).replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

/** Every process of the machine. */
export async function processes(): Promise<ProcessEntry[]> {
  const { stdout } = await exec('ps', ['-eo', 'pid=,ppid=,args='], { maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ pid: Number(match[1]), ppid: Number(match[2]), args: match[3]! }));
}

/** The processes `pid` started, and theirs, as running now (not `pid` itself). */
export async function descendants(pid: number): Promise<ProcessEntry[]> {
  const all = await processes();
  const found: ProcessEntry[] = [];
  const parents = [pid];
  while (parents.length > 0) {
    const parent = parents.pop()!;
    for (const entry of all.filter((one) => one.ppid === parent)) {
      found.push(entry);
      parents.push(entry.pid);
    }
  }
  return found;
}

/** Those of `entries` still running: the same pid with the same command line (a reused pid is another process). */
export async function stillRunning(entries: readonly ProcessEntry[]): Promise<ProcessEntry[]> {
  const now = new Map((await processes()).map((entry) => [entry.pid, entry.args]));
  return entries.filter((entry) => now.get(entry.pid) === entry.args);
}

/** Starts the bundled action as runAction does, and hands the test its process. */
export async function startAction(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
): Promise<RunningAction> {
  const { runnerTemp, outputFile, summaryFile, env: childEnv } = await prepareRun(inputs, env);
  const started = performance.now();
  const child = spawn(process.execPath, [DIST], { env: childEnv, cwd: runnerTemp, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  /** Everything it started, as last seen: a killed action's children are no longer its descendants. */
  let seen: ProcessEntry[] = [];
  const watch = setInterval(() => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    descendants(child.pid!).then(
      (now) => {
        const known = new Set(seen.map((entry) => `${entry.pid} ${entry.args}`));
        seen = [...seen, ...now.filter((entry) => !known.has(`${entry.pid} ${entry.args}`))];
      },
      () => undefined,
    );
  }, 250);
  watch.unref();
  const ended = new Promise<TimedRun>((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(watch);
      const ms = performance.now() - started;
      void (async () => {
        const errors = stdout
          .split(/\r?\n/)
          .filter((line) => line.startsWith('::error::'))
          .map(decodeError);
        resolve({
          code,
          signal,
          stdout,
          stderr,
          outputs: parseOutputFile(await readFile(outputFile, 'utf8').catch(() => '')),
          summary: await readFile(summaryFile, 'utf8').catch(() => ''),
          error: errors[0],
          errors,
          runnerTemp,
          ms,
          timedOut: false,
        });
      })();
    }),
  );
  const killAll = async () => {
    const tree = [...seen, ...(child.exitCode === null ? await descendants(child.pid!).catch(() => []) : [])];
    for (const entry of await stillRunning(tree)) {
      try {
        process.kill(entry.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return {
    child,
    pid: child.pid!,
    runnerTemp,
    stdout: () => stdout,
    elapsed: () => performance.now() - started,
    ended,
    started: () => [...seen],
    killAll,
  };
}

/**
 * Runs the action to its end, or for at most `limitMs`: past that it is killed with everything it started, and the
 * run says `timedOut` (its `ms` is then the limit), so that a step that hangs fails its test instead of outliving it.
 */
export async function runActionWithin(
  inputs: Record<string, string>,
  env: Record<string, string>,
  limitMs: number,
): Promise<TimedRun> {
  const running = await startAction(inputs, env);
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'limit'>((resolve) => (timer = setTimeout(() => resolve('limit'), limitMs)));
  const first = await Promise.race([running.ended, limit]);
  clearTimeout(timer);
  if (first !== 'limit') return first;
  await running.killAll();
  const run = await running.ended;
  return { ...run, ms: limitMs, timedOut: true };
}
