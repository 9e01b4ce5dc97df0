/**
 * Which run a `workflow` search takes: the newest completed run that matches every filter; and, when none does, the
 * runs nearest to it and what to do. Pure: works on the runs as listed.
 */
import { shown, token } from '../display.ts';
import { UserError } from '../errors.ts';
import type { RunsQuery } from '../artifacts/workflow-runs.ts';
import type { RunSearch, WorkflowRun } from '../run-search.ts';

/** Runs the no-match line names. */
export const NEAREST_RUNS = 5;

export function matchesWhere(run: WorkflowRun, search: RunSearch): boolean {
  return (
    (search.branch === undefined || run.branch === search.branch) &&
    (search.commit === undefined || run.headSha.toLowerCase() === search.commit)
  );
}

export function matches(run: WorkflowRun, search: RunSearch): boolean {
  return (
    matchesWhere(run, search) &&
    run.status === 'completed' &&
    (search.conclusion === 'any' || run.conclusion === search.conclusion)
  );
}

/** Newest first: by creation time, then by id (a later run has a higher one). */
export function newestFirst(runs: readonly WorkflowRun[]): WorkflowRun[] {
  const time = (run: WorkflowRun) => Date.parse(run.createdAt) || 0;
  return [...runs].sort((a, b) => time(b) - time(a) || b.id - a.id);
}

/**
 * The run to load from: the newest that matches. The API filters too, but a server that ignores a filter must not
 * hand over another commit's image.
 */
export function chooseRun(runs: readonly WorkflowRun[], search: RunSearch): WorkflowRun | undefined {
  return newestFirst(runs.filter((run) => matches(run, search)))[0];
}

/** What the API is asked first: every filter of the search. */
export function queryOf(search: RunSearch): RunsQuery {
  return {
    workflow: search.workflow,
    ...(search.branch !== undefined && { branch: search.branch }),
    ...(search.commit !== undefined && { headSha: search.commit }),
    status: search.conclusion === 'any' ? 'completed' : search.conclusion,
  };
}

/** When nothing matched, what else is listed to show the nearest runs: without the conclusion, then without anything. */
export function widerQueries(search: RunSearch): RunsQuery[] {
  const wider: RunsQuery[] = [{ ...queryOf(search), status: undefined }];
  if (search.branch !== undefined || search.commit !== undefined) wider.push({ workflow: search.workflow });
  return wider;
}

/** The runs nearest to the search, unique, at most `limit`: those of its commit and branch first, newest first. */
export function nearestRuns(runs: readonly WorkflowRun[], search: RunSearch, limit = NEAREST_RUNS): WorkflowRun[] {
  const unique = [...new Map(runs.map((run) => [run.id, run])).values()];
  const score = (run: WorkflowRun) =>
    (search.commit !== undefined && run.headSha.toLowerCase() === search.commit ? 2 : 0) +
    (search.branch !== undefined && run.branch === search.branch ? 1 : 0);
  // A stable sort: newest first within each score.
  return newestFirst(unique)
    .sort((a, b) => score(b) - score(a))
    .slice(0, limit);
}

/** A time from the API, as ISO 8601 when it is one (safe to print bare), else escaped. */
function timeText(text: string): string {
  const time = Date.parse(text);
  return Number.isNaN(time) ? shown(text) : new Date(time).toISOString();
}

/** `#57 (run 1234): success, pull_request on `feature`, commit 0123…, created 2025-01-02T10:00:00.000Z` */
export function describeWorkflowRun(run: WorkflowRun): string {
  const outcome = run.status === 'completed' ? token(run.conclusion ?? 'no conclusion') : token(run.status);
  const branch = run.branch === null ? 'no branch' : shown(run.branch);
  return (
    `#${run.runNumber} (run ${run.id}): ${outcome}, ${token(run.event)} on ${branch}, commit ${token(run.headSha)}, ` +
    `created ${timeText(run.createdAt)}`
  );
}

/** `workflow pr.yml: commit 0123…, any branch, conclusion success` */
export function describeSearch(search: RunSearch): string {
  return (
    `workflow ${token(search.workflow)}: ` +
    `${search.commit === undefined ? 'any commit' : `commit ${search.commit}`}, ` +
    `${search.branch === undefined ? 'any branch' : `branch ${shown(search.branch)}`}, ` +
    `${search.conclusion === 'any' ? 'any conclusion (completed)' : `conclusion ${search.conclusion}`}`
  );
}

/** What to do when no run matched, from what the nearest runs are. */
export function adviceFor(nearest: readonly WorkflowRun[], search: RunSearch): string {
  const here = nearest.filter((run) => matchesWhere(run, search));
  const running = here.find((run) => run.status !== 'completed');
  if (running) {
    return (
      `run #${running.runNumber} is still ${token(running.status)}: load once it has completed, from a workflow ` +
      'that `workflow_run` starts or a job that runs later'
    );
  }
  if (here.length > 0) {
    return `none concluded ${search.conclusion}: re-run the workflow, or set \`conclusion\` (\`any\` takes any completed run)`;
  }
  if (nearest.length === 0) return 'the workflow has no runs: check `workflow` and `repository`';
  return (
    'check `branch` and `commit`: a run matches the full head SHA it ran on (for a pull request, its head, not the ' +
    'merge commit)'
  );
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * No run of the workflow matches: the search, the runs nearest to it (their links in the details), what to do. `read`:
 * how many runs were read when the API had more than the action reads.
 */
export class NoMatchingRun extends UserError {
  constructor(found: { search: RunSearch; repository: string; nearest: readonly WorkflowRun[]; read?: number }) {
    const { search, repository, nearest, read } = found;
    super(
      `No run of ${describeSearch(search)} in ${token(repository)}` +
        (read === undefined ? '' : ` among the ${read} newest the API listed, as many as this action reads`) +
        (nearest.length > 0 ? `; the nearest runs: ${nearest.map(describeWorkflowRun).join('; ')}` : '') +
        `. ${
          read === undefined
            ? capitalized(adviceFor(nearest, search))
            : 'The API listed runs that do not match the filters it was sent: set `run-id` to the ID of the run'
        }.`,
      nearest.map((run) => `Nearest run #${run.runNumber}: ${shown(run.htmlUrl)}`),
    );
    this.name = 'NoMatchingRun';
  }
}
