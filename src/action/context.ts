/**
 * The workflow run this step is part of, through @actions/github's context: its repository and its event, and from
 * them the run to load artifacts from. In a `workflow_run` workflow that is the run that triggered it, the way the
 * fork-safe pattern uses it, so no `run-id` expression is needed.
 */
import * as github from '@actions/github';
import type { ArtifactLocation } from '../artifacts/index.ts';
import { UserError } from '../errors.ts';
import { currentRepository } from '../github.ts';
import { parseCommit, type RunSearch } from '../run-search.ts';
import type { Inputs } from './inputs.ts';

export { currentRepository } from '../github.ts';

export interface RunContext {
  eventName: string | undefined;
  /** `github.event.workflow_run.id`, as found in the event payload (unchecked). */
  triggeringRunId: unknown;
  /** `github.event.pull_request.head.sha`, as found in the event payload (unchecked). */
  pullRequestHead: unknown;
  /** `owner/name`, or undefined outside a workflow. */
  repository: string | undefined;
}

export function currentRun(): RunContext {
  const workflowRun = github.context.payload.workflow_run as { id?: unknown } | undefined;
  const pullRequest = github.context.payload.pull_request as { head?: { sha?: unknown } } | undefined;
  return {
    eventName: github.context.eventName,
    triggeringRunId: workflowRun?.id,
    pullRequestHead: pullRequest?.head?.sha,
    repository: currentRepository(),
  };
}

export interface LoadLocation {
  location: ArtifactLocation;
  /** Where the run id came from, for the log. */
  origin: string;
}

/** A run found by `workflow`: its id, and how it was found, for the log. */
export interface FoundRun {
  runId: number;
  origin: string;
}

/**
 * Where load mode reads artifacts: the `run-id` input; else the run `workflow` found; else, in a `workflow_run`
 * workflow, the run that triggered it; else this run. Another run is read through the REST API, which needs the token
 * and a repository.
 */
export function loadLocation(
  inputs: { runId: number | undefined; repository: string | undefined; githubToken: string | undefined },
  run: RunContext,
  found?: FoundRun,
): LoadLocation {
  let runId = inputs.runId;
  let origin: string;
  if (runId !== undefined) {
    origin = `run id ${runId} from the \`run-id\` input`;
  } else if (found) {
    ({ runId, origin } = found);
  } else if (run.eventName === 'workflow_run' && isRunId(run.triggeringRunId)) {
    runId = run.triggeringRunId;
    origin = `run id ${runId}: the run that triggered this workflow_run event (github.event.workflow_run.id)`;
  } else {
    return { location: {}, origin: `this run (no \`run-id\`, and the event is ${run.eventName ?? 'unknown'})` };
  }
  const { repository, token } = otherRunAccess(`the artifacts of ${origin}`, inputs, run);
  return { location: { runId, repository, token }, origin: `${origin}, in ${repository}` };
}

/** The repository and token to read another run's `what` with, or the line that says which is missing. */
export function otherRunAccess(
  what: string,
  inputs: { repository: string | undefined; githubToken: string | undefined },
  run: RunContext,
): { repository: string; token: string } {
  if (!inputs.githubToken) {
    throw new UserError(
      `Reading ${what} needs a token, and \`github-token\` is empty: remove the empty ` +
        '`github-token` to use the default `${{ github.token }}` (with `actions: read` permission), or give one.',
    );
  }
  const repository = inputs.repository ?? run.repository;
  if (!repository) {
    throw new UserError(
      `Reading ${what} needs the repository it ran in: expected \`repository\` as owner/name or ` +
        'GITHUB_REPOSITORY in the environment, found neither; set `repository`.',
    );
  }
  return { repository, token: inputs.githubToken };
}

const PULL_REQUEST_EVENTS = ['pull_request', 'pull_request_target'];

/**
 * The search `workflow` asks for, undefined without one. In a pull request's workflow, `commit` defaults to the
 * pull request's head: the commit its workflows ran on (github.sha is a merge commit no run has built).
 */
export function runSearchOf(
  inputs: Pick<Inputs, 'workflow' | 'branch' | 'commit' | 'conclusion'>,
  run: RunContext,
): { search: RunSearch; commitFrom?: string } | undefined {
  const { workflow, branch, conclusion } = inputs;
  if (workflow === undefined) return undefined;
  if (inputs.commit !== undefined || !PULL_REQUEST_EVENTS.includes(run.eventName ?? '')) {
    return { search: { workflow, branch, commit: inputs.commit, conclusion } };
  }
  const head = typeof run.pullRequestHead === 'string' ? parseCommit(run.pullRequestHead) : undefined;
  if (!head?.ok) {
    throw new UserError(
      `The ${run.eventName} event names no pull request head (github.event.pull_request.head.sha), which \`commit\` ` +
        'defaults to in such a workflow: set `commit`.',
    );
  }
  const commitFrom = "`commit` is empty: the pull request's head (github.event.pull_request.head.sha)";
  return { search: { workflow, branch, commit: head.value, conclusion }, commitFrom };
}

function isRunId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
