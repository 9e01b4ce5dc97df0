/**
 * The workflow run this step is part of, through @actions/github's context: its repository and its event, and from
 * them the run to load artifacts from. In a `workflow_run` workflow that is the run that triggered it, the way the
 * fork-safe pattern uses it, so no `run-id` expression is needed.
 */
import * as github from '@actions/github';
import type { ArtifactLocation } from '../artifacts/index.ts';
import { UserError } from '../errors.ts';
import { currentRepository } from '../github.ts';

export { currentRepository } from '../github.ts';

export interface RunContext {
  eventName: string | undefined;
  /** `github.event.workflow_run.id`, as found in the event payload (unchecked). */
  triggeringRunId: unknown;
  /** `owner/name`, or undefined outside a workflow. */
  repository: string | undefined;
}

export function currentRun(): RunContext {
  const workflowRun = github.context.payload.workflow_run as { id?: unknown } | undefined;
  return {
    eventName: github.context.eventName,
    triggeringRunId: workflowRun?.id,
    repository: currentRepository(),
  };
}

export interface LoadLocation {
  location: ArtifactLocation;
  /** Where the run id came from, for the log. */
  origin: string;
}

/**
 * Where load mode reads artifacts: the `run-id` input; else, in a `workflow_run` workflow, the run that triggered
 * it; else this run. Another run is read through the REST API, which needs the token and a repository.
 */
export function loadLocation(
  inputs: { runId: number | undefined; repository: string | undefined; githubToken: string | undefined },
  run: RunContext,
): LoadLocation {
  let runId = inputs.runId;
  let origin: string;
  if (runId !== undefined) {
    origin = `run id ${runId} from the \`run-id\` input`;
  } else if (run.eventName === 'workflow_run' && isRunId(run.triggeringRunId)) {
    runId = run.triggeringRunId;
    origin = `run id ${runId}: the run that triggered this workflow_run event (github.event.workflow_run.id)`;
  } else {
    return { location: {}, origin: `this run (no \`run-id\`, and the event is ${run.eventName ?? 'unknown'})` };
  }
  if (!inputs.githubToken) {
    throw new UserError(
      `Reading the artifacts of ${origin} needs a token, and \`github-token\` is empty: remove the empty ` +
        '`github-token` to use the default `${{ github.token }}` (with `actions: read` permission), or give one.',
    );
  }
  const repository = inputs.repository ?? run.repository;
  if (!repository) {
    throw new UserError(
      `Reading the artifacts of ${origin} needs the repository it ran in: expected \`repository\` as owner/name or ` +
        'GITHUB_REPOSITORY in the environment, found neither; set `repository`.',
    );
  }
  return { location: { runId, repository, token: inputs.githubToken }, origin: `${origin}, in ${repository}` };
}

function isRunId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
