/**
 * The workflow runs of the local artifact service's repositories, as GitHub's REST API lists them: a run is one of the
 * service's runs (its id is the run id its artifacts live under), recorded with its workflow, branch, head SHA, event,
 * status and conclusion. Serves `GET /repos/{owner}/{repo}/actions/workflows` (the workflows),
 * `…/workflows/{workflow_id}` (one, by ID or file name) and `…/workflows/{workflow_id}/runs` (its runs, newest first,
 * filtered by `branch`, `head_sha`, `event` and `status`, a page of `per_page` at a time with a Link header), as
 * docs.github.com/rest/actions/workflows and /workflow-runs describe them.
 */

/** A run as a test records it; what it leaves out takes the defaults of a finished, successful push. */
export interface RunRecord {
  /** The workflow's file name in .github/workflows (`ci.yml`). */
  workflow: string;
  /** The workflow's `name:`; its file name without the extension by default. */
  workflowName?: string;
  /** `head_branch`; null for a run of a tag. */
  branch: string | null;
  /** `head_sha`, 40 hex digits. */
  headSha: string;
  /** `push` by default. */
  event?: string;
  /** `completed` by default. */
  status?: 'completed' | 'in_progress' | 'queued' | 'requested' | 'waiting' | 'pending' | 'action_required';
  /** `success` by default for a completed run, null for another. */
  conclusion?: string | null;
  /** ISO 8601; the time it is recorded by default. */
  createdAt?: string;
  /** The workflow's next run number by default. */
  runNumber?: number;
}

interface StoredRun extends Required<Omit<RunRecord, 'workflowName'>> {
  id: number;
  repository: string;
  workflowId: number;
}

interface Workflow {
  id: number;
  repository: string;
  file: string;
  name: string;
}

/** The values the API's `status` filter takes: a status or a conclusion. */
const STATUS_FILTERS = [
  'completed',
  'action_required',
  'cancelled',
  'failure',
  'neutral',
  'skipped',
  'stale',
  'success',
  'timed_out',
  'in_progress',
  'queued',
  'requested',
  'waiting',
  'pending',
];

export type Answer = { status: number; body: unknown; headers?: Record<string, string> };

const notFound = (documentation: string): Answer => ({
  status: 404,
  body: {
    message: 'Not Found',
    documentation_url: `https://docs.github.com/rest/actions/${documentation}`,
    status: '404',
  },
});

export class WorkflowRuns {
  readonly #runs: StoredRun[] = [];
  readonly #workflows: Workflow[] = [];
  readonly #ignoreFilters: boolean;
  #lastWorkflowId = 5000;

  /** `ignoreFilters`: list every run of a workflow whatever the query, as a server that does not know the filters. */
  constructor(options: { ignoreFilters?: boolean } = {}) {
    this.#ignoreFilters = options.ignoreFilters ?? false;
  }

