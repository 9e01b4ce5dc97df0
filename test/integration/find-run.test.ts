/**
 * Load mode finds the run to load from by `workflow`, `branch`, `commit` and `conclusion`: the bundled action as GitHub
 * runs it, the real engine, and @actions/github's Octokit listing the runs of the local service over HTTP. An image is
 * saved in one run (save mode), and loaded in another run by finding the first among runs that must not be taken.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as github from '@actions/github';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { REPOSITORY, startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { imageId, makeImage, removeImages, uniqueRepository } from '../support/engine.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

const A = 'a1'.repeat(20);
const B = 'b2'.repeat(20);
const C = 'c3'.repeat(20);

/** The runs of the repository: the one to find, and those around it that must not be taken. */
const RUNS = {
  olderOfA: 201,
  wanted: 202,
  failedNewerOfA: 203,
  otherBranch: 204,
  runningOfA: 205,
  otherWorkflow: 206,
};

let service: ArtifactService;
/** A service whose runs API ignores the filters it is sent: the action must check each run itself, within its pages. */
let lax: ArtifactService;
const LAX = { found: 401, beyondThePages: 402 };
const D = 'd4'.repeat(20);
let work: string;
let id: string;
const tag = `${uniqueRepository('find-run')}:pr-7`;
let loadRun = 300;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-find-run-'));
  id = await makeImage([tag], { randomBytes: 32 * 1024 });
  const ci = { workflow: 'ci.yml', workflowName: 'Pull request', event: 'pull_request', branch: 'feature' };
  service.addRun(RUNS.olderOfA, { ...ci, headSha: A, createdAt: '2025-03-01T10:00:00Z', runNumber: 41 });
  service.addRun(RUNS.wanted, { ...ci, headSha: A, createdAt: '2025-03-02T10:00:00Z', runNumber: 42 });
  service.addRun(RUNS.failedNewerOfA, {
    ...ci,
    headSha: A,
    createdAt: '2025-03-03T10:00:00Z',
    runNumber: 43,
    conclusion: 'failure',
  });
  service.addRun(RUNS.otherBranch, {
    ...ci,
    branch: 'main',
    event: 'push',
    headSha: B,
    createdAt: '2025-03-04T10:00:00Z',
    runNumber: 44,
  });
  service.addRun(RUNS.runningOfA, {
    ...ci,
    headSha: A,
    createdAt: '2025-03-05T10:00:00Z',
    runNumber: 45,
    status: 'in_progress',
  });
  service.addRun(RUNS.otherWorkflow, { workflow: 'release.yml', branch: 'feature', headSha: A, runNumber: 1 });

  // The image, saved by a job of the run to find: the only run with an artifact, so taking another fails the load.
  const saved = await runAction({ tags: tag }, service.env(RUNS.wanted));
  expect(saved.code, saved.stdout + saved.stderr).toBe(0);
  expect(service.artifacts(RUNS.wanted).map((artifact) => artifact.name)).toEqual(['docker-image']);

  // 310 runs of another commit, one a minute; the run to find has 250 newer than it, the other one 310.
  lax = await startArtifactService({ ignoreRunFilters: true });
  const minute = (n: number) => new Date(Date.UTC(2025, 1, 1, 0, n)).toISOString();
  for (let n = 0; n < 310; n++)
    lax.addRun(1000 + n, { workflow: 'ci.yml', branch: 'main', headSha: B, createdAt: minute(n) });
  lax.addRun(LAX.found, { workflow: 'ci.yml', branch: 'main', headSha: A, createdAt: '2025-02-01T00:59:30Z' });
  lax.addRun(LAX.beyondThePages, { workflow: 'ci.yml', branch: 'main', headSha: D, createdAt: '2025-01-01T00:00:00Z' });
  const savedThere = await runAction({ tags: tag }, lax.env(LAX.found));
  expect(savedThere.code, savedThere.stdout + savedThere.stderr).toBe(0);
});

