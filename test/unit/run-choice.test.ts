import { describe, expect, it } from 'vitest';
import {
  NoMatchingRun,
  adviceFor,
  chooseRun,
  describeSearch,
  describeWorkflowRun,
  nearestRuns,
  queryOf,
  widerQueries,
} from '../../src/load/run-choice.ts';
import { UserError } from '../../src/errors.ts';
import type { RunSearch, WorkflowRun } from '../../src/run-search.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

let nextId = 100;
function run(fields: Partial<WorkflowRun> & { createdAt: string }): WorkflowRun {
  const id = fields.id ?? ++nextId;
  return {
    id,
    runNumber: id + 10,
    event: 'push',
    branch: 'main',
    headSha: A,
    status: 'completed',
    conclusion: 'success',
    htmlUrl: `https://github.com/o/r/actions/runs/${id}`,
    ...fields,
  };
}

const search = (fields: Partial<RunSearch> = {}): RunSearch => ({
  workflow: 'ci.yml',
  branch: undefined,
  commit: undefined,
  conclusion: 'success',
  ...fields,
});

// Several runs of one workflow, as a repository collects them.
const oldOfA = run({ id: 1, createdAt: '2025-01-01T10:00:00Z' });
const newerOfA = run({ id: 2, createdAt: '2025-01-02T10:00:00Z', event: 'pull_request', branch: 'feature' });
const failedNewestOfA = run({ id: 3, createdAt: '2025-01-03T10:00:00Z', conclusion: 'failure' });
const otherBranchOfB = run({ id: 4, createdAt: '2025-01-04T10:00:00Z', branch: 'other', headSha: B });
const runningOfA = run({ id: 5, createdAt: '2025-01-05T10:00:00Z', status: 'in_progress', conclusion: null });
const runs = [oldOfA, newerOfA, failedNewestOfA, otherBranchOfB, runningOfA];

describe('chooseRun', () => {
  it.each([
    ['commit A, success: the newest successful run of A, not the failed or running ones', search({ commit: A }), 2],
    ['commit A on main: the older run, the newer one being on feature', search({ commit: A, branch: 'main' }), 1],
    ['commit A, failure', search({ commit: A, conclusion: 'failure' }), 3],
    [
      'commit A, any conclusion: the failed newest, not the one still running',
      search({ commit: A, conclusion: 'any' }),
      3,
    ],
    ['branch other', search({ branch: 'other' }), 4],
    ['no filter but success: the newest success of any commit', search(), 4],
  ])('%s', (_, wanted, id) => {
    expect(chooseRun(runs, wanted)?.id).toBe(id);
  });

  it.each([
    ['a commit without runs', search({ commit: 'c'.repeat(40) })],
    ['a branch without runs', search({ branch: 'nope' })],
    ['a conclusion no run has', search({ commit: A, conclusion: 'cancelled' })],
  ])('finds none for %s', (_, wanted) => {
    expect(chooseRun(runs, wanted)).toBeUndefined();
  });

  it('takes the newest by creation time whatever the order listed, and the higher id of two at one time', () => {
    const same = '2025-02-01T00:00:00Z';
    expect(chooseRun([oldOfA, newerOfA].reverse(), search())?.id).toBe(2);
    expect(chooseRun([run({ id: 40, createdAt: same }), run({ id: 41, createdAt: same })], search())?.id).toBe(41);
  });

  it("checks the head SHA itself, should a server ignore the API's filter", () => {
    expect(chooseRun([otherBranchOfB], search({ commit: A }))).toBeUndefined();
    expect(
      chooseRun([run({ headSha: A.toUpperCase(), createdAt: '2025-01-01T00:00:00Z' })], search({ commit: A })),
    ).toBeDefined();
  });
});

describe('queryOf and widerQueries', () => {
  it.each([
    [search(), { workflow: 'ci.yml', status: 'success' }, [{ workflow: 'ci.yml' }]],
    [search({ conclusion: 'any' }), { workflow: 'ci.yml', status: 'completed' }, [{ workflow: 'ci.yml' }]],
    [
      search({ commit: A, branch: 'main' }),
      { workflow: 'ci.yml', branch: 'main', headSha: A, status: 'success' },
      [{ workflow: 'ci.yml', branch: 'main', headSha: A }, { workflow: 'ci.yml' }],
    ],
  ])('%j asks %j first, then %j', (wanted, first, wider) => {
    expect(queryOf(wanted)).toEqual(first);
    expect(widerQueries(wanted)).toEqual(wider);
  });
});

