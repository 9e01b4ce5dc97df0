/** Entry point GitHub runs (dist/index.js is this file bundled). */
import * as core from '@actions/core';
import { UserError, messageOf } from './errors.ts';
import { getInputs } from './action/inputs.ts';
import { Stopped, boundFor, job } from './job.ts';
import { deleteArtifacts } from './delete/delete.ts';
import { load } from './load/load.ts';
import { save } from './save/save.ts';

/** The one line for a step that was stopped (cancelled, or past its bound), once its work was undone. */
function reportStopped(reason: Stopped, undone: { done: string[]; failed: string[] }): void {
  const list = (items: string[]) =>
    items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : (items[0] ?? '');
  const done = undone.done.length > 0 ? `; it was stopped by ${list(undone.done)}` : '';
  const failed = undone.failed.length > 0 ? `; it failed at ${list(undone.failed)}: check the runner` : '';
  core.setFailed(`${reason.message}${done}${failed}.`);
}

export async function run(): Promise<void> {
  job.afterStop = (reason, undone) => {
    reportStopped(reason, undone);
    process.exit(1);
  };
  // GitHub cancels a job with SIGINT, then SIGTERM; a second signal while the first is being handled ends the step at once.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (job.stopped) process.exit(1);
      void job.stop(new Stopped(`The job was cancelled (${signal}) while ${job.doing}`));
    });
  }
  try {
    const inputs = getInputs();
    job.stallMs = inputs.stallMs;
    if (inputs.stepTimeoutMs !== undefined) job.bound(inputs.stepTimeoutMs, 'the `step-timeout` input');
    else job.bound(boundFor(0), 'the default bound before the size is known; set `step-timeout` to change it');
    if (inputs.mode === 'save') await save(inputs);
    else if (inputs.mode === 'delete') await deleteArtifacts(inputs);
    else await load(inputs);
  } catch (error) {
    // A stop reports itself once its cleanups have run.
    if (job.stopped) return;
    if (error instanceof UserError) {
      // Outside any group, so the engine's images and the suggestions are visible without unfolding anything.
      for (const line of error.details) core.info(line);
      core.setFailed(error.message);
    } else {
      // Not a failure a user can cause: keep the stack, but in the debug log, so the error line stays readable.
      core.debug(error instanceof Error ? (error.stack ?? error.message) : String(error));
      core.setFailed(`Unexpected error (please report it): ${messageOf(error)}`);
    }
  } finally {
    if (!job.stopped) job.finish();
  }
}

// Nothing may crash past the one error line: a failure that escapes every await is still reported as one.
process.on('unhandledRejection', (reason) => {
  core.debug(reason instanceof Error ? (reason.stack ?? reason.message) : String(reason));
  core.setFailed(`Unexpected error (please report it): ${messageOf(reason)}`);
  process.exit(1);
});

await run();
/** Once the step has said how it ended, what is still open is only what nothing waits for. */
const EXIT_GRACE_MS = 500;
if (!job.stopped) {
  // A request the library left open (a service that never answered) must not hold the finished step.
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}
