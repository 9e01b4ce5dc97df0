/**
 * The decisions of delete mode, without a service: which run and with what token (delete/target.ts), which artifacts
 * of the listing go and the bound on them (delete/selection.ts), and what is gone and the one line of a step that did
 * not delete everything (delete/outcome.ts); and the HTTP status read from the libraries' errors (artifacts/errors.ts).
 */
import { describe, expect, it } from 'vitest';
import { CallFailed, type Deletion, type RunArtifact } from '../../src/artifacts/delete.ts';
import { mayChange, statusOf } from '../../src/artifacts/errors.ts';
import { UserError } from '../../src/errors.ts';
import { failureLine, gone, stillListed, type Tried } from '../../src/delete/outcome.ts';
import { MAX_DELETIONS, select, type Selection } from '../../src/delete/selection.ts';
import { deleteTarget } from '../../src/delete/target.ts';

const artifact = (id: number, name: string): RunArtifact => ({ id, name });
const listing = [
  artifact(1, 'docker-image'),
  artifact(2, 'docker-image-api'),
  artifact(3, 'docker-image-web'),
  artifact(4, 'coverage'),
  // A name the run holds twice (an earlier attempt's): both go.
  artifact(5, 'docker-image-api'),
];
const thisRun = { run: 'this run', viaLibrary: true };

describe('select: the artifacts a step deletes', () => {
  const doomed = (selection: Selection) =>
    selection.kind === 'delete' ? selection.doomed.map((a) => `${a.name}#${a.id}`) : selection.kind;

  it.each([
    ['name: every artifact of exactly that name', { name: 'docker-image', pattern: undefined }, ['docker-image#1']],
    [
      'name held twice: both',
      { name: 'docker-image-api', pattern: undefined },
      ['docker-image-api#2', 'docker-image-api#5'],
    ],
    [
      'pattern: every match, by name then id, and no other',
      { name: 'docker-image', pattern: 'docker-image-*' },
      ['docker-image-api#2', 'docker-image-api#5', 'docker-image-web#3'],
    ],
    ['pattern `?`: one character', { name: 'x', pattern: 'docker-image-we?' }, ['docker-image-web#3']],
    [
      'pattern `*`: everything',
      { name: 'x', pattern: '*' },
      ['coverage#4', 'docker-image#1', 'docker-image-api#2', 'docker-image-api#5', 'docker-image-web#3'],
    ],
    ['a name is not a glob', { name: 'docker-image*', pattern: undefined }, 'none'],
    ['a pattern is anchored', { name: 'x', pattern: 'image' }, 'none'],
    ['no such name', { name: 'docker-image-db', pattern: undefined }, 'none'],
  ])('%s', (_case, wanted, expected) => {
    expect(doomed(select(listing, wanted, thisRun))).toEqual(expected);
  });

  it.each([
    [
      { name: 'docker-image-db', pattern: undefined },
      listing,
      'No artifact named `docker-image-db` in this run: nothing to delete (never uploaded, expired, or deleted ' +
        'already); it has `coverage`, `docker-image`, `docker-image-api`, `docker-image-web`.',
    ],
    [
      { name: 'x', pattern: 'img-*' },
      [],
      'No artifact matching `pattern` img-* in this run: nothing to delete (never uploaded, expired, or deleted ' +
        'already); it has no artifacts at all.',
    ],
  ])('nothing to delete is a notice, with what the run has: %j', (wanted, from, notice) => {
    expect(select(from, wanted, thisRun)).toEqual({ kind: 'none', notice });
  });

  it('lists at most 10 of the names the run has, then how many more', () => {
    const many = Array.from({ length: 25 }, (_, i) => artifact(i + 1, `report-${i}`));
    const selection = select(many, { name: 'docker-image', pattern: undefined }, thisRun);
    expect(selection.kind === 'none' && selection.notice).toMatch(/`report-17` … and 15 more\.$/);
  });

  it(`deletes ${MAX_DELETIONS}, and refuses one more, deleting none`, () => {
    const shards = (count: number) => Array.from({ length: count }, (_, i) => artifact(i + 1, `shard-${i}`));
    expect(select(shards(MAX_DELETIONS), { name: 'x', pattern: 'shard-*' }, thisRun).kind).toBe('delete');
    expect(select(shards(MAX_DELETIONS + 1), { name: 'x', pattern: 'shard-*' }, thisRun)).toEqual({
      kind: 'refused',
      reason:
        '101 artifacts matching `pattern` shard-* in this run, more than the 100 one step deletes: nothing was ' +
        'deleted; narrow `pattern`, or split it over several steps.',
    });
  });

  it.each([
    ['##[', 'img##[warning]x'],
    ['a control character', 'img\u001b[2Kx'],
  ])('refuses a name holding %s where the library prints it, deleting none', (_case, name) => {
    const run = [artifact(1, 'img-a'), artifact(2, name)];
    const selection = select(run, { name: 'x', pattern: 'img*' }, thisRun);
    expect(selection.kind).toBe('refused');
    const reason = selection.kind === 'refused' ? selection.reason : '';
    expect(reason).toMatch(/^The artifact `img.*x` of this run, which `pattern` img\* matches, has a name the runner/);
    expect(reason).not.toContain('##[');
    expect(reason).not.toContain('\u001b');
    // Through the REST API the library prints nothing: it is deleted like any other.
    expect(select(run, { name: 'x', pattern: 'img*' }, { run: 'run 4', viaLibrary: false }).kind).toBe('delete');
  });
});

