/** Entry point GitHub runs (dist/index.js is this file bundled). */
import * as core from '@actions/core';
import { UserError, messageOf } from './errors.ts';
import { getInputs } from './inputs.ts';
import { load } from './load.ts';
import { save } from './save.ts';

export async function run(): Promise<void> {
  try {
    const inputs = getInputs();
    if (inputs.mode === 'save') await save(inputs);
    else await load(inputs);
  } catch (error) {
    if (error instanceof UserError) {
      // Outside any group, so the engine's images and the suggestions are visible without unfolding anything.
      for (const line of error.details) core.info(line);
      core.setFailed(error.message);
    } else {
      // Not a failure a user can cause: keep the stack, but in the debug log, so the error line stays readable.
      core.debug(error instanceof Error ? (error.stack ?? error.message) : String(error));
      core.setFailed(`Unexpected error (please report it): ${messageOf(error)}`);
    }
  }
}

await run();
