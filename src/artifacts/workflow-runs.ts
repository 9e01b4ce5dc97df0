/**
 * A workflow's runs through GitHub's REST API (@actions/github's Octokit): listed a page at a time, newest first, with
 * the filters the API applies; every request within the stall timeout, and retried when the API did not answer.
 */
import * as github from '@actions/github';
import { shown, tokenList } from '../display.ts';
import { UserError } from '../errors.ts';
import { job } from '../job.ts';
import type { Conclusion, WorkflowRun } from '../run-search.ts';
import { editDistance } from '../suggest.ts';
import { ArtifactServiceFailed, firstLine, mayChange, statusOf } from './errors.ts';
import { backoff } from './signed-url.ts';

/** The repository whose runs are listed, and a token that may read its actions. */
export interface RunsAccess {
  repository: string;
  token: string;
}

/** The filters the runs API applies (`status` is a status or a conclusion). */
export interface RunsQuery {
  workflow: string;
  branch?: string;
  headSha?: string;
  status?: 'completed' | Exclude<Conclusion, 'any'>;
}

const ATTEMPTS = 3;

/** The workflow named in a search is not one of the repository's, or the repository cannot be read. */
export class WorkflowNotFound extends UserError {
  constructor(workflow: string, repository: string, known: string[] | undefined) {
    const close = known?.filter((name) => editDistance(name.toLowerCase(), workflow.toLowerCase()) <= 3) ?? [];
    super(
      known === undefined
        ? `GitHub's API found neither the workflow ${shown(workflow)} nor the repository ${repository}, or ` +
            '`github-token` may not read it: check `repository`, and give a token with `actions: read` on it.'
        : `${repository} has no workflow ${shown(workflow)}: ` +
            (known.length === 0 ? 'it has no workflows' : `its workflows are ${tokenList(known)}`) +
            (close.length > 0 ? ` (did you mean ${tokenList(close)}?)` : '') +
            '; set `workflow` to the file name of the workflow that saved the image, in .github/workflows.',
    );
    this.name = 'WorkflowNotFound';
  }
}

/** One request, within the stall timeout, retried (with a back-off) while the API does not answer or answers 5xx. */
async function request<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) await backoff(attempt);
    try {
      return await call(AbortSignal.any([job.signal, AbortSignal.timeout(job.stallMs)]));
    } catch (error) {
      job.check();
      if (!mayChange(statusOf(error)) || attempt >= ATTEMPTS) throw error;
    }
  }
}

function ownerAndName(repository: string): { owner: string; repo: string } {
  const [owner = '', repo = ''] = repository.split('/');
  return { owner, repo };
}

/** A run from the API's JSON, or undefined for one without the fields a search reads. */
export function runFromJson(json: unknown): WorkflowRun | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const run = json as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const id = run.id;
  const runNumber = run.run_number;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0 || typeof runNumber !== 'number') return undefined;
  const headSha = text(run.head_sha);
  const status = text(run.status);
  if (headSha === undefined || status === undefined) return undefined;
  return {
    id,
    runNumber,
    event: text(run.event) ?? '',
    branch: text(run.head_branch) ?? null,
    headSha,
    status,
    conclusion: text(run.conclusion) ?? null,
    createdAt: text(run.created_at) ?? '',
    htmlUrl: text(run.html_url) ?? '',
  };
}

/**
 * The runs of `query.workflow` that match its filters, newest first: at most `maxPages` pages of `perPage` runs,
 * ending early when a page is the last (`more` says whether the API has more). A workflow that does not exist fails as
 * WorkflowNotFound.
 */
export async function* workflowRunPages(
  access: RunsAccess,
  query: RunsQuery,
  pages: { perPage: number; maxPages: number },
): AsyncGenerator<{ runs: WorkflowRun[]; more: boolean }> {
  const octokit = github.getOctokit(access.token);
  const { owner, repo } = ownerAndName(access.repository);
  for (let page = 1; page <= pages.maxPages; page++) {
    // Typed as what a server may send: the API's types promise more than a body can be held to.
    let answer: { total_count?: unknown; workflow_runs?: unknown } | null;
    try {
      ({ data: answer } = await request((signal) =>
        octokit.rest.actions.listWorkflowRuns({
          owner,
          repo,
          workflow_id: /^[0-9]+$/.test(query.workflow) ? Number(query.workflow) : query.workflow,
          ...(query.branch !== undefined && { branch: query.branch }),
          ...(query.headSha !== undefined && { head_sha: query.headSha }),
          ...(query.status !== undefined && { status: query.status }),
          exclude_pull_requests: true,
          per_page: pages.perPage,
          page,
          request: { signal },
        }),
      ));
    } catch (error) {
      if (statusOf(error) === 404) throw new WorkflowNotFound(query.workflow, access.repository, await workflows());
      throw failed(`Listing the runs of workflow ${shown(query.workflow)} in ${access.repository}`, error);
    }
    // No more than a page is read of an answer, whatever the server sent.
    const runs: unknown[] = Array.isArray(answer?.workflow_runs) ? answer.workflow_runs.slice(0, pages.perPage) : [];
    const more = runs.length === pages.perPage && page * pages.perPage < Number(answer?.total_count);
    yield { runs: runs.map(runFromJson).filter((run) => run !== undefined), more };
    if (!more) return;
  }

  /** The file names of the repository's workflows (one page), or undefined when the repository cannot be read. */
  async function workflows(): Promise<string[] | undefined> {
    try {
      const { data } = await request((signal) =>
        octokit.rest.actions.listRepoWorkflows({ owner, repo, per_page: 100, request: { signal } }),
      );
      // Long names are no one's spelling of a workflow file, and would make the "did you mean" slow.
      const listed: unknown[] = Array.isArray(data.workflows) ? data.workflows.slice(0, 100) : [];
      return listed
        .map(
          (workflow) =>
            String((workflow as { path?: unknown } | null)?.path ?? '')
              .split('/')
              .at(-1) ?? '',
        )
        .filter((name) => name !== '' && name.length <= 255);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw failed(`Listing the workflows of ${access.repository}`, error);
    }
  }
}

function failed(doing: string, error: unknown): ArtifactServiceFailed {
  const status = statusOf(error);
  // The API's message comes from a server: printed escaped.
  const cause = status === undefined ? `no answer (${shown(firstLine(error))})` : shown(firstLine(error));
  return new ArtifactServiceFailed(
    doing,
    cause,
    status === 401 || status === 403
      ? 'Give `github-token` a token with `actions: read` on that repository.'
      : mayChange(status)
        ? `GitHub's API failed ${ATTEMPTS} times: re-run the job.`
        : `GitHub's API refused it (${status}): check \`workflow\`, \`branch\`, \`commit\` and \`conclusion\`.`,
  );
}