describe('deleteTarget: which run, and with what token', () => {
  const none = { runId: undefined, repository: undefined, githubToken: undefined, workflow: undefined };

  it.each([
    ['no run-id: this run, without a token', none, undefined],
    ['no run-id, the current repository named', { ...none, repository: 'Octo-Org/Octo-Repo' }, undefined],
    [
      'run-id: through the REST API, in the current repository',
      { ...none, runId: 42, githubToken: 't' },
      { workflowRunId: 42, repositoryOwner: 'octo-org', repositoryName: 'octo-repo', token: 't' },
    ],
    [
      'run-id and repository',
      { ...none, runId: 42, repository: 'acme/app', githubToken: 't' },
      { workflowRunId: 42, repositoryOwner: 'acme', repositoryName: 'app', token: 't' },
    ],
    [
      'run-id and workflow: run-id, as in load mode',
      { ...none, runId: 42, githubToken: 't', workflow: 'ci.yml' },
      { workflowRunId: 42, repositoryOwner: 'octo-org', repositoryName: 'octo-repo', token: 't' },
    ],
  ])('%s', (_case, inputs, findBy) => {
    const target = deleteTarget(inputs, 'octo-org/octo-repo');
    expect(target.findBy).toEqual(findBy);
    expect(target.run).toBe(findBy ? `run 42 of ${findBy.repositoryOwner}/${findBy.repositoryName}` : 'this run');
  });

  it.each([
    [
      'another repository without run-id',
      { ...none, repository: 'acme/app' },
      'octo-org/octo-repo',
      /^`repository` \(`acme\/app`\) is given without `run-id`.*give the `run-id` of the run in `acme\/app`, or drop `repository`\.$/,
    ],
    [
      'workflow without run-id: not searched, and not left to mean this run',
      { ...none, workflow: 'ci.yml' },
      'octo-org/octo-repo',
      /^`workflow` \(`ci\.yml`\) finds a run to load from, and delete mode does not search: .*Set `run-id` to the run to delete from/,
    ],
    [
      'run-id with an empty token',
      { ...none, runId: 42 },
      'octo-org/octo-repo',
      /^Deleting the artifacts of run 42 needs a token with `actions: write`, and `github-token` is empty.*`permissions:`/,
    ],
    [
      'run-id with no repository anywhere',
      { ...none, runId: 42, githubToken: 't' },
      undefined,
      /needs the repository it ran in: expected `repository` as owner\/name or GITHUB_REPOSITORY .*found neither/,
    ],
    [
      'run-id with a GITHUB_REPOSITORY that is no repository',
      { ...none, runId: 42, githubToken: 't' },
      '../x',
      /found `\.\.\/x`; set `repository`\.$/,
    ],
  ])('refuses %s', (_case, inputs, current, message) => {
    expect(() => deleteTarget(inputs, current)).toThrow(UserError);
    expect(() => deleteTarget(inputs, current)).toThrow(message);
  });
});