afterAll(async () => {
  await removeImages(tag);
  await service?.close();
  await lax?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(async () => {
  service.clearFaults();
  await removeImages(tag);
});

/** Load mode in a job of a new run, with the job's token, as a push workflow unless `env` says otherwise. */
async function load(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
  return runAction(
    { mode: 'load', 'github-token': 'ghs_the-job-token', ...inputs },
    { ...service.env(++loadRun), GITHUB_EVENT_NAME: 'push', GITHUB_EVENT_PATH: '', ...env },
  );
}

function expectLoadedFrom(result: ActionRun, run: number, runNumber: number): Promise<void> {
  expect(result.code, result.stdout + result.stderr).toBe(0);
  expect(result.stdout).toMatch(
    new RegExp(
      `^Found #${runNumber} \\(run ${run}\\): success, .* created .*: the newest that matches; ` +
        `\`https://github.com/${REPOSITORY}/actions/runs/${run}\`$`,
      'm',
    ),
  );
  expect(result.stdout).toContain(
    `Artifacts of run id ${run} (#${runNumber}), found by \`workflow\`, in ${REPOSITORY}`,
  );
  expect(result.outputs['run-id']).toBe(String(run));
  return imageId(tag).then((loaded) => expect(loaded).toBe(id));
}

/** The requests the service received since `before` (a count of `requests()`). */
function requestsSince(before: number): string[] {
  return service.requests().slice(before);
}

describe('load by `workflow`', () => {
  it('with `commit`, takes the newest successful run of that commit: not an older one, a failed or running newer one, another branch or workflow', async () => {
    const before = service.requests().length;
    const result = await load({ workflow: 'ci.yml', commit: A.toUpperCase() });
    await expectLoadedFrom(result, RUNS.wanted, 42);
    expect(result.stdout).toContain(
      `Finding the newest run of workflow ci.yml: commit ${A}, any branch, conclusion success, in ${REPOSITORY}\n`,
    );
    expect(result.stdout).toContain(`Found #42 (run 202): success, pull_request on \`feature\`, commit ${A}`);
    const requests = requestsSince(before);
    expect(requests).toContain(`GET /repos/${REPOSITORY}/actions/workflows/ci.yml/runs`);
    expect(requests).toContain(`GET /repos/${REPOSITORY}/actions/runs/${RUNS.wanted}/artifacts`);
    // The rest is load mode as with `run-id`: only the run found is read.
    expect(requests.filter((line) => /\/actions\/runs\/\d+\/artifacts$/.test(line))).toEqual([
      `GET /repos/${REPOSITORY}/actions/runs/${RUNS.wanted}/artifacts`,
    ]);
    expect(result.outputs.image).toBe(tag);
  });

  it('with `branch`, takes the newest successful run on it, not a newer one on another branch', async () => {
    const result = await load({ workflow: 'ci.yml', branch: 'refs/heads/feature' });
    await expectLoadedFrom(result, RUNS.wanted, 42);
    expect(result.stdout).toContain('workflow ci.yml: any commit, branch `feature`, conclusion success');
  });

  it("in a pull_request workflow, takes the pull request's head as `commit`, from the event payload", async () => {
    const event = path.join(work, 'pull_request.json');
    await writeFile(
      event,
      JSON.stringify({
        action: 'synchronize',
        number: 7,
        pull_request: { number: 7, head: { sha: A, ref: 'feature' }, base: { sha: B, ref: 'main' } },
        repository: { full_name: REPOSITORY },
      }),
    );
    // github.sha is the merge commit, which no run built: the head is what the workflow ran on.
    const result = await load(
      { workflow: 'ci.yml' },
      { GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: event, GITHUB_SHA: C },
    );
    await expectLoadedFrom(result, RUNS.wanted, 42);
    expect(result.stdout).toContain(
      `Finding the newest run of workflow ci.yml: commit ${A}, any branch, conclusion success, in ${REPOSITORY}; ` +
        "`commit` is empty: the pull request's head (github.event.pull_request.head.sha)\n",
    );
  });

  it('by the workflow ID, and from a workflow_run event, where it wins over the triggering run', async () => {
    const { data } = await github
      .getOctokit('ghs_local', { baseUrl: service.url })
      .rest.actions.getWorkflow({ owner: 'octo-org', repo: 'octo-repo', workflow_id: 'ci.yml' });
    const event = path.join(work, 'workflow_run.json');
    await writeFile(event, JSON.stringify({ workflow_run: { id: RUNS.failedNewerOfA } }));
    const result = await load(
      { workflow: String(data.id), commit: A },
      { GITHUB_EVENT_NAME: 'workflow_run', GITHUB_EVENT_PATH: event },
    );
    await expectLoadedFrom(result, RUNS.wanted, 42);
  });

  it('`run-id` wins, and the log says `workflow` was not searched', async () => {
    const before = service.requests().length;
    const result = await load({ 'run-id': String(RUNS.wanted), workflow: 'nope.yml', commit: C });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('`run-id` 202 is set: it wins over `workflow` nope.yml, which is not searched.');
    expect(result.stdout).toContain('Artifacts of run id 202 from the `run-id` input');
    expect(requestsSince(before).filter((line) => line.includes('/workflows'))).toEqual([]);
    expect(await imageId(tag)).toBe(id);
  });
});

describe('load by `workflow`: what it cannot find, in one line', () => {
  it('no run matches: the nearest runs, what to do, and their links before the line', async () => {
    const before = service.requests().length;
    const result = await load({ workflow: 'ci.yml', commit: A, conclusion: 'cancelled' });
    expectOneErrorLine(
      result,
      new RegExp(
        `^No run of workflow ci\\.yml: commit ${A}, any branch, conclusion cancelled in ${REPOSITORY}; the nearest runs: ` +
          `#45 \\(run 205\\): in_progress, pull_request on \`feature\`, commit ${A}, created 2025-03-05T10:00:00\\.000Z; ` +
          '#43 \\(run 203\\): failure, .*; #42 .*; #41 .*; #44 \\(run 204\\): success, push on `main`, commit ' +
          `${B}.*\\. Run #45 is still in_progress: load once it has completed`,
      ),
    );
    expect(result.stdout).toContain(`\nNearest run #45: \`https://github.com/${REPOSITORY}/actions/runs/205\`\n`);
    // The search, then the two wider listings for the nearest runs, and nothing read from any run.
    expect(requestsSince(before)).toEqual(Array(3).fill(`GET /repos/${REPOSITORY}/actions/workflows/ci.yml/runs`));
    expect(await imageId(tag)).toBeUndefined();
  });

  it('no run of that commit at all: the newest runs of the workflow, and to check `commit`', async () => {
    const result = await load({ workflow: 'ci.yml', commit: C });
    expectOneErrorLine(
      result,
      /^No run of workflow ci\.yml: commit c3c3.*; the nearest runs: #45 .*\. Check `branch` and `commit`/,
    );
  });

  it.each([
    [
      'ci.yaml',
      /^octo-org\/octo-repo has no workflow `ci\.yaml`: its workflows are ci\.yml, release\.yml \(did you mean ci\.yml\?\); set `workflow`/,
    ],
    ['deploy.yml', /^octo-org\/octo-repo has no workflow `deploy\.yml`: its workflows are ci\.yml, release\.yml; set/],
    ['987654', /^octo-org\/octo-repo has no workflow `987654`/],
  ])('a workflow that does not exist, %s', async (workflow, message) => {
    expectOneErrorLine(await load({ workflow }), message);
  });

  it('a repository the token cannot read', async () => {
    const result = await load({ workflow: 'ci.yml', repository: 'someone/private' });
    expectOneErrorLine(
      result,
      /^GitHub's API found neither the workflow `ci\.yml` nor the repository someone\/private, or `github-token` may not read it/,
    );
  });

  it.each([
    [
      { workflow: 'ci.yml', commit: 'a1a1a1a' },
      /^Input `commit` must be a full commit SHA, 40 hex digits \(an abbreviated SHA of 7 digits\)/,
    ],
    [{ workflow: 'ci.yml', conclusion: 'passed' }, /^Input `conclusion` must be one of `success`/],
    [{ workflow: 'ci.yml', branch: 'feature..x' }, /^Input `branch` has "\.\."/],
    [{ workflow: 'Pull request' }, /^Input `workflow` must be a workflow's file name/],
  ])('%j, before any request', async (inputs, message) => {
    const before = service.requests().length;
    expectOneErrorLine(await load(inputs), message);
    expect(requestsSince(before)).toEqual([]);
  });

  it('without a token: one line, before any request', async () => {
    const before = service.requests().length;
    expectOneErrorLine(
      await load({ workflow: 'ci.yml', 'github-token': '' }),
      /^Reading the runs of workflow ci\.yml needs a token/,
    );
    expect(requestsSince(before)).toEqual([]);
  });
});

describe('load by `workflow`, when the API fails', () => {
  it('retries a 502 and a listing that never answers, each within the stall timeout', async () => {
    service.inject({ target: 'rest', kind: 'status', status: 502 });
    service.inject({ target: 'rest', kind: 'stall-headers' });
    const started = Date.now();
    const result = await load({ workflow: 'ci.yml', commit: A, 'stall-timeout': '5' });
    await expectLoadedFrom(result, RUNS.wanted, 42);
    // One back-off of 1 s, one stall of 5 s, one back-off of 2 s.
    expect(Date.now() - started).toBeGreaterThan(7_000);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('fails in one line once the API has failed 3 times', async () => {
    service.inject({ target: 'rest', kind: 'status', status: 503, times: 3 });
    const result = await load({ workflow: 'ci.yml', commit: A });
    expectOneErrorLine(
      result,
      /^Listing the runs of workflow `ci\.yml` in octo-org\/octo-repo failed: `injected`\. GitHub's API failed 3 times: re-run the job\.$/,
    );
  });

  it('a token the API refuses: one line that says which permission', async () => {
    service.inject({ target: 'rest', kind: 'status', status: 403 });
    const before = service.requests().length;
    const result = await load({ workflow: 'ci.yml', commit: A });
    expectOneErrorLine(
      result,
      /failed: `injected`\. Give `github-token` a token with `actions: read` on that repository\.$/,
    );
    expect(requestsSince(before)).toHaveLength(1);
  });
});

describe('load by `workflow` from a server that ignores the filters', () => {
  const runsListed = (before: number) =>
    lax
      .requests()
      .slice(before)
      .filter((line) => line === `GET /repos/${REPOSITORY}/actions/workflows/ci.yml/runs`);

  it("checks each run itself, and finds the run on the API's third page", async () => {
    const before = lax.requests().length;
    const result = await runAction(
      { mode: 'load', workflow: 'ci.yml', commit: A, 'github-token': 'ghs_local' },
      { ...lax.env(++loadRun), GITHUB_EVENT_NAME: 'push', GITHUB_EVENT_PATH: '' },
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`Artifacts of run id ${LAX.found} (#311), found by \`workflow\``);
    expect(runsListed(before)).toHaveLength(3);
    expect(await imageId(tag)).toBe(id);
  });

  it('reads at most 3 pages of 100, then says so in one line', async () => {
    const before = lax.requests().length;
    const result = await runAction(
      { mode: 'load', workflow: 'ci.yml', commit: D, 'github-token': 'ghs_local' },
      { ...lax.env(++loadRun), GITHUB_EVENT_NAME: 'push', GITHUB_EVENT_PATH: '' },
    );
    expectOneErrorLine(
      result,
      new RegExp(
        `^No run of workflow ci\\.yml: commit ${D}, any branch, conclusion success in ${REPOSITORY} among the 300 ` +
          'newest the API listed, as many as this action reads; the nearest runs: .*\\. The API listed runs that do ' +
          'not match the filters it was sent: set `run-id` to the ID of the run\\.$',
      ),
    );
    // The 3 pages, then the 2 wider listings for the nearest runs.
    expect(runsListed(before)).toHaveLength(5);
  });
});

describe('the local service lists workflow runs as GitHub does', () => {
  const octokit = () => github.getOctokit('ghs_local', { baseUrl: service.url });
  const owner = 'Octo-Org';
  const repo = 'octo-repo';

  it('filters by branch, head_sha, event and status (a status or a conclusion), newest first', async () => {
    const list = async (query: Record<string, string>) =>
      (
        await octokit().rest.actions.listWorkflowRuns({ owner, repo, workflow_id: 'ci.yml', ...query })
      ).data.workflow_runs.map((run) => run.id);
    expect(await list({})).toEqual([205, 204, 203, 202, 201]);
    expect(await list({ head_sha: A })).toEqual([205, 203, 202, 201]);
    expect(await list({ head_sha: A, status: 'success' })).toEqual([202, 201]);
    expect(await list({ status: 'completed' })).toEqual([204, 203, 202, 201]);
    expect(await list({ status: 'in_progress' })).toEqual([205]);
    expect(await list({ branch: 'main' })).toEqual([204]);
    expect(await list({ event: 'push' })).toEqual([204]);
  });

  it('pages with per_page, page and a Link header that Octokit follows', async () => {
    const first = await octokit().rest.actions.listWorkflowRuns({ owner, repo, workflow_id: 'ci.yml', per_page: 2 });
    expect(first.data.total_count).toBe(5);
    expect(first.data.workflow_runs.map((run) => run.id)).toEqual([205, 204]);
    expect(first.headers.link).toMatch(/[?&]page=2[^>]*>; rel="next", <[^>]*[?&]page=3[^>]*>; rel="last"/);
    const all = await octokit().paginate(octokit().rest.actions.listWorkflowRuns, {
      owner,
      repo,
      workflow_id: 'ci.yml',
      per_page: 2,
    });
    expect(all.map((run) => run.id)).toEqual([205, 204, 203, 202, 201]);
  });

  it('describes a run with the fields of the API, and answers 404 for a workflow it does not have', async () => {
    const { data } = await octokit().rest.actions.listWorkflowRuns({ owner, repo, workflow_id: 'ci.yml', per_page: 1 });
    expect(data.workflow_runs[0]).toMatchObject({
      id: 205,
      name: 'Pull request',
      head_branch: 'feature',
      head_sha: A,
      path: '.github/workflows/ci.yml',
      run_number: 45,
      event: 'pull_request',
      status: 'in_progress',
      conclusion: null,
      html_url: `https://github.com/${owner}/${repo}/actions/runs/205`,
      created_at: '2025-03-05T10:00:00Z',
    });
    const workflows = await octokit().rest.actions.listRepoWorkflows({ owner, repo });
    expect(workflows.data.workflows.map((workflow) => workflow.path)).toEqual([
      '.github/workflows/ci.yml',
      '.github/workflows/release.yml',
    ]);
    await expect(
      octokit().rest.actions.listWorkflowRuns({ owner, repo, workflow_id: 'nope.yml' }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(
      octokit().rest.actions.listWorkflowRuns({ owner: 'someone', repo: 'else', workflow_id: 'ci.yml' }),
    ).rejects.toMatchObject({ status: 404 });
  });
});