  /** Records run `id` of a repository (matched without regard to case, as GitHub does); its workflow is made on first use. */
  add(id: number, repositoryName: string, record: RunRecord): void {
    const repository = repositoryName.toLowerCase();
    const workflow = this.#workflow(repository, record.workflow, record.workflowName);
    const status = record.status ?? 'completed';
    const runNumber =
      record.runNumber ??
      1 + Math.max(0, ...this.#runs.filter((run) => run.workflowId === workflow.id).map((run) => run.runNumber));
    this.#runs.push({
      id,
      repository,
      workflowId: workflow.id,
      workflow: workflow.file,
      branch: record.branch,
      headSha: record.headSha,
      event: record.event ?? 'push',
      status,
      conclusion: record.conclusion !== undefined ? record.conclusion : status === 'completed' ? 'success' : null,
      createdAt: record.createdAt ?? new Date().toISOString(),
      runNumber,
    });
  }

  #workflow(repository: string, file: string, name: string | undefined): Workflow {
    const known = this.#workflows.find((w) => w.repository === repository && w.file === file);
    if (known) return known;
    const workflow = { id: ++this.#lastWorkflowId, repository, file, name: name ?? file.replace(/\.ya?ml$/, '') };
    this.#workflows.push(workflow);
    return workflow;
  }

  /**
   * The answer to `GET /repos/{repository}/actions/{rest}` when it is a workflows route, else undefined. `base` is the
   * service's URL, for the links of the answer.
   */
  answer(repository: string, rest: string, query: URLSearchParams, base: string): Answer | undefined {
    const owned = repository.toLowerCase();
    const route = /^workflows(?:\/([^/]+)(\/runs)?)?$/.exec(rest);
    if (!route) return undefined;
    const workflows = this.#workflows.filter((w) => w.repository === owned);
    if (route[1] === undefined) {
      return {
        status: 200,
        body: {
          total_count: workflows.length,
          workflows: workflows.map((w) => this.#workflowJson(w, repository, base)),
        },
      };
    }
    const id = decodeURIComponent(route[1]);
    const workflow = workflows.find((w) => String(w.id) === id || w.file === id);
    if (!route[2]) {
      return workflow
        ? { status: 200, body: this.#workflowJson(workflow, repository, base) }
        : notFound('workflows#get-a-workflow');
    }
    if (!workflow) return notFound('workflow-runs#list-workflow-runs-for-a-workflow');
    const status = query.get('status');
    if (status !== null && !STATUS_FILTERS.includes(status)) {
      // GitHub's answer to a value outside its enum is not modelled: the action never sends one.
      return { status: 422, body: { message: `status ${status} is not one of the API's`, status: '422' } };
    }
    const filtered = (name: string, keeps: (run: StoredRun, value: string) => boolean) => (run: StoredRun) => {
      const value = query.get(name);
      return this.#ignoreFilters || value === null || keeps(run, value);
    };
    const matching = this.#runs
      .filter((run) => run.workflowId === workflow.id)
      .filter(filtered('branch', (run, branch) => run.branch === branch))
      .filter(filtered('head_sha', (run, sha) => run.headSha === sha))
      .filter(filtered('event', (run, event) => run.event === event))
      .filter(filtered('status', (run, wanted) => run.status === wanted || run.conclusion === wanted))
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id - a.id);
    const perPage = Math.min(Math.max(Number(query.get('per_page') ?? 30) || 30, 1), 100);
    const page = Math.max(Number(query.get('page') ?? 1) || 1, 1);
    const runs = matching
      .slice((page - 1) * perPage, page * perPage)
      .map((run) => this.#runJson(run, workflow, repository, base));
    const last = Math.max(1, Math.ceil(matching.length / perPage));
    const link = (n: number, rel: string) => {
      const params = new URLSearchParams(query);
      params.set('page', String(n));
      return `<${base}/repos/${repository}/actions/workflows/${route[1]}/runs?${params.toString()}>; rel="${rel}"`;
    };
    const links = [
      ...(page > 1 ? [link(page - 1, 'prev'), link(1, 'first')] : []),
      ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []),
    ];
    return {
      status: 200,
      body: { total_count: matching.length, workflow_runs: runs },
      ...(links.length > 0 && { headers: { Link: links.join(', ') } }),
    };
  }

  #workflowJson(workflow: Workflow, repository: string, base: string) {
    return {
      id: workflow.id,
      node_id: `W_${workflow.id}`,
      name: workflow.name,
      path: `.github/workflows/${workflow.file}`,
      state: 'active',
      created_at: '2024-01-01T00:00:00Z',
      updated_at: '2024-01-01T00:00:00Z',
      url: `${base}/repos/${repository}/actions/workflows/${workflow.id}`,
      html_url: `https://github.com/${repository}/blob/main/.github/workflows/${workflow.file}`,
      badge_url: `https://github.com/${repository}/workflows/${encodeURIComponent(workflow.name)}/badge.svg`,
    };
  }

  #runJson(run: StoredRun, workflow: Workflow, repository: string, base: string) {
    const api = `${base}/repos/${repository}/actions/runs/${run.id}`;
    const [owner = '', name = ''] = repository.split('/');
    const minimalRepository = { id: 1, name, full_name: repository, owner: { login: owner }, private: false };
    return {
      id: run.id,
      name: workflow.name,
      node_id: `WFR_${run.id}`,
      check_suite_id: run.id * 10,
      head_branch: run.branch,
      head_sha: run.headSha,
      path: `.github/workflows/${workflow.file}`,
      display_title: `${workflow.name} #${run.runNumber}`,
      run_number: run.runNumber,
      run_attempt: 1,
      event: run.event,
      status: run.status,
      conclusion: run.conclusion,
      workflow_id: workflow.id,
      url: api,
      html_url: `https://github.com/${repository}/actions/runs/${run.id}`,
      pull_requests: [],
      created_at: run.createdAt,
      updated_at: run.createdAt,
      run_started_at: run.createdAt,
      jobs_url: `${api}/jobs`,
      logs_url: `${api}/logs`,
      check_suite_url: `${base}/repos/${repository}/check-suites/${run.id * 10}`,
      artifacts_url: `${api}/artifacts`,
      cancel_url: `${api}/cancel`,
      rerun_url: `${api}/rerun`,
      workflow_url: `${base}/repos/${repository}/actions/workflows/${workflow.id}`,
      head_commit: { id: run.headSha, tree_id: run.headSha, message: 'commit', timestamp: run.createdAt },
      repository: minimalRepository,
      head_repository: minimalRepository,
    };
  }
}
