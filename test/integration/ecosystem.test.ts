/**
 * What real clients meet: the README's workflow_run example, zip artifacts from actions/upload-artifact (zipped, and
 * raw with `archive: false`), metadata-action's outputs as they come, a big engine, and a runner without a summary
 * file. The bundled action as GitHub runs it, a real engine, the real @actions/artifact against the local service.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isThisAction, markdownExamples } from '../../scripts/lint-workflows.ts';
import { ROOT, runAction } from '../support/action.ts';
import { REPOSITORY, startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { docker, imageId, makeImage, removeImages, uniqueRepository } from '../support/engine.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

let service: ArtifactService;
let work: string;
let library: typeof import('@actions/artifact');
let runId = 900;
const savedEnv = { ...process.env };

const repository = uniqueRepository('ecosystem');
const tags = [`${repository}:pr-42`, `${repository}:sha-abc1234`];
/** Keeps the image in the engine while tests remove `tags`, so the next test can tag it again. */
const keep = `${repository}:keep`;
let id: string;
/** Tags a test adds, removed at the end. */
const extraTags: string[] = [];

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-ecosystem-'));
  id = await makeImage([...tags, keep], { randomBytes: 64 * 1024 });
  Object.assign(process.env, service.env(1));
  library = await import('@actions/artifact');
});

afterAll(async () => {
  process.env = savedEnv;
  await removeImages(...tags, keep, ...extraTags);
  await service?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function action(run: number, inputs: Record<string, string>, env: Record<string, string> = {}) {
  return runAction(inputs, { ...service.env(run), ...env });
}

/** The lines of the first log group whose title starts with `title`. */
function group(stdout: string, title: string): string[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`::group::${title}`));
  expect(start, `no group "${title}" in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, index) => index > start && line === '::endgroup::');
  return lines.slice(start + 1, end);
}

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

async function restoreTags(): Promise<void> {
  for (const tag of tags) if ((await imageId(tag)) !== id) await docker('tag', keep, tag);
}

describe('save mode, as the toolkit actions log it', () => {
  it('shows the engine commands it runs, and what it found, inside the "Check the tags exist" group', async () => {
    const result = await runAction({ tags: tags.join('\n'), upload: 'false' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = group(result.stdout, 'Check the tags exist');
    expect(lines[0]).toMatch(/^\[command\]\S*docker image inspect /);
    for (const tag of tags) expect(lines.some((line) => line.startsWith(`  ${tag}  ${id}`))).toBe(true);
    // The JSON the engine answered is for the action, not the log.
    expect(result.stdout).not.toContain('"RepoTags"');
  });

  it('succeeds, with a warning, when the runner has no job summary file', async () => {
    const result = await runAction(
      { tags: tags.join('\n'), upload: 'false' },
      { GITHUB_STEP_SUMMARY: path.join(work, 'no-such-directory', 'summary.md') },
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^::warning::The job summary could not be written/m);
    expect(result.stdout).not.toContain('Unexpected error');
  });

  it("advises on metadata-action's `images` input for the bare versions it made, naming every one", async () => {
    const json = JSON.stringify({ tags: ['pr-42', 'sha-abc1234'], labels: {} });
    const result = await runAction({ upload: 'false' }, { DOCKER_METADATA_OUTPUT_JSON: json });
    expectOneErrorLine(
      result,
      /^2 of 2 image references from DOCKER_METADATA_OUTPUT_JSON are invalid: `pr-42`, `sha-abc1234`/,
    );
    expect(result.error).toMatch(/`images` input/);
    expect(result.error).not.toContain('by hand');
    expect(result.stdout).toMatch(/^invalid: `sha-abc1234`: is a bare version/m);
  });

  it('names every invalid reference typed into `tags` in the one line, and says how to fix them', async () => {
    const result = await runAction({ tags: `Octo-Org/app:1\n${tags[0]}\nbad:tag:`, upload: 'false' });
    expectOneErrorLine(
      result,
      /^2 of 3 image references from the `tags` input are invalid: `Octo-Org\/app:1`, `bad:tag:`/,
    );
    expect(result.error).toContain("docker/metadata-action's tags");
  });

  it('says to separate tags with newlines or commas when they are separated by spaces (`sep-tags: " "`)', async () => {
    const result = await runAction({ tags: tags.join(' '), upload: 'false' });
    expectOneErrorLine(result, /holds 2 references separated by white space.*Separate tags with newlines or commas/);
    expect(result.error).not.toContain('did you mean');
    expect(result.stdout + result.error).not.toMatch(/did you mean `[^`]*pr-42`/);
  });

  it("caps the engine's image list: the wanted repository first, then the rest, and how many more", async () => {
    const crowd = uniqueRepository('crowd');
    const crowdTags = Array.from({ length: 30 }, (_, index) => `${crowd}:t${index}`);
    extraTags.push(...crowdTags);
    await makeImage(crowdTags);
    const result = await runAction({ tags: `${repository}:missing`, upload: 'false' });
    expectOneErrorLine(result, /is not in the docker engine/);
    const lines = result.stdout.split('\n');
    const header = lines.findIndex((line) => /REPOSITORY:TAG\s+IMAGE ID/.test(line));
    const more = lines.findIndex((line, index) => index > header && /^ {2}… and \d+ more$/.test(line));
    expect(header, result.stdout).toBeGreaterThan(0);
    expect(more, result.stdout).toBeGreaterThan(header);
    const rows = lines.slice(header + 1, more);
    expect(rows.length).toBeLessThanOrEqual(20);
    expect(rows[0]).toMatch(new RegExp(`^ {2}${repository}:(pr-42|sha-abc1234|keep) `));
    expect(rows[1]).toMatch(new RegExp(`^ {2}${repository}:(pr-42|sha-abc1234|keep) `));
    expect(rows.filter((row) => row.includes(crowd)).length).toBeLessThan(crowdTags.length);
  });
});

