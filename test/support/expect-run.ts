/** What every failing step of the action must look like, whatever the test: one clear line, no crash. */
import { expect } from 'vitest';
import type { ActionRun } from './action.ts';

/** A frame of a stack trace as Node prints it. */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

/** Everything the step printed, with a note when the test had to kill it. */
export function runLog(run: ActionRun & { timedOut?: boolean; ms?: number }): string {
  return `${run.timedOut ? `[still running after ${run.ms} ms: killed]\n` : ''}${run.stdout}\n${run.stderr}`;
}

/**
 * Failed by itself with exactly one `::error::` line, matching `message`: one line, no stack trace anywhere in the
 * log, and not the "Unexpected error" of a failure the action did not foresee.
 */
export function expectOneErrorLine(run: ActionRun & { timedOut?: boolean }, message: RegExp): void {
  const log = runLog(run);
  expect(run.timedOut ?? false, log).toBe(false);
  expect(run.code, log).toBe(1);
  expect(
    run.stdout.split('\n').filter((line) => line.startsWith('::error::')),
    log,
  ).toHaveLength(1);
  expect(run.error, log).toMatch(message);
  expect(run.error).not.toContain('\n');
  expect(run.error).not.toMatch(/Unexpected error/);
  expect(log).not.toMatch(STACK_FRAME);
}
