import { describe, expect, it } from 'vitest';
import { WorkflowNotFound, runFromJson } from '../../src/artifacts/workflow-runs.ts';
import { UserError } from '../../src/errors.ts';

const SHA = 'ab'.repeat(20);
const run = {
  id: 30433642,
  run_number: 562,
  event: 'push',
  head_branch: 'master',
  head_sha: SHA,
  status: 'completed',
  conclusion: 'success',
  created_at: '2020-01-22T19:33:08Z',
  html_url: 'https://github.com/octo-org/octo-repo/actions/runs/30433642',
  pull_requests: [],
};

describe('runFromJson', () => {
  it('reads the fields a search uses', () => {
    expect(runFromJson(run)).toEqual({
      id: 30433642,
      runNumber: 562,
      event: 'push',
      branch: 'master',
      headSha: SHA,
      status: 'completed',
      conclusion: 'success',
      createdAt: '2020-01-22T19:33:08Z',
      htmlUrl: 'https://github.com/octo-org/octo-repo/actions/runs/30433642',
    });
  });

  it('keeps a run of no branch, and one not concluded yet', () => {
    expect(runFromJson({ ...run, head_branch: null, status: 'queued', conclusion: null })).toMatchObject({
      branch: null,
      status: 'queued',
      conclusion: null,
    });
  });

  it.each([
    ['no id', { ...run, id: undefined }],
    ['an id that is text', { ...run, id: '30433642' }],
    ['an id of 0', { ...run, id: 0 }],
    ['an id past 2^53', { ...run, id: 2 ** 53 + 2 }],
    ['no run number', { ...run, run_number: undefined }],
    ['no head SHA', { ...run, head_sha: undefined }],
    ['no status', { ...run, status: null }],
    ['null', null],
    ['a string', 'run'],
  ])('skips a run with %s', (_, json) => {
    expect(runFromJson(json)).toBeUndefined();
  });
});

describe('WorkflowNotFound', () => {
  it('lists the workflows, and the close ones as "did you mean"', () => {
    const error = new WorkflowNotFound('ci.yaml', 'o/r', ['ci.yml', 'release.yml', 'CI.yml']);
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      'o/r has no workflow `ci.yaml`: its workflows are ci.yml, release.yml, CI.yml (did you mean ci.yml, CI.yml?); ' +
        'set `workflow` to the file name of the workflow that saved the image, in .github/workflows.',
    );
  });

  it('says when the repository has none, or cannot be read', () => {
    expect(new WorkflowNotFound('ci.yml', 'o/r', []).message).toMatch(
      /^o\/r has no workflow `ci.yml`: it has no workflows;/,
    );
    expect(new WorkflowNotFound('ci.yml', 'o/r', undefined).message).toMatch(
      /^GitHub's API found neither the workflow `ci.yml` nor the repository o\/r, or `github-token` may not read it/,
    );
  });

  it('escapes the names a server sent, and names at most 10', () => {
    const names = ['x\n::warning::owned.yml', ...Array.from({ length: 20 }, (_, i) => `w${i}.yml`)];
    const message = new WorkflowNotFound('ci.yml', 'o/r', names).message;
    expect(message).not.toMatch(/\n|(^|\s)::/);
    expect(message).toContain('`x\\n::warning::owned.yml`');
    expect(message).toContain('… and 11 more');
  });
});
