/**
 * The run `workflow` names: the newest run of that workflow that matches `branch`, `commit` and `conclusion`, found
 * through the REST API; from there load mode goes on as with `run-id` set to it.
 */
import * as core from '@actions/core';
import { otherRunAccess, runSearchOf, type FoundRun, type RunContext } from '../action/context.ts';
import type { Inputs } from '../action/inputs.ts';
import { workflowRunPages } from '../artifacts/workflow-runs.ts';
import { shown, token } from '../display.ts';
import { UserError } from '../errors.ts';
import { isRepository } from '../github.ts';
import { job } from '../job.ts';
import type { WorkflowRun } from '../run-search.ts';
import {
  NoMatchingRun,
  chooseRun,
  describeSearch,
  describeWorkflowRun,
  nearestRuns,
  queryOf,
  widerQueries,
} from './run-choice.ts';

/** Pages of runs read before giving up: the API filters, so the first page holds the match unless it ignores one. */
const MAX_PAGES = 3;
const PER_PAGE = 100;
/** Runs listed per wider query, for the no-match line. */
const NEAREST_PER_PAGE = 20;

/** The run `workflow` finds; undefined without `workflow`, or when `run-id` is given (it wins, and the log says so). */
export async function findSourceRun(inputs: Inputs, run: RunContext): Promise<FoundRun | undefined> {
  const found = runSearchOf(inputs, run);
  if (!found) return undefined;
  const { search, commitFrom } = found;
  if (inputs.runId !== undefined) {
    core.info(
      `\`run-id\` ${inputs.runId} is set: it wins over \`workflow\` ${token(search.workflow)}, which is not searched.`,
    );
    return undefined;
  }
  const access = otherRunAccess(`the runs of workflow ${token(search.workflow)}`, inputs, run);
  if (!isRepository(access.repository)) {
    throw new UserError(
      `Finding a run needs the repository as owner/name, found ${shown(access.repository)} in GITHUB_REPOSITORY; ` +
        'set `repository`.',
    );
  }
  job.doing = `finding the run of workflow ${token(search.workflow)}`;
  core.info(
    `Finding the newest run of ${describeSearch(search)}, in ${access.repository}${commitFrom ? `; ${commitFrom}` : ''}`,
  );

  const seen: WorkflowRun[] = [];
  let more = false;
  for await (const page of workflowRunPages(access, queryOf(search), { perPage: PER_PAGE, maxPages: MAX_PAGES })) {
    seen.push(...page.runs);
    more = page.more;
    const chosen = chooseRun(seen, search);
    if (chosen) {
      core.info(`Found ${describeWorkflowRun(chosen)}: the newest that matches; ${shown(chosen.htmlUrl)}`);
      return { runId: chosen.id, origin: `run id ${chosen.id} (#${chosen.runNumber}), found by \`workflow\`` };
    }
  }
  const read = more ? seen.length : undefined;
  for (const query of widerQueries(search)) {
    for await (const page of workflowRunPages(access, query, { perPage: NEAREST_PER_PAGE, maxPages: 1 })) {
      seen.push(...page.runs);
    }
  }
  throw new NoMatchingRun({ search, repository: access.repository, nearest: nearestRuns(seen, search), read });
}