describe('nearestRuns', () => {
  it('puts the runs of the commit and branch first, newest first, each once, at most 5', () => {
    const nearest = nearestRuns([...runs, ...runs], search({ commit: A, branch: 'main' }));
    expect(nearest.map((r) => r.id)).toEqual([5, 3, 1, 2, 4]);
    expect(nearestRuns(runs, search({ commit: A }), 2).map((r) => r.id)).toEqual([5, 3]);
  });

  it('without a commit or branch, the newest runs', () => {
    expect(nearestRuns(runs, search()).map((r) => r.id)).toEqual([5, 4, 3, 2, 1]);
  });
});

describe('adviceFor', () => {
  it.each([
    [
      'a matching run still in progress',
      [runningOfA, failedNewestOfA],
      search({ commit: A }),
      /run #15 is still in_progress: load once it has completed/,
    ],
    [
      'matching runs that failed',
      [failedNewestOfA],
      search({ commit: A }),
      /none concluded success: re-run the workflow, or set `conclusion`/,
    ],
    [
      'runs of other commits only',
      [otherBranchOfB],
      search({ commit: A }),
      /check `branch` and `commit`: .* not the merge commit/,
    ],
    ['no runs at all', [], search({ commit: A }), /the workflow has no runs: check `workflow` and `repository`/],
  ])('%s', (_, nearest, wanted, advice) => {
    expect(adviceFor(nearest, wanted)).toMatch(advice);
  });
});

describe('the lines', () => {
  it('describe a run with what a server sent escaped', () => {
    const hostile = run({
      id: 9,
      createdAt: 'yesterday\n::warning::x',
      branch: 'x\n::error::owned',
      event: 'push##[error]',
      headSha: 'not a sha',
      status: 'completed',
      conclusion: '::add-mask::y',
    });
    const line = describeWorkflowRun(hostile);
    expect(line).not.toMatch(/\n|##\[|(^|\s)::/);
    expect(line).toContain('`x\\n::error::owned`');
    expect(describeWorkflowRun(oldOfA)).toBe(
      `#11 (run 1): success, push on \`main\`, commit ${A}, created 2025-01-01T10:00:00.000Z`,
    );
  });

  it('describe the search', () => {
    expect(describeSearch(search({ commit: A, branch: 'feature/x' }))).toBe(
      `workflow ci.yml: commit ${A}, branch \`feature/x\`, conclusion success`,
    );
    expect(describeSearch(search({ conclusion: 'any' }))).toBe(
      'workflow ci.yml: any commit, any branch, any conclusion (completed)',
    );
  });

  it('say, when nothing matches, in one line, what was looked for, the nearest runs and what to do; the links apart', () => {
    const error = new NoMatchingRun({
      search: search({ commit: A }),
      repository: 'o/r',
      nearest: [runningOfA, failedNewestOfA],
    });
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).not.toContain('\n');
    expect(error.message).toMatch(
      new RegExp(
        `^No run of workflow ci\\.yml: commit ${A}, any branch, conclusion success in o/r; the nearest runs: ` +
          '#15 \\(run 5\\): in_progress, push on `main`.*; #13 \\(run 3\\): failure, .*\\. Run #15 is still in_progress',
      ),
    );
    expect(error.details).toEqual([
      'Nearest run #15: `https://github.com/o/r/actions/runs/5`',
      'Nearest run #13: `https://github.com/o/r/actions/runs/3`',
    ]);
    expect(
      new NoMatchingRun({ search: search({ commit: A }), repository: 'o/r', nearest: [otherBranchOfB], read: 300 })
        .message,
    ).toMatch(
      / in o\/r among the 300 newest the API listed, as many as this action reads; the nearest runs: #14 .*\. The API listed runs that do not match the filters it was sent: set `run-id` to the ID of the run\.$/,
    );
    expect(new NoMatchingRun({ search: search(), repository: 'o/r', nearest: [] }).message).toBe(
      'No run of workflow ci.yml: any commit, any branch, conclusion success in o/r. The workflow has no runs: check ' +
        '`workflow` and `repository`.',
    );
  });
});
