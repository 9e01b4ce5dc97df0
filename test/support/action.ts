/** Runs the bundled action (dist/index.js) as GitHub runs it: a node24 child process with INPUT_* variables. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = path.join(ROOT, 'dist', 'index.js');

export interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  /** The `::error::` line the action failed with, if any. */
  error: string | undefined;
  runnerTemp: string;
}

/** Parses the GITHUB_OUTPUT file format (`name<<DELIMITER\nvalue\nDELIMITER`). */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]!);
      outputs[name!] = value.join('\n');
    } else if (lines[i]!.includes('=')) {
      const at = lines[i]!.indexOf('=');
      outputs[lines[i]!.slice(0, at)] = lines[i]!.slice(at + 1);
    }
  }
  return outputs;
}

export interface PreparedRun {
  runnerTemp: string;
  outputFile: string;
  summaryFile: string;
  /** This process's environment without its INPUT_*, DOCKER_METADATA_*, ACTIONS_* and event variables, plus the run's. */
  env: Record<string, string | undefined>;
}

/** A fresh RUNNER_TEMP with empty GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, and the environment of a step. */
export async function prepareRun(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
): Promise<PreparedRun> {
  const runnerTemp = await mkdtemp(path.join(tmpdir(), 'handoff-runner-'));
  const outputFile = path.join(runnerTemp, 'github_output');
  const summaryFile = path.join(runnerTemp, 'step_summary');
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) =>
        !key.startsWith('INPUT_') &&
        !key.startsWith('DOCKER_METADATA_') &&
        !key.startsWith('ACTIONS_') &&
        // The event of a CI run around the tests is not the step's: a test that wants one gives it.
        key !== 'GITHUB_EVENT_NAME' &&
        key !== 'GITHUB_EVENT_PATH',
    ),
  );
  const childEnv: Record<string, string | undefined> = {
    ...inherited,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: runnerTemp,
    GITHUB_WORKSPACE: runnerTemp,
    GITHUB_ACTIONS: 'true',
    ...env,
  };
  for (const [name, value] of Object.entries(inputs)) childEnv[`INPUT_${name.toUpperCase()}`] = value;
  return { runnerTemp, outputFile, summaryFile, env: childEnv };
}

export async function runAction(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
  const { runnerTemp, outputFile, summaryFile, env: childEnv } = await prepareRun(inputs, env);
  const child = spawn(process.execPath, [DIST], { env: childEnv, cwd: runnerTemp, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const errorLine = stdout.split('\n').find((line) => line.startsWith('::error::'));
  return {
    code,
    stdout,
    stderr,
    outputs: parseOutputFile(await readFile(outputFile, 'utf8')),
    summary: await readFile(summaryFile, 'utf8'),
    error: errorLine?.slice('::error::'.length).replace(/%0A/g, '\n').replace(/%25/g, '%'),
    runnerTemp,
  };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