describe('outcome: what is gone, and the line of a step that did not delete everything', () => {
  const a = artifact(1, 'image-a');
  const b = artifact(2, 'image-b');
  const c = artifact(3, 'image-c');
  const other = {
    run: 'run 42 of acme/app',
    findBy: { workflowRunId: 42, repositoryOwner: 'acme', repositoryName: 'app', token: 't' },
  };
  const here = { run: 'this run', findBy: undefined };
  const tried = (found: Partial<Tried>): Tried => ({
    doomed: [a, b, c],
    answers: new Map<number, Deletion>(),
    failure: undefined,
    still: [],
    rounds: 1,
    ...found,
  });
  const answered = (...pairs: Array<[RunArtifact, Deletion]>) => new Map(pairs.map(([x, answer]) => [x.id, answer]));
  const denied = new CallFailed('403 `Resource not accessible by integration`', { denied: true, attempts: 1 });
  const stalled = new CallFailed('no result within 5 s', { denied: false, attempts: 2 });

  it('stillListed matches by id, not by name', () => {
    expect(stillListed([a, b], [artifact(1, 'image-a'), artifact(9, 'image-b')])).toEqual([a]);
  });

  it.each([
    [
      'everything answered and no longer listed: the step succeeds',
      tried({ answers: answered([a, 'deleted'], [b, 'gone'], [c, 'deleted']) }),
      [a, b, c],
      false,
    ],
    [
      'answered but still listed',
      tried({ answers: answered([a, 'deleted'], [b, 'deleted'], [c, 'deleted']), still: [b] }),
      [a, c],
      true,
    ],
    [
      'a failure after the first',
      tried({ answers: answered([a, 'deleted']), failure: { artifact: b, error: stalled }, still: [b, c] }),
      [a],
      true,
    ],
  ])('gone: %s', (_case, outcome, expected, fails) => {
    expect(gone(outcome)).toEqual(expected);
    expect(failureLine(outcome, here) !== undefined).toBe(fails);
  });

  it.each([
    [
      'refused for want of permission, another run: the permission and where to grant it',
      tried({ failure: { artifact: a, error: denied }, still: [a, b, c] }),
      other,
      'Deleting `image-a` (id 1) of run 42 of acme/app was refused (403 `Resource not accessible by integration`): ' +
        '`github-token` needs `actions: write` on acme/app: add `actions: write` to the `permissions:` of this job, or ' +
        'give a token that has it. Nothing was deleted.',
    ],
    [
      'refused part way: what went before, what did not',
      tried({ answers: answered([a, 'deleted']), failure: { artifact: b, error: denied }, still: [b, c] }),
      other,
      'Deleting `image-b` (id 2) of run 42 of acme/app was refused (403 `Resource not accessible by integration`): ' +
        '`github-token` needs `actions: write` on acme/app: add `actions: write` to the `permissions:` of this job, or ' +
        'give a token that has it. Deleted before it: `image-a`; not deleted: `image-b`, `image-c`.',
    ],
    [
      'refused in this run: the runtime token has no permission to grant',
      tried({
        failure: { artifact: a, error: new CallFailed('403 `no`', { denied: true, attempts: 1 }) },
        still: [a, b, c],
      }),
      here,
      'Deleting `image-a` (id 1) of this run failed after 1 attempt: 403 `no`. Nothing was deleted. Run the job again.',
    ],
    [
      'a service that does not answer',
      tried({ answers: answered([a, 'gone']), failure: { artifact: b, error: stalled }, still: [b, c] }),
      here,
      'Deleting `image-b` (id 2) of this run failed after 2 attempts: no result within 5 s. Deleted before it: ' +
        '`image-a`; not deleted: `image-b`, `image-c`. Run the job again.',
    ],
    [
      'a failure in the second round, on what the first left listed: only that is not deleted',
      tried({
        answers: answered([a, 'deleted'], [b, 'deleted'], [c, 'deleted']),
        failure: { artifact: b, error: stalled },
        still: [b],
        rounds: 2,
      }),
      here,
      'Deleting `image-b` (id 2) of this run failed after 2 attempts: no result within 5 s. Deleted before it: ' +
        '`image-a`, `image-c`; not deleted: `image-b`. Run the job again.',
    ],
    [
      'still listed though the service said it deleted it',
      tried({ answers: answered([a, 'deleted'], [b, 'deleted'], [c, 'deleted']), still: [b, c], rounds: 2 }),
      here,
      '`image-b`, `image-c` are still listed in this run after 2 rounds of deletion, though the artifact service ' +
        'answered that it deleted them. Run the job again.',
    ],
    [
      'still listed after a 404: the permission, as GitHub hides what a token may not touch',
      tried({ answers: answered([a, 'deleted'], [b, 'gone'], [c, 'deleted']), still: [b], rounds: 2 }),
      other,
      '`image-b` is still listed in run 42 of acme/app after 2 rounds of deletion, though the API answered 404 Not ' +
        'Found, which it also answers a token that may not delete there: `github-token` needs `actions: write` on ' +
        'acme/app: add `actions: write` to the `permissions:` of this job, or give a token that has it.',
    ],
  ])('failureLine: %s', (_case, outcome, where, line) => {
    expect(failureLine(outcome, where)).toBe(line);
  });
});

describe("statusOf: the HTTP status of the libraries' errors", () => {
  const octokit = (message: string, status: number, answered: boolean) =>
    Object.assign(new Error(message), {
      status,
      request: { method: 'DELETE' },
      response: answered ? { status } : undefined,
    });
  it.each([
    ['an answer through Octokit', octokit('Resource not accessible by integration', 403, true), 403],
    [
      "Octokit's 500 for a request never answered (a reset): no status",
      octokit('other side closed', 500, false),
      undefined,
    ],
    [
      "the artifact library's Twirp error, which has it in its text",
      new Error('Failed to DeleteArtifact: Received non-retryable error: Failed request: (404) Not Found: gone'),
      404,
    ],
    [
      "the library's network error",
      new Error('Failed to DeleteArtifact: Unable to make request: ECONNRESET'),
      undefined,
    ],
    ['a number in other words is no status', new Error('listing of run (403) failed'), undefined],
    ['not an error at all', 'text', undefined],
  ])('%s', (_case, error, status) => {
    expect(statusOf(error)).toBe(status);
  });
});

describe('mayChange: whether asking again may get another answer', () => {
  it.each([
    [undefined, true],
    [500, true],
    [503, true],
    [408, true],
    [429, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [422, false],
    [200, false],
  ])('%s → %s', (status, expected) => {
    expect(mayChange(status)).toBe(expected);
  });
});
