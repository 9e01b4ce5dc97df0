/**
 * Which run a delete step deletes from, and with what: this run's artifacts with the runtime token, which needs no
 * permission; `run-id`'s through the REST API with `github-token`, which needs `actions: write`. Never a run the user
 * did not name: unlike load mode, a `workflow_run` workflow does not default to the run that triggered it, and
 * `workflow` is not searched.
 */
import { describeRun, type FindBy } from '../artifacts/listing.ts';
import { shown } from '../display.ts';
import { UserError } from '../errors.ts';
import { isRepository } from '../github.ts';

export interface DeleteTarget {
  /** Another run's, through the REST API; undefined for this run. */
  findBy: FindBy | undefined;
  /** `this run`, or `run 42 of owner/name`, for the log. */
  run: string;
}

export function deleteTarget(
  inputs: {
    runId: number | undefined;
    repository: string | undefined;
    githubToken: string | undefined;
    workflow: string | undefined;
  },
  current: string | undefined,
): DeleteTarget {
  const { runId, githubToken } = inputs;
  if (runId === undefined && inputs.workflow !== undefined) {
    // Ignored, it would leave this run's artifacts to be deleted instead of those of the run the user had in mind.
    throw new UserError(
      `\`workflow\` (${shown(inputs.workflow)}) finds a run to load from, and delete mode does not search: it deletes ` +
        "this run's artifacts, or those of `run-id`. Set `run-id` to the run to delete from (the load step's `run-id` " +
        'output names it), or drop `workflow`.',
    );
  }
  if (runId === undefined) {
    if (inputs.repository !== undefined && inputs.repository.toLowerCase() !== current?.toLowerCase()) {
      throw new UserError(
        `\`repository\` (${shown(inputs.repository)}) is given without \`run-id\`, and without \`run-id\` delete mode ` +
          `deletes only this run's artifacts: give the \`run-id\` of the run in ${shown(inputs.repository)}, or drop \`repository\`.`,
      );
    }
    return { findBy: undefined, run: describeRun(undefined) };
  }
  if (!githubToken) {
    throw new UserError(
      `Deleting the artifacts of run ${runId} needs a token with \`actions: write\`, and \`github-token\` is empty: remove ` +
        "the empty `github-token` to use the default `${{ github.token }}` (with `actions: write` in the job's " +
        '`permissions:`), or give one.',
    );
  }
  const repository = inputs.repository ?? current ?? '';
  if (!isRepository(repository)) {
    throw new UserError(
      `Deleting the artifacts of run ${runId} needs the repository it ran in: expected \`repository\` as owner/name or ` +
        `GITHUB_REPOSITORY in the environment, found ${repository ? shown(repository) : 'neither'}; set \`repository\`.`,
    );
  }
  const [repositoryOwner = '', repositoryName = ''] = repository.split('/');
  const findBy = { workflowRunId: runId, repositoryOwner, repositoryName, token: githubToken };
  return { findBy, run: describeRun(findBy) };
}