describe('load mode, with what other actions produce', () => {
  it("runs the README's workflow_run example: the triggering run and the default token, no run-id or github-token", async () => {
    const example = markdownExamples(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).find((candidate) =>
      /^\s+workflow_run:/m.test(candidate.text),
    );
    expect(example).toBeDefined();
    const workflow = parse(example!.text) as {
      jobs: Record<string, { steps: Array<{ uses?: string; with?: Record<string, string> }> }>;
    };
    const step = Object.values(workflow.jobs)
      .flatMap((job) => job.steps)
      .find((candidate) => candidate.uses && isThisAction(candidate.uses) && candidate.with?.mode === 'load');
    expect(step?.with).toBeDefined();
    expect(Object.keys(step!.with!)).not.toContain('run-id');
    expect(Object.keys(step!.with!)).not.toContain('github-token');
    // The runner fills in the defaults of action.yml; github-token's is the job's token.
    const metadata = parse(readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as {
      inputs: Record<string, { default?: string }>;
    };
    expect(metadata.inputs['github-token']?.default).toBe('${{ github.token }}');

    await restoreTags();
    const pullRequestRun = ++runId;
    const saved = await action(pullRequestRun, { tags: tags.join('\n') });
    expect(saved.code, saved.stdout + saved.stderr).toBe(0);
    await removeImages(...tags);

    const scanRun = ++runId;
    const event = path.join(work, 'workflow_run.json');
    await writeFile(
      event,
      JSON.stringify({
        action: 'completed',
        workflow_run: { id: pullRequestRun, conclusion: 'success', name: 'Pull request' },
        repository: { full_name: REPOSITORY },
      }),
    );
    const before = service.requests().length;
    const result = await action(
      scanRun,
      { ...step!.with!, 'github-token': 'ghs_the-job-token' },
      { GITHUB_EVENT_NAME: 'workflow_run', GITHUB_EVENT_PATH: event },
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `run id ${pullRequestRun}: the run that triggered this workflow_run event (github.event.workflow_run.id)`,
    );
    expect(service.requests().slice(before)).toContain(
      `GET /repos/${REPOSITORY}/actions/runs/${pullRequestRun}/artifacts`,
    );
    for (const tag of tags) expect(await imageId(tag)).toBe(id);
    expect(result.outputs.image).toBe(tags[0]);
  });

  describe('a zip artifact from actions/upload-artifact', () => {
    let run: number;
    let zip: { digest: string; size: number };
    let tarDigest: string;

    beforeAll(async () => {
      await restoreTags();
      const tarball = path.join(work, 'image.tar');
      await docker('save', '--output', tarball, ...tags);
      tarDigest = await sha256(tarball);
      run = ++runId;
      Object.assign(process.env, service.env(run));
      const uploaded = await new library.DefaultArtifactClient().uploadArtifact('zipped-image', [tarball], work);
      zip = { digest: uploaded.digest!, size: uploaded.size! };
      // upload-artifact prints the digest as bare hex; the zip is what was uploaded and what the service recorded.
      expect(zip.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(service.artifacts(run).find((a) => a.name === 'zipped-image')?.digest).toBe(`sha256:${zip.digest}`);
      expect(zip.digest).not.toBe(tarDigest);
    });

    it.each([
      ['bare hex, as upload-artifact prints it', (hex: string) => hex],
      ['sha256:<hex>', (hex: string) => `sha256:${hex}`],
    ])('takes the zip digest as expected-digest, %s; digest and size describe the artifact', async (_, form) => {
      await removeImages(...tags);
      const result = await action(run, { mode: 'load', name: 'zipped-image', 'expected-digest': form(zip.digest) });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^sha256 of the zip matches the recorded digest and expected-digest: sha256:/m);
      expect(result.outputs.digest).toBe(`sha256:${zip.digest}`);
      expect(result.outputs.size).toBe(String(zip.size));
      // The engine is asked for its version, as the toolkit's actions do, in the log.
      expect(result.stdout).toMatch(/^\[command\]\S*docker version --format/m);
      for (const tag of tags) expect(await imageId(tag)).toBe(id);
    });

    it('says which digest it compared, and never "matches" for the file the zip held', async () => {
      const result = await action(run, { mode: 'load', name: 'zipped-image', load: 'false' });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).not.toMatch(/^sha256 matches: /m);
      expect(result.stdout).toMatch(/^sha256 of the zip matches the recorded digest: sha256:/m);
    });

    it("refuses the tarball's digest as expected-digest, saying which digest it takes", async () => {
      const result = await action(run, { mode: 'load', name: 'zipped-image', 'expected-digest': tarDigest });
      expectOneErrorLine(result, /`expected-digest` is sha256:[0-9a-f]{64}/);
      expect(result.error).toContain("the zip's digest");
    });
  });

  it('never says a digest matched when nothing was compared: no recorded digest, no expected-digest', async () => {
    await restoreTags();
    const run = ++runId;
    const saved = await action(run, { tags: tags.join('\n'), name: 'no-record' });
    expect(saved.code, saved.stdout + saved.stderr).toBe(0);
    service.forgetDigest(run, 'no-record');

    const result = await action(run, { mode: 'load', name: 'no-record', load: 'false' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).not.toMatch(/matches/);
    expect(result.stdout).toContain(
      `sha256 ${saved.outputs.digest}, not compared: the artifact service recorded no digest, and \`expected-digest\` is not set`,
    );
  });

  it('names the artifact upload-artifact made with `archive: false`, which is named after the file', async () => {
    const run = ++runId;
    Object.assign(process.env, service.env(run));
    const file = path.join(work, 'image.tar.zst');
    await writeFile(file, 'not read: the name is wrong before anything is downloaded');
    const uploaded = await new library.DefaultArtifactClient().uploadArtifact('docker-image', [file], work, {
      skipArchive: true,
    });
    expect(service.artifacts(run).map((a) => a.name)).toEqual(['image.tar.zst']);
    expect(uploaded.id).toBeDefined();

    const result = await action(run, { mode: 'load' });
    expectOneErrorLine(result, /^No artifact named `docker-image` in this run; it has `image\.tar\.zst`/);
    expect(result.error).toContain('did you mean `name: image.tar.zst`?');
    expect(result.error).toContain('archive: false');
  });

  it('lists each tag once in `tags` when several artifacts of a `pattern` hold it', async () => {
    await restoreTags();
    const run = ++runId;
    for (const name of ['twice-a', 'twice-b']) {
      const result = await action(run, { tags: tags.join('\n'), name });
      expect(result.code, result.stdout + result.stderr).toBe(0);
    }
    const result = await action(run, { mode: 'load', pattern: 'twice-*' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.tags!.split('\n')).toEqual(tags);
    expect(result.outputs['artifact-name']!.split('\n')).toEqual(['twice-a', 'twice-b']);
    expect(result.outputs.size!.split('\n')).toHaveLength(2);
    expect((await stat(result.outputs.tarball!.split('\n')[0]!)).isFile()).toBe(true);
  });
});
