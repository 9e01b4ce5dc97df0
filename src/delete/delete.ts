/**
 * Delete mode: once every job that reads them is done, remove the artifacts `name` or `pattern` picks from this run
 * (the runtime token) or from `run-id` (a token with `actions: write`), and make sure by listing that they are gone.
 * Nothing to delete is a notice, not a failure: a clean-up that runs after a failed build may find none.
 */
import * as core from '@actions/core';
import type { Inputs } from '../action/inputs.ts';
import { noOutputs, setOutputs } from '../action/outputs.ts';
import { writeDeleteSummary } from '../action/summary.ts';
import {
  CallFailed,
  deleteRunArtifact,
  listRunArtifacts,
  type Deletion,
  type RunArtifact,
} from '../artifacts/delete.ts';
import { backoff } from '../artifacts/signed-url.ts';
import { shownList } from '../display.ts';
import { UserError } from '../errors.ts';
import { currentRepository, currentRunId } from '../github.ts';
import { job } from '../job.ts';
import { failureLine, gone, stillListed, type Tried } from './outcome.ts';
import { described, select } from './selection.ts';
import { deleteTarget, type DeleteTarget } from './target.ts';

/** Rounds of deletion: a second deletes what the listing after the first still shows. */
const ROUNDS = 2;

export async function deleteArtifacts(inputs: Inputs): Promise<void> {
  const target = deleteTarget(inputs, currentRepository());
  const runId = [inputs.runId ?? currentRunId() ?? ''];
  job.doing = `deleting artifacts of ${target.run}`;
  const listing = await listRunArtifacts(target.findBy, 'Nothing was deleted');
  const selection = select(listing, inputs, { run: target.run, viaLibrary: target.findBy === undefined });
  if (selection.kind === 'refused') throw new UserError(selection.reason);
  if (selection.kind === 'none') {
    core.notice(selection.notice);
    setOutputs({ ...noOutputs(), 'run-id': runId });
    return;
  }
  const { doomed } = selection;
  core.info(
    `Deleting ${doomed.length} artifact${doomed.length === 1 ? '' : 's'} of ${target.run}: ${shownList(doomed.map((a) => a.name))}`,
  );
  const tried = await deleteInRounds(doomed, target);
  const deleted = gone(tried);
  setOutputs({
    ...noOutputs(),
    'artifact-name': deleted.map((a) => a.name),
    'artifact-id': deleted.map((a) => a.id),
    'run-id': runId,
  });
  const goneIds = new Set(deleted.map((a) => a.id));
  await writeDeleteSummary(
    target.run,
    doomed.map((a) => ({ name: a.name, id: a.id, gone: goneIds.has(a.id) })),
  );
  const failed = failureLine(tried, target);
  if (failed !== undefined) throw new UserError(failed);
  core.info(`The listing of ${target.run} no longer shows ${shownList(doomed.map((a) => a.name))}.`);
}

/**
 * Deletes `doomed`, then lists the run: what it still shows is deleted again, once. A deletion that fails ends the
 * step's attempts (the service is likely down), without the listing.
 */
async function deleteInRounds(doomed: RunArtifact[], target: DeleteTarget): Promise<Tried> {
  const answers = new Map<number, Deletion>();
  let still: RunArtifact[] = doomed;
  let rounds = 0;
  while (rounds < ROUNDS && still.length > 0) {
    if (rounds > 0) await backoff(rounds + 1);
    rounds++;
    for (const [index, artifact] of still.entries()) {
      try {
        const answer = await deleteRunArtifact(artifact, target.findBy);
        answers.set(artifact.id, answer);
        core.info(
          answer === 'deleted'
            ? `Deleted ${described(artifact)}.`
            : `${described(artifact)} was already gone (deleted by another step, or expired): nothing to do.`,
        );
      } catch (error) {
        if (!(error instanceof CallFailed)) throw error;
        return { doomed, answers, failure: { artifact, error }, still: still.slice(index), rounds };
      }
    }
    const listing = await listRunArtifacts(
      target.findBy,
      'The deletions were answered, but not checked: run the job again',
    );
    still = stillListed(doomed, listing);
  }
  return { doomed, answers, failure: undefined, still, rounds };
}
