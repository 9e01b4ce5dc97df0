/**
 * Save mode end to end: the bundled action, a real Docker engine, the real @actions/artifact library against the
 * local artifact service.
 */
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, uniqueName, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { docker, imageId, makeImage, removeImages, savesLegacyLayout, uniqueRepository } from '../support/engine.ts';
import { withTmpfs } from '../support/mounts.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

const exec = promisify(execFile);
let service: ArtifactService;
let runId = 100;
const repository = uniqueRepository('save');
const tags = [`${repository}:pr-2`, `${repository}:sha-abc1234`, `${repository}:latest`];
let id: string;

beforeAll(async () => {
  service = await startArtifactService();
  id = await makeImage(tags, { randomBytes: 256 * 1024 });
});
afterAll(async () => {
  await removeImages(...tags);
  await service?.close();
});

function metadataJson(list: readonly string[]): string {
  return JSON.stringify({
    tags: list,
    'tag-names': list.map((tag) => tag.split(':').pop()),
    labels: {},
    annotations: [],
  });
}

/** Runs save mode in a fresh workflow run of the local service. */
async function save(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
): Promise<ActionRun & { run: number }> {
  const run = ++runId;
  const result = await runAction({ mode: 'save', ...inputs }, { ...service.env(run), ...env });
  return { ...result, run };
}

/** docker load from a stream, as a user would after actions/download-artifact. */
async function dockerLoad(input: NodeJS.ReadableStream): Promise<string> {
  const child = spawn('docker', ['load'], { stdio: ['pipe', 'pipe', 'pipe'] });
  input.pipe(child.stdin);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`docker load failed: ${err}`);
  return out;
}

async function filesIn(directory: string): Promise<string[]> {
  return (await readdir(directory)).filter((file) => !['github_output', 'step_summary'].includes(file));
}

