/**
 * Delete mode end to end: the bundled action run as GitHub runs it, deleting this run's artifacts through the real
 * @actions/artifact library (the Results service) and another run's through the real @actions/github client (the
 * REST API), against the local artifact service. Every test uploads artifacts to runs of its own and checks what each
 * run holds afterwards: what was to go is gone, everything else is still there.
 *
 * Fault tests run with `stall-timeout: 5` and hold the step to 5 s for each attempt that waits it out, plus the
 * backoff between attempts and SLACK_MS for the rest of the step on a busy two-core machine.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runActionWithin, type TimedRun } from '../support/action-process.ts';
import {
  READ_ONLY_TOKEN,
  REPOSITORY,
  startArtifactService,
  type ArtifactService,
} from '../support/artifact-service.ts';
import { expectOneErrorLine, runLog as output } from '../support/expect-run.ts';

const STALL_S = 5;
const STALL_MS = STALL_S * 1000;
/** What a step needs besides its stalls and backoffs: node, the listings, on a busy machine. */
const SLACK_MS = 8_000;
/** Two attempts that each wait out the stall timeout, with the 1 s backoff between them. */
const TWO_STALLS_MS = 2 * STALL_MS + 1_000 + SLACK_MS;
/** How long a test lets the action run before killing it: past every bound, well inside the test's timeout. */
const LIMIT_MS = 45_000;
const TEST_MS = 60_000;
/** A token the service lets write: any but READ_ONLY_TOKEN. */
const WRITE_TOKEN = 'ghs_local';

let service: ArtifactService;
let work: string;
let artifacts: typeof import('../../src/artifacts/index.ts');
let deletion: typeof import('../../src/artifacts/delete.ts');
let nextRun = 7000;
const savedEnv = { ...process.env };

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-delete-'));
  // @actions/github reads GITHUB_API_URL when it is first imported.
  Object.assign(process.env, service.env(1));
  artifacts = await import('../../src/artifacts/index.ts');
  deletion = await import('../../src/artifacts/delete.ts');
});

afterEach(() => service.clearFaults());

