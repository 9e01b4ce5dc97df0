import { describe, expect, it } from 'vitest';
import { loadLocation, runSearchOf, type RunContext } from '../../src/action/context.ts';
import { UserError } from '../../src/errors.ts';

const push: RunContext = {
  eventName: 'push',
  triggeringRunId: undefined,
  pullRequestHead: undefined,
  repository: 'octo-org/octo-repo',
};
const workflowRun: RunContext = {
  eventName: 'workflow_run',
  triggeringRunId: 40,
  pullRequestHead: undefined,
  repository: 'octo-org/octo-repo',
};
const none = { runId: undefined, repository: undefined, githubToken: 'ghs_token' };

describe('loadLocation', () => {
  it('reads this run when nothing names another', () => {
    expect(loadLocation(none, push)).toEqual({
      location: {},
      origin: 'this run (no `run-id`, and the event is push)',
    });
  });

  it('reads the run that triggered a workflow_run workflow, with the default token', () => {
    expect(loadLocation(none, workflowRun)).toEqual({
      location: { runId: 40, repository: 'octo-org/octo-repo', token: 'ghs_token' },
      origin:
        'run id 40: the run that triggered this workflow_run event (github.event.workflow_run.id), in octo-org/octo-repo',
    });
  });

  it('takes `run-id` and `repository` over the event', () => {
    const inputs = { runId: 7, repository: 'Wikid82/Charon', githubToken: 'ghs_token' };
    expect(loadLocation(inputs, workflowRun)).toEqual({
      location: { runId: 7, repository: 'Wikid82/Charon', token: 'ghs_token' },
      origin: 'run id 7 from the `run-id` input, in Wikid82/Charon',
    });
  });

  it.each([undefined, 0, -1, '40', 1.5])('ignores a workflow_run payload whose id is %j', (id) => {
    expect(loadLocation(none, { ...workflowRun, triggeringRunId: id }).location).toEqual({});
  });

  it.each([
    [{ ...none, githubToken: undefined }, workflowRun, /`github-token` is empty/],
    [{ ...none, runId: 5, githubToken: undefined }, push, /run id 5 from the `run-id` input needs a token/],
    [none, { ...workflowRun, repository: undefined }, /needs the repository it ran in/],
  ])('fails in one line without what another run needs: %#', (inputs, run, message) => {
    expect(() => loadLocation(inputs, run)).toThrow(UserError);
    expect(() => loadLocation(inputs, run)).toThrow(message);
  });
});

describe('runSearchOf', () => {
  const head = '0123456789abcdef0123456789abcdef01234567';
  const pullRequest: RunContext = { ...push, eventName: 'pull_request', pullRequestHead: head.toUpperCase() };
  const find = { workflow: 'ci.yml', branch: undefined, commit: undefined, conclusion: 'success' as const };

  it('searches nothing without `workflow`', () => {
    expect(runSearchOf({ ...find, workflow: undefined }, pullRequest)).toBeUndefined();
  });

  it.each(['pull_request', 'pull_request_target'])(
    "takes the pull request's head as `commit` in a %s workflow",
    (event) => {
      expect(runSearchOf(find, { ...pullRequest, eventName: event })).toEqual({
        search: { ...find, commit: head },
        commitFrom: "`commit` is empty: the pull request's head (github.event.pull_request.head.sha)",
      });
    },
  );

  it('takes `commit` over the pull request head, and any commit elsewhere', () => {
    const commit = 'f'.repeat(40);
    expect(runSearchOf({ ...find, commit }, pullRequest)?.search.commit).toBe(commit);
    expect(runSearchOf({ ...find, commit }, pullRequest)?.commitFrom).toBeUndefined();
    expect(runSearchOf(find, { ...pullRequest, eventName: 'push' })).toEqual({ search: find });
    expect(runSearchOf(find, { ...pullRequest, eventName: 'workflow_dispatch' })?.search.commit).toBeUndefined();
  });

  it.each([undefined, 42, 'abc1234', `${head}\n::warning::x`])(
    'fails in one line for a pull_request payload whose head SHA is %j',
    (sha) => {
      const run = { ...pullRequest, pullRequestHead: sha };
      expect(() => runSearchOf(find, run)).toThrow(UserError);
      expect(() => runSearchOf(find, run)).toThrow(
        /^The pull_request event names no pull request head \(github.event.pull_request.head.sha\), .*: set `commit`\.$/,
      );
    },
  );
});

describe('loadLocation with a run found by `workflow`', () => {
  const found = { runId: 77, origin: 'run id 77 (#12), found by `workflow`' };

  it('reads the run found, with the token and repository as for `run-id`', () => {
    expect(loadLocation(none, push, found)).toEqual({
      location: { runId: 77, repository: 'octo-org/octo-repo', token: 'ghs_token' },
      origin: 'run id 77 (#12), found by `workflow`, in octo-org/octo-repo',
    });
  });

  it('takes it over the run that triggered a workflow_run workflow, and `run-id` over it', () => {
    expect(loadLocation(none, workflowRun, found).location.runId).toBe(77);
    expect(loadLocation({ ...none, runId: 7 }, workflowRun, found).location.runId).toBe(7);
  });
});