describe('save mode', () => {
  it('saves three metadata-action tags as ONE artifact that docker load restores with the same image ID', async () => {
    const result = await save({ metadata: metadataJson(tags) });
    expect(result.code, result.stdout).toBe(0);
    expect(result.outputs.tags!.split('\n')).toEqual(tags);
    expect(result.outputs.image).toBe(tags[0]);
    expect(result.outputs['run-id']).toBe(String(result.run));
    expect(result.outputs['image-id']).toBe(id);
    expect(result.outputs['artifact-name']).toBe('docker-image');
    expect(result.outputs.format).toBe((await savesLegacyLayout()) ? 'docker-archive' : 'docker-oci');
    expect(result.outputs.tarball).toBe(path.join(result.runnerTemp, 'docker-image.tar.zst'));

    const artifacts = service.artifacts(result.run);
    expect(artifacts).toHaveLength(1);
    expect(artifacts[0]).toMatchObject({
      name: 'docker-image',
      digest: result.outputs.digest,
      size: Number(result.outputs.size),
    });
    expect(result.outputs['artifact-id']).toBe(String(artifacts[0]!.id));
    // The stored blob is the tarball itself, byte for byte (raw upload, no zip).
    const blob = await readFile(service.blobPath(result.run, 'docker-image'));
    expect(blob.equals(await readFile(result.outputs.tarball!))).toBe(true);

    // Usable without this action: zstd -d, then docker load on an engine without the image.
    await removeImages(...tags);
    expect(await imageId(tags[0]!)).toBeUndefined();
    const zstd = spawn('zstd', ['-dc', service.blobPath(result.run, 'docker-image')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const loaded = await dockerLoad(zstd.stdout);
    for (const tag of tags) {
      expect(loaded).toContain(`Loaded image: ${tag}`);
      expect(await imageId(tag)).toBe(id);
    }
    expect(result.summary).toContain('Saved 3 image tags');
    expect(result.stdout).toContain('::group::');
  });

  it('uploads the tarball once written, with one notice, when the library does not take it as it is written', async () => {
    // HANDOFF_HANDOVER=off: the library reads the empty placeholder it was given instead, and finalizes an empty artifact.
    const before = service.requests().filter((request) => request.endsWith('/DeleteArtifact')).length;
    const result = await save({ metadata: metadataJson(tags) }, { HANDOFF_HANDOVER: 'off' });
    expect(result.code, result.stdout).toBe(0);
    const notices = result.stdout.split('\n').filter((line) => line.startsWith('::notice::'));
    expect(notices).toEqual([
      '::notice::The artifact library did not take the tarball as it was written: it is uploaded once written instead.',
    ]);
    // The empty artifact was deleted: the run holds one artifact, the tarball byte for byte.
    expect(service.requests().filter((request) => request.endsWith('/DeleteArtifact')).length).toBe(before + 1);
    const artifacts = service.artifacts(result.run);
    expect(artifacts.map(({ name, digest }) => [name, digest])).toEqual([['docker-image', result.outputs.digest]]);
    expect(result.outputs['artifact-id']).toBe(String(artifacts[0]!.id));
    const blob = await readFile(service.blobPath(result.run, 'docker-image'));
    expect(blob.equals(await readFile(result.outputs.tarball!))).toBe(true);
  });
  it('finds the tags in DOCKER_METADATA_OUTPUT_TAGS with no input at all, comma separated', async () => {
    const result = await save({}, { DOCKER_METADATA_OUTPUT_TAGS: `${tags[0]},${tags[1]}` });
    expect(result.code, result.stdout).toBe(0);
    expect(result.outputs.tags).toBe(`${tags[0]}\n${tags[1]}`);
    expect(result.stdout).toContain('From DOCKER_METADATA_OUTPUT_TAGS');
  });

  it.each([
    ['gzip', 'docker-image.tar.gz'],
    ['none', 'docker-image.tar'],
  ])('writes a %s tarball that docker load -i reads directly', async (compression, file) => {
    const result = await save({ tags: tags[0]!, compression, upload: 'false' });
    expect(result.code, result.stdout).toBe(0);
    expect(path.basename(result.outputs.tarball!)).toBe(file);
    expect(service.artifacts(result.run)).toEqual([]);
    expect(result.outputs['artifact-id']).toBe('');
    expect(result.outputs['run-id']).toBe('');
    await removeImages(tags[0]!);
    await exec('docker', ['load', '-i', result.outputs.tarball!]);
    expect(await imageId(tags[0]!)).toBe(id);
    await docker('tag', tags[0]!, tags[1]!);
    await docker('tag', tags[0]!, tags[2]!);
  });

  it('reports the digest and size of the file it wrote', async () => {
    const result = await save({ tags: tags[0]!, upload: 'false' });
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(result.outputs.tarball!)) hash.update(chunk as Buffer);
    expect(result.outputs.digest).toBe(`sha256:${hash.digest('hex')}`);
    expect(result.outputs.size).toBe(String((await stat(result.outputs.tarball!)).size));
  });

  it('fails on an uppercase owner before saving, naming the local image the user meant', async () => {
    const wrong = tags[0]!.replace('handoff-test', 'Handoff-Test');
    const result = await save({ tags: wrong });
    expectOneErrorLine(result, /repository name must be lowercase: `Handoff-Test`/);
    expect(result.error).toContain(`did you mean \`${tags[0]}\``);
    expect(result.stdout).toContain(tags[0]);
    expect(service.artifacts(result.run)).toEqual([]);
    expect(await filesIn(result.runnerTemp)).toEqual([]);
  });

  it('fails on a missing tag before saving, listing the engine images and what was meant', async () => {
    const missing = `${repository}:pr-3`;
    const result = await save({ tags: `${tags[0]}\n${missing}` });
    expectOneErrorLine(result, /1 of 2 tags is not in the docker engine/);
    expect(result.error).toContain(missing);
    const sameRepository = `${repository.replace(/\./g, '\\.')}:(pr-2|sha-abc1234|latest)`;
    expect(result.error).toMatch(new RegExp(`did you mean \`${sameRepository}\`\\?`));
    expect(result.stdout).toMatch(/REPOSITORY:TAG\s+IMAGE ID\s+CREATED\s+SIZE/);
    for (const tag of tags) expect(result.stdout).toContain(tag);
    expect(result.stdout).toMatch(
      new RegExp(`did you mean \`${sameRepository}\` for \`${missing}\`\\? \\(same repository`),
    );
    expect(service.artifacts(result.run)).toEqual([]);
    expect(await filesIn(result.runnerTemp)).toEqual([]);
  });

  it('with if-missing: warn saves the tags that exist and warns about the rest', async () => {
    const missing = `${repository}:pr-3`;
    const result = await save({ tags: `${tags[0]}\n${missing}`, 'if-missing': 'warn' });
    expect(result.code, result.stdout).toBe(0);
    expect(result.outputs.tags).toBe(tags[0]);
    expect(result.stdout).toMatch(/::warning::1 of 2 tags is not in the docker engine.*saving the 1 that exist/);
    expect(service.artifacts(result.run)).toHaveLength(1);
  });

  it('with if-missing: warn still fails when no tag exists', async () => {
    const result = await save({ tags: `${repository}:nope`, 'if-missing': 'warn' });
    expectOneErrorLine(result, /1 of 1 tags is not in the docker engine/);
    expect(service.artifacts(result.run)).toEqual([]);
  });

  it.each([
    ['an empty tag list', { tags: ' , \n' }, /No image tags in the `tags` input/],
    ['a bare version with no repository', { tags: 'pr-2' }, /bare version with no repository/],
    ['an option smuggled in as a tag', { tags: '--output=/etc/passwd' }, /cannot start with "-"/],
    ['a tag with spaces', { tags: `${repository}:my tag` }, /white space/],
    ['metadata that is not metadata-action json', { metadata: 'pr-2' }, /`metadata` input is not JSON/],
  ])('fails clearly on %s, with nothing written or uploaded', async (_case, inputs, message) => {
    const result = await save(inputs);
    expectOneErrorLine(result, message);
    expect(service.artifacts(result.run)).toEqual([]);
    expect(await filesIn(result.runnerTemp)).toEqual([]);
  });

  it('shows the two-line fix when no tags are found anywhere', async () => {
    const result = await save({});
    expectOneErrorLine(result, /No image tags to save/);
    expect(result.stdout).toContain('metadata: ${{ steps.meta.outputs.json }}');
  });

  it('fails in one line when no engine is running', async () => {
    const result = await save({ tags: tags[0]! }, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expectOneErrorLine(result, /Cannot reach the docker engine/);
    expect(service.artifacts(result.run)).toEqual([]);
  });

  it('fails in one line on an unwritable path, leaving nothing', async () => {
    const parent = path.join(tmpdir(), uniqueName('handoff-notdir'));
    await writeFile(parent, 'a file, not a directory');
    const result = await save({ tags: tags[0]!, path: path.join(parent, 'out') });
    expectOneErrorLine(result, /is not a directory: set `path`|Cannot write/);
    expect(service.artifacts(result.run)).toEqual([]);
    await rm(parent);
  });

  it('fails in one line on a read-only file system, leaving nothing', async (context) => {
    await withTmpfs('ro,size=1m', context, async (mountPoint) => {
      const result = await save({ tags: tags[0]!, path: path.join(mountPoint, 'out') });
      expectOneErrorLine(result, /Cannot write to .* \(EROFS\): set `path` to a writable directory/);
      expect(service.artifacts(result.run)).toEqual([]);
    });
  });

  it('fails in one line on a full disk, leaving no partial tarball', async (context) => {
    await withTmpfs('size=64k', context, async (mountPoint) => {
      const result = await save({ tags: tags[0]!, path: mountPoint, compression: 'none' });
      expectOneErrorLine(result, /Ran out of disk space writing/);
      expect(await readdir(mountPoint)).toEqual([]);
      expect(service.artifacts(result.run)).toEqual([]);
    });
  });

  it('fails on a duplicate artifact name, and overwrite replaces it', async () => {
    const run = ++runId;
    const name = uniqueName('docker-image');
    const first = await runAction({ tags: tags[0]!, name }, service.env(run));
    expect(first.code, first.stdout).toBe(0);
    const second = await runAction({ tags: tags[1]!, name }, service.env(run));
    expectOneErrorLine(second, new RegExp(`artifact named \`${name}\` already exists.*overwrite`));
    const third = await runAction({ tags: tags[1]!, name, overwrite: 'true' }, service.env(run));
    expect(third.code, third.stdout).toBe(0);
    const artifacts = service.artifacts(run);
    expect(artifacts).toHaveLength(1);
    expect(artifacts[0]!.digest).toBe(third.outputs.digest);
  });
});