afterAll(async () => {
  process.env = savedEnv;
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

/** Uploads a small artifact under each name to `run`, as other steps of that run would; their ids by name. */
async function upload(run: number, ...names: string[]): Promise<Record<string, number>> {
  Object.assign(process.env, service.env(run));
  const ids: Record<string, number> = {};
  for (const name of names) {
    const file = path.join(work, `${run}-${name}`);
    await writeFile(file, randomBytes(2048));
    ids[name] = (await artifacts.uploadFile(file, name, { overwrite: false })).id;
  }
  return ids;
}

/** The names of a run's artifacts, sorted. */
function held(run: number): string[] {
  return service
    .artifacts(run)
    .map((artifact) => artifact.name)
    .sort();
}

/** Runs the bundled action as a step of `run` in delete mode. */
function remove(run: number, inputs: Record<string, string> = {}): Promise<TimedRun> {
  return runActionWithin({ mode: 'delete', 'stall-timeout': String(STALL_S), ...inputs }, service.env(run), LIMIT_MS);
}

function expectSuccess(run: TimedRun): void {
  expect(run.timedOut, output(run)).toBe(false);
  expect(run.code, output(run)).toBe(0);
  expect(run.errors, output(run)).toEqual([]);
}

function expectWithin(run: TimedRun, ms: number): void {
  expect(run.ms, `took ${Math.round(run.ms)} ms, bound ${ms} ms\n${output(run)}`).toBeLessThan(ms);
}

describe("this run's artifacts, through the runtime token", () => {
  it('deletes exactly the named artifact: the run keeps its others, other runs keep theirs of that name', async () => {
    const run = ++nextRun;
    const other = ++nextRun;
    const ids = await upload(run, 'docker-image', 'docker-image-api', 'test-report');
    await upload(other, 'docker-image');
    const before = service.requests().length;
    const step = await remove(run);
    expectSuccess(step);
    expect(held(run)).toEqual(['docker-image-api', 'test-report']);
    expect(held(other)).toEqual(['docker-image']);
    expect(step.outputs['artifact-name']).toBe('docker-image');
    expect(step.outputs['artifact-id']).toBe(String(ids['docker-image']));
    expect(step.outputs.tarball).toBe('');
    // Through the Results service, then checked by listing it again; never the REST API.
    const requests = service.requests().slice(before);
    expect(requests).toContain('POST /twirp/github.actions.results.api.v1.ArtifactService/DeleteArtifact');
    expect(requests.at(-1)).toBe('POST /twirp/github.actions.results.api.v1.ArtifactService/ListArtifacts');
    expect(requests.filter((request) => request.includes('/repos/'))).toEqual([]);
    expect(step.stdout).toContain(`Deleted \`docker-image\` (id ${ids['docker-image']}).`);
    expect(step.summary).toContain('<h3>Deleted from this run</h3>');
    expect(step.summary).toContain(`<td><code>docker-image</code></td><td>${ids['docker-image']}</td><td>deleted</td>`);
    expect(step.summary).not.toContain('docker-image-api');
  });

  it('deletes every artifact `pattern` matches, and nothing it does not', async () => {
    const run = ++nextRun;
    const other = ++nextRun;
    const ids = await upload(run, 'docker-image-web', 'docker-image', 'docker-image-api', 'coverage');
    await upload(other, 'docker-image-api');
    const step = await remove(run, { pattern: 'docker-image-*' });
    expectSuccess(step);
    expect(held(run)).toEqual(['coverage', 'docker-image']);
    expect(held(other)).toEqual(['docker-image-api']);
    expect(step.outputs['artifact-name']!.split('\n')).toEqual(['docker-image-api', 'docker-image-web']);
    expect(step.outputs['run-id']).toBe(String(run));
    expect(step.outputs['artifact-id']!.split('\n')).toEqual([
      String(ids['docker-image-api']),
      String(ids['docker-image-web']),
    ]);
  });

  it('succeeds with a notice when nothing is left to delete, as when run again', async () => {
    const run = ++nextRun;
    await upload(run, 'docker-image', 'sbom');
    expectSuccess(await remove(run));
    const again = await remove(run);
    expectSuccess(again);
    expect(again.stdout).toMatch(
      /^::notice::No artifact named `docker-image` in this run: nothing to delete \(never uploaded, expired, or deleted already\); it has `sbom`\.$/m,
    );
    expect(again.outputs['artifact-name']).toBe('');
    expect(held(run)).toEqual(['sbom']);
    const none = await remove(run, { pattern: 'docker-image-*' });
    expectSuccess(none);
    expect(none.stdout).toMatch(/^::notice::No artifact matching `pattern` docker-image-\* in this run/m);
  });

  it('names the inputs delete mode ignores in one warning, and still deletes', async () => {
    const run = ++nextRun;
    await upload(run, 'docker-image');
    const step = await remove(run, { tags: 'app:1', 'oci-layout': path.join(work, 'layout'), compression: 'zstd' });
    expectSuccess(step);
    expect(step.stdout.match(/^::warning::.*$/gm)).toEqual([
      '::warning::Delete mode ignores `tags` and `oci-layout`, which `mode: save` or `mode: load` reads: remove them ' +
        'from this step, or set the mode this step was meant to have.',
    ]);
    expect(held(run)).toEqual([]);
  });

  it('takes an artifact gone by the time it is deleted as deleted: the answer to a delete that was made is lost', async () => {
    const run = ++nextRun;
    await upload(run, 'docker-image');
    service.inject({ target: 'DeleteArtifact', kind: 'apply-then-reset' });
    const step = await remove(run);
    expectSuccess(step);
    expect(step.stdout).toMatch(/`docker-image` \(id \d+\) was already gone \(deleted by another step, or expired\)/);
    expect(step.outputs['artifact-name']).toBe('docker-image');
    expect(held(run)).toEqual([]);
  });

  it('refuses a pattern that matches more than 100 artifacts, deleting none', async () => {
    const run = ++nextRun;
    const names = Array.from({ length: 101 }, (_, i) => `shard-${String(i).padStart(3, '0')}`);
    await upload(run, ...names);
    const step = await remove(run, { pattern: 'shard-*' });
    expectOneErrorLine(
      step,
      /^101 artifacts matching `pattern` shard-\* in this run, more than the 100 one step deletes: nothing was deleted/,
    );
    expect(held(run)).toHaveLength(101);
  }, 120_000);

  it(
    'a delete that is never answered fails in one line within two stall timeouts, and the artifact stays',
    async () => {
      const run = ++nextRun;
      await upload(run, 'docker-image');
      service.inject({ target: 'DeleteArtifact', kind: 'stall-headers', times: 10 });
      const step = await remove(run);
      expectOneErrorLine(
        step,
        /^Deleting `docker-image` \(id \d+\) of this run failed after 2 attempts: no result within 5 s\. Nothing was deleted\. Run the job again\.$/,
      );
      expectWithin(step, TWO_STALLS_MS);
      expect(held(run)).toEqual(['docker-image']);
    },
    TEST_MS,
  );

  it(
    'a listing that is never answered fails in one line within two stall timeouts, before deleting anything',
    async () => {
      const run = ++nextRun;
      await upload(run, 'docker-image');
      service.inject({ target: 'ListArtifacts', kind: 'stall-headers', times: 10 });
      const step = await remove(run);
      expectOneErrorLine(
        step,
        /^Listing the artifacts of this run failed: no result within 5 s\. Nothing was deleted\.$/,
      );
      expectWithin(step, TWO_STALLS_MS);
      expect(held(run)).toEqual(['docker-image']);
    },
    TEST_MS,
  );

  it('a connection dropped once is retried; dropped every time, it is one line', async () => {
    const run = ++nextRun;
    await upload(run, 'docker-image', 'docker-image-api');
    service.inject({ target: 'DeleteArtifact', kind: 'reset' });
    expectSuccess(await remove(run, { name: 'docker-image-api' }));
    expect(held(run)).toEqual(['docker-image']);

    service.inject({ target: 'DeleteArtifact', kind: 'reset', times: 10 });
    const step = await remove(run);
    expectOneErrorLine(
      step,
      /^Deleting `docker-image` \(id \d+\) of this run failed after 2 attempts: `Failed to DeleteArtifact: Unable to make request: ECONNRESET`/,
    );
    expect(held(run)).toEqual(['docker-image']);
  });
});

describe("another run's artifacts, through the REST API with `github-token`", () => {
  /** A step of `run` deleting from `from`, of REPOSITORY, with `token`. */
  function removeFrom(run: number, from: number, inputs: Record<string, string>, token = WRITE_TOKEN) {
    return remove(run, { 'run-id': String(from), repository: REPOSITORY, 'github-token': token, ...inputs });
  }

  it('with a token that may write, deletes exactly the matching artifacts of that run, by their ids', async () => {
    const run = ++nextRun;
    const from = ++nextRun;
    const ids = await upload(from, 'docker-image-api', 'docker-image-web', 'logs');
    await upload(run, 'docker-image-api');
    const before = service.requests().length;
    const step = await removeFrom(run, from, { pattern: 'docker-image-*' });
    expectSuccess(step);
    expect(held(from)).toEqual(['logs']);
    expect(held(run)).toEqual(['docker-image-api']);
    expect(step.outputs['artifact-name']!.split('\n')).toEqual(['docker-image-api', 'docker-image-web']);
    const deletes = service
      .requests()
      .slice(before)
      .filter((request) => request.startsWith('DELETE'));
    expect(deletes).toEqual([
      `DELETE /repos/${REPOSITORY}/actions/artifacts/${ids['docker-image-api']}`,
      `DELETE /repos/${REPOSITORY}/actions/artifacts/${ids['docker-image-web']}`,
    ]);
  });

  it("with a read-only token, fails in one line naming `actions: write` and the job's `permissions:`", async () => {
    const run = ++nextRun;
    const from = ++nextRun;
    await upload(from, 'docker-image');
    const step = await removeFrom(run, from, {}, READ_ONLY_TOKEN);
    expectOneErrorLine(
      step,
      new RegExp(
        `^Deleting \`docker-image\` \\(id \\d+\\) of run ${from} of ${REPOSITORY} was refused \\(403 \`Resource not accessible by integration.*\`\\): ` +
          `\`github-token\` needs \`actions: write\` on ${REPOSITORY}: add \`actions: write\` to the \`permissions:\` of this job, ` +
          'or give a token that has it\\. Nothing was deleted\\.$',
      ),
    );
    expect(step.outputs['artifact-name']).toBe('');
    expect(held(from)).toEqual(['docker-image']);
  });

  it('refuses `run-id` with an empty `github-token` before any request', async () => {
    const before = service.requests().length;
    const step = await remove(++nextRun, { 'run-id': '42', 'github-token': '' });
    expectOneErrorLine(
      step,
      /^Deleting the artifacts of run 42 needs a token with `actions: write`, and `github-token` is empty/,
    );
    expect(service.requests().slice(before)).toEqual([]);
  });

  it('refuses `workflow` without `run-id` before any request: it is not searched, nor left to mean this run', async () => {
    const run = ++nextRun;
    await upload(run, 'docker-image');
    const before = service.requests().length;
    const step = await remove(run, { workflow: 'ci.yml' });
    expectOneErrorLine(step, /^`workflow` \(`ci\.yml`\) finds a run to load from, and delete mode does not search/);
    expect(service.requests().slice(before)).toEqual([]);
    expect(held(run)).toEqual(['docker-image']);
  });

  it('an API that answers 503 once is retried', async () => {
    const run = ++nextRun;
    const from = ++nextRun;
    await upload(from, 'docker-image');
    service.inject({ target: 'rest-delete', kind: 'status', status: 503 });
    expectSuccess(await removeFrom(run, from, {}));
    expect(held(from)).toEqual([]);
  });

  it(
    'a delete that is never answered fails in one line within two stall timeouts, and the artifact stays',
    async () => {
      const run = ++nextRun;
      const from = ++nextRun;
      await upload(from, 'docker-image');
      service.inject({ target: 'rest-delete', kind: 'stall-headers', times: 10 });
      const step = await removeFrom(run, from, {});
      expectOneErrorLine(
        step,
        new RegExp(
          `^Deleting \`docker-image\` \\(id \\d+\\) of run ${from} of ${REPOSITORY} failed after 2 attempts: no result within 5 s\\.`,
        ),
      );
      expectWithin(step, TWO_STALLS_MS);
      expect(held(from)).toEqual(['docker-image']);
    },
    TEST_MS,
  );

  it(
    'an API that never answers the listing fails in one line within two stall timeouts',
    async () => {
      const run = ++nextRun;
      const from = ++nextRun;
      await upload(from, 'docker-image');
      service.inject({ target: 'rest', kind: 'stall-headers', times: 10 });
      const step = await removeFrom(run, from, {});
      expectOneErrorLine(
        step,
        new RegExp(
          `^Listing the artifacts of run ${from} of ${REPOSITORY} failed: no result within 5 s\\. Nothing was deleted\\. ` +
            "Check `run-id` and `repository`, and that `github-token` may delete that repository's artifacts \\(`actions: write`\\)\\.$",
        ),
      );
      expectWithin(step, TWO_STALLS_MS);
      expect(held(from)).toEqual(['docker-image']);
    },
    TEST_MS,
  );

  it('an artifact the API says it deleted, yet still lists, fails the step after a second round', async () => {
    const run = ++nextRun;
    const from = ++nextRun;
    await upload(from, 'docker-image');
    service.inject({ target: 'rest-delete', kind: 'status', status: 204, times: 2 });
    const step = await removeFrom(run, from, {});
    expectOneErrorLine(
      step,
      /^`docker-image` is still listed in run \d+ of [^ ]+ after 2 rounds of deletion, though the artifact service answered that it deleted them\. Run the job again\.$/,
    );
    expect(held(from)).toEqual(['docker-image']);
    expect(step.summary).toMatch(/<h3>Deleted from run \d+ of [^<]+<\/h3>/);
    expect(step.summary).toMatch(/<td><code>docker-image<\/code><\/td><td>\d+<\/td><td>still listed<\/td>/);
  });

  it('a 404 for an artifact still listed names `actions: write`: GitHub hides what a token may not touch', async () => {
    const run = ++nextRun;
    const from = ++nextRun;
    await upload(from, 'docker-image');
    service.inject({ target: 'rest-delete', kind: 'status', status: 404, times: 2 });
    const step = await removeFrom(run, from, {});
    expectOneErrorLine(step, /though the API answered 404 Not Found.*`github-token` needs `actions: write`/);
    expect(held(from)).toEqual(['docker-image']);
  });
});

describe('the delete calls, in-process against the service', () => {
  it('an artifact the service does not have is gone, not an error: by name in this run, by id in another', async () => {
    const run = ++nextRun;
    Object.assign(process.env, service.env(run));
    expect(await deletion.deleteRunArtifact({ id: 1, name: 'never-uploaded' }, undefined)).toBe('gone');
    const findBy = { workflowRunId: run, repositoryOwner: 'octo-org', repositoryName: 'octo-repo', token: WRITE_TOKEN };
    expect(await deletion.deleteRunArtifact({ id: 987_654, name: 'never-uploaded' }, findBy)).toBe('gone');
  });
});
