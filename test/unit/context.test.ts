import { describe, expect, it } from 'vitest';
import { loadLocation, type RunContext } from '../../src/action/context.ts';
import { UserError } from '../../src/errors.ts';

const push: RunContext = { eventName: 'push', triggeringRunId: undefined, repository: 'octo-org/octo-repo' };
const workflowRun: RunContext = { eventName: 'workflow_run', triggeringRunId: 40, repository: 'octo-org/octo-repo' };
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
