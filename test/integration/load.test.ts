/**
 * Load mode end to end, and the save → load handoff: the bundled action run as GitHub runs it, a real Docker engine,
 * the real @actions/artifact library against the local artifact service (including the REST endpoints of findBy).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { REPOSITORY, startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import {
  docker,
  engineApiAtLeast,
  imageId,
  makeImage,
  removeImages,
  repositoriesState,
  skopeoCopy,
  uniqueRepository,
} from '../support/engine.ts';
import { expectTagNamesTarballImage } from '../support/images.ts';
import { withTmpfs } from '../support/mounts.ts';
import {
  dockerArchiveEntries,
  hex,
  makeImage as makeFixtureImage,
  ociLayoutEntries,
  packTar,
  sha256,
  type FixtureImage,
} from '../support/fixtures.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

const exec = promisify(execFile);
const NO_ENGINE = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
let service: ArtifactService;
let runId = 500;
let work: string;
let artifact: typeof import('../../src/artifacts/index.ts');
const savedEnv = { ...process.env };

const repository = uniqueRepository('load');
const tags = [`${repository}:pr-3`, `${repository}:sha-def5678`, `${repository}:latest`];
/** Keeps the image in the engine while tests remove `tags`, so the next test can tag it again. */
const keep = `${repository}:keep`;
let id: string;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-load-'));
  id = await makeImage([...tags, keep], { randomBytes: 512 * 1024 });
  // Uploads of files the action itself would refuse to save go through the library in-process.
  Object.assign(process.env, service.env(1));
  artifact = await import('../../src/artifacts/index.ts');
});

afterAll(async () => {
  process.env = savedEnv;
  await removeImages(...tags, keep);
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

/** Runs the bundled action as a job of workflow run `run`. */
async function action(
  run: number,
  inputs: Record<string, string>,
  env: Record<string, string> = {},
): Promise<ActionRun> {
  return runAction(inputs, { ...service.env(run), ...env });
}

/** Uploads a file as an artifact of `run`, as any other step could. */
async function uploadAs(run: number, file: string, name: string): Promise<void> {
  Object.assign(process.env, service.env(run));
  await artifact.uploadFile(file, name, { overwrite: false });
}

/** The images of this file's repositories, to prove a failed load left them as they were. */
const engineState = repositoriesState;

async function fileDigest(file: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await readFile(file))
    .digest('hex')}`;
}

/** Saves `tags` in a new run; returns the run and the save step's outputs. */
async function saved(inputs: Record<string, string> = {}): Promise<{ run: number; outputs: Record<string, string> }> {
  for (const tag of tags) if ((await imageId(tag)) !== id) await docker('tag', keep, tag);
  const run = ++runId;
  const result = await action(run, { mode: 'save', tags: tags.join('\n'), ...inputs });
  expect(result.code, result.stdout + result.stderr).toBe(0);
  return { run, outputs: result.outputs };
}

describe('the handoff: save, docker rmi, load', () => {
  it('restores every tag with the same image ID, through the bundled action on both sides', async () => {
    const { run, outputs } = await saved();
    // Gone from the engine entirely, layers and all.
    await removeImages(...tags, keep);
    for (const tag of tags) expect(await imageId(tag)).toBeUndefined();
    expect(await docker('image', 'ls', '--quiet', '--no-trunc')).not.toContain(id);

    const result = await action(run, { mode: 'load', 'expected-digest': outputs.digest! });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    for (const tag of tags) expect(await imageId(tag)).toBe(id);
    expect(result.outputs.tags!.split('\n')).toEqual(tags);
    expect(result.outputs.image).toBe(tags[0]);
    expect(result.outputs['image-id']).toBe(id);
    expect(result.outputs.digest).toBe(outputs.digest);
    expect(await fileDigest(result.outputs.tarball!)).toBe(outputs.digest);
    expect(result.stdout).toContain('sha256 matches the recorded digest and expected-digest');
    for (const tag of tags) expect(result.stdout).toContain(`Loaded image: ${tag}`);
    expect(result.summary).toContain('Loaded 3 image tags');
    for (const tag of tags) expect(result.summary).toContain(tag);
    await docker('tag', tags[0]!, keep);
  });

  it.each(['gzip', 'none'])('reads a %s artifact by its first bytes, not its name', async (compression) => {
    const { run } = await saved({ compression });
    await removeImages(...tags);
    const result = await action(run, { mode: 'load' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(compression === 'none' ? '(uncompressed)' : '(gzip)');
    for (const tag of tags) expect(await imageId(tag)).toBe(id);
  });

  it('loads from another workflow run (workflow_run) with run-id, repository and github-token', async () => {
    const { run, outputs } = await saved({ name: 'image-for-scan' });
    await removeImages(...tags);
    const before = service.requests().length;
    const result = await action(run + 1000, {
      mode: 'load',
      name: 'image-for-scan',
      'run-id': String(run),
      repository: REPOSITORY,
      'github-token': 'ghs_local',
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.digest).toBe(outputs.digest);
    for (const tag of tags) expect(await imageId(tag)).toBe(id);
    // It went through the REST API of the other run, not this run's Results service.
    expect(service.requests().slice(before)).toContain(`GET /repos/${REPOSITORY}/actions/runs/${run}/artifacts`);
  });

  it('checks the tags input against the tarball, and loads only when they are all there', async () => {
    const { run } = await saved();
    const result = await action(run, { mode: 'load', tags: tags[1]! });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.tags).toBe(tags[1]);

    await removeImages(...tags);
    const before = await engineState();
    const wrong = await action(run, { mode: 'load', tags: `${repository}:pr-4` });
    expectOneErrorLine(wrong, /does not hold `.*:pr-4`: it records `.*did you mean/);
    expect(await engineState()).toBe(before);
  });
});

describe('load: false', () => {
  it('downloads and verifies with no engine at all, and hands on a plain tar that docker load reads', async () => {
    const { run, outputs } = await saved({ name: 'for-a-scanner' });
    const result = await action(run, { mode: 'load', name: 'for-a-scanner', load: 'false' }, NO_ENGINE);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.tags!.split('\n')).toEqual(tags);
    // With no engine to ask, image-id is what the containerd image store (Docker 29, ubuntu-latest) would show: the
    // digest index.json names, or for a docker-archive the config digest, which is also what this engine shows.
    const index = JSON.parse(
      (await exec('tar', ['-xOf', result.outputs.tarball!, 'index.json']).catch(() => ({ stdout: '{}' }))).stdout,
    ) as { manifests?: Array<{ digest: string }> };
    expect(result.outputs['image-id'], 'image-id with load: false and no engine').toBe(
      index.manifests?.[0]?.digest ?? id,
    );
    expect(result.outputs.digest).toBe(outputs.digest);
    expect(result.summary).toContain('not loaded');
    // The plain tar a scanner reads: a tar from its first block, holding what was saved.
    const tarball = result.outputs.tarball!;
    const { stdout: listing } = await exec('tar', ['--list', '--file', tarball]);
    expect(listing.split('\n')).toContain('manifest.json');
    await removeImages(...tags);
    await exec('docker', ['load', '--input', tarball]);
    for (const tag of tags) expect(await imageId(tag)).toBe(id);
  });

  it('with decompress: false hands on the file exactly as uploaded', async () => {
    const { run, outputs } = await saved({ name: 'as-uploaded' });
    const result = await action(
      run,
      { mode: 'load', name: 'as-uploaded', load: 'false', decompress: 'false' },
      NO_ENGINE,
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(await fileDigest(result.outputs.tarball!)).toBe(outputs.digest);
    expect(await readdir(path.dirname(result.outputs.tarball!))).toEqual(['as-uploaded']);
  });

  // Scanners read only what the action wrote; an uncompressed artifact it saved is canonical already, and writing
  // it again gives the same bytes.
  it('hands on the canonical plain tar, byte for byte the artifact this action saved uncompressed', async () => {
    const { run, outputs } = await saved({ name: 'plain', compression: 'none' });
    const result = await action(run, { mode: 'load', name: 'plain', load: 'false' }, NO_ENGINE);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.tarball).toMatch(/plain\.tar$/);
    expect(await fileDigest(result.outputs.tarball!)).toBe(outputs.digest);
    expect((await readdir(path.dirname(result.outputs.tarball!))).sort()).toEqual(['plain', 'plain.tar']);
  });
});

describe('load mode refuses bad input in one line, leaving the engine as it was', () => {
  it.each([
    [
      'one flipped byte',
      async (blob: string) => {
        const handle = await open(blob, 'r+');
        const [byte] = (await handle.read(Buffer.alloc(1), 0, 1, 200)).buffer;
        await handle.write(Buffer.from([byte! ^ 0x01]), 0, 1, 200);
        await handle.close();
      },
    ],
    ['a truncated blob', (blob: string) => truncate(blob, 100)],
  ])('%s in the stored artifact fails the digest check, with nothing loaded', async (_, corrupt) => {
    const { run, outputs } = await saved();
    await removeImages(...tags);
    await corrupt(service.blobPath(run, 'docker-image'));
    const before = await engineState();

    const result = await action(run, { mode: 'load' });
    expectOneErrorLine(
      result,
      new RegExp(
        `hashes to sha256:[0-9a-f]{64}, but the artifact service recorded ${outputs.digest}.*nothing was loaded`,
      ),
    );
    expect(await engineState()).toBe(before);
    for (const tag of tags) expect(await imageId(tag)).toBeUndefined();
    // The rejected download is not left behind for a later step to pick up.
    expect((await readdir(result.runnerTemp)).filter((name) => name.startsWith('artifact-'))).toEqual([]);
  });

  it('fails on a wrong expected-digest, showing both digests', async () => {
    const { run, outputs } = await saved();
    await removeImages(...tags);
    const before = await engineState();
    const wrong = `sha256:${'0'.repeat(64)}`;
    const result = await action(run, { mode: 'load', 'expected-digest': wrong });
    expectOneErrorLine(result, new RegExp(`hashes to ${outputs.digest}, but \`expected-digest\` is ${wrong}`));
    expect(await engineState()).toBe(before);
  });

  it('rejects an expected-digest that is not a digest before downloading', async () => {
    const result = await action(++runId, { mode: 'load', 'expected-digest': 'abc123' });
    expectOneErrorLine(result, /expected-digest/);
    expect(service.requests().some((request) => request.includes(`run-${runId}`))).toBe(false);
  });

  it('names the artifacts that exist when the one asked for does not', async () => {
    const { run } = await saved({ name: 'docker-image-api' });
    const result = await action(run, { mode: 'load' });
    expectOneErrorLine(result, /No artifact named `docker-image` in this run; it has `docker-image-api`/);
  });

  it('refuses a file that is not an image tarball', async () => {
    const run = ++runId;
    const file = path.join(work, 'notes.txt');
    await writeFile(file, 'release notes, not an image\n'.repeat(100));
    await uploadAs(run, file, 'docker-image');
    const before = await engineState();
    const result = await action(run, { mode: 'load' });
    expectOneErrorLine(result, /not .*tar/i);
    expect(await engineState()).toBe(before);
  });

  it('refuses run-id without github-token before any request', async () => {
    const before = service.requests().length;
    const result = await action(++runId, { mode: 'load', 'run-id': '42' });
    expectOneErrorLine(result, /`run-id`.*`github-token`/);
    expect(service.requests().length).toBe(before);
  });

  it('fails in one line, before any request, on a path it cannot write to', async (context) => {
    const { run } = await saved();
    await withTmpfs('ro,size=1m', context, async (mountPoint) => {
      const before = service.requests().length;
      const result = await action(run, { mode: 'load', path: path.join(mountPoint, 'downloads') });
      expectOneErrorLine(result, /Cannot write to .* \(EROFS\): set `path` to a writable directory/);
      expect(service.requests().length).toBe(before);
    });
  });

  it('fails in one line on a full disk, leaving nothing behind', async (context) => {
    const { run } = await saved();
    await removeImages(...tags);
    const before = await engineState();
    await withTmpfs('size=64k', context, async (mountPoint) => {
      const result = await action(run, { mode: 'load', path: mountPoint });
      expectOneErrorLine(
        result,
        /Not enough disk space in `.*` to download artifact `docker-image`: it is .*, and .* is free\. Free space on the runner or set `path`/,
      );
      expect(await readdir(mountPoint)).toEqual([]);
    });
    expect(await engineState()).toBe(before);
  });

  it('fails in one line with no engine and load: true, before downloading', async () => {
    const { run } = await saved();
    const before = service.requests().length;
    const result = await action(run, { mode: 'load' }, NO_ENGINE);
    expectOneErrorLine(result, /Cannot reach the docker engine/);
    expect(service.requests().length).toBe(before);
  });
});

describe('every layout, through the bundled action on the real engine', () => {
  const fixtureRepository = uniqueRepository('layouts');
  const fixtureTags: string[] = [];
  afterAll(() => removeImages(...fixtureTags));

  async function fixture(tag: string, seed: string): Promise<FixtureImage> {
    fixtureTags.push(tag);
    return makeFixtureImage([tag], { seed: `${seed} ${randomBytes(8).toString('hex')}` });
  }

  /** `source` → artifact → rmi → load, checking the tag names the tarball's image, by the ID this engine gives it. */
  async function roundTrip(file: string, tag: string, expectedFormat: string): Promise<ActionRun> {
    const run = ++runId;
    const save = await action(run, { mode: 'save', source: file, tags: tag }, NO_ENGINE);
    expect(save.code, save.stdout + save.stderr).toBe(0);
    expect(save.outputs.format).toBe(expectedFormat);
    await removeImages(tag);
    const load = await action(run, { mode: 'load' });
    expect(load.code, load.stdout + load.stderr).toBe(0);
    await expectTagNamesTarballImage(tag, await readFile(file));
    expect(load.outputs.tags).toBe(tag);
    return load;
  }

  it('a legacy docker-archive (Docker ≤ 24)', async () => {
    const tag = `${fixtureRepository}:legacy`;
    const image = await fixture(tag, 'legacy');
    const file = path.join(work, 'legacy.tar');
    await writeFile(file, await packTar(dockerArchiveEntries([image])));
    await roundTrip(file, tag, 'docker-archive');
  });

  it('the Docker 25+ layout (OCI layout plus manifest.json)', async () => {
    const tag = `${fixtureRepository}:docker25`;
    const image = await fixture(tag, 'docker25');
    const file = path.join(work, 'docker25.tar');
    await writeFile(file, await packTar(ociLayoutEntries([image], { docker25: true })));
    await roundTrip(file, tag, 'docker-oci');
  });

  it('a pure OCI layout with gzip layers (buildx type=oci), with a manifest.json written where the engine needs one', async () => {
    const tag = `${fixtureRepository}:oci`;
    const image = await fixture(tag, 'oci');
    const file = path.join(work, 'oci.tar');
    await writeFile(file, await packTar(ociLayoutEntries([image], { gzip: true })));
    // The artifact is the canonical archive: the OCI layout with the manifest.json that graph-driver engines (Docker
    // 20.10, and Docker 25+ without the containerd store) load through, whatever their API version.
    const load = await roundTrip(file, tag, 'docker-oci');
    expect(load.stdout).toContain('docker-oci (zstd)');
  });

  it('a skopeo oci-archive of an image from the engine', async () => {
    const tag = `${fixtureRepository}:skopeo`;
    fixtureTags.push(tag);
    await makeImage([tag]);
    const file = path.join(work, 'skopeo-oci.tar');
    await skopeoCopy(`docker-daemon:${tag}`, `oci-archive:${file}:${tag}`);
    await roundTrip(file, tag, 'docker-oci');
  });
});

describe('a zero-byte blob that claims a size (the lazily-filled layer cache)', () => {
  async function zeroByteLayerTarball(tag: string): Promise<string> {
    const image = await makeFixtureImage([tag], { seed: `zero ${randomBytes(8).toString('hex')}` });
    const layerHex = hex(sha256(image.layers[0]!));
    const entries = ociLayoutEntries([image], { docker25: true }).map((entry) =>
      entry.name === `blobs/sha256/${layerHex}` ? { ...entry, content: Buffer.alloc(0) } : entry,
    );
    const file = path.join(work, `zero-${randomBytes(4).toString('hex')}.tar`);
    await writeFile(file, await packTar(entries));
    return file;
  }

  it('is caught on the save side: nothing is uploaded', async () => {
    const tag = `${uniqueRepository('zero')}:1`;
    const run = ++runId;
    const result = await action(run, { mode: 'save', source: await zeroByteLayerTarball(tag), tags: tag }, NO_ENGINE);
    expectOneErrorLine(result, /zero-byte|0 bytes|empty/i);
    expect(service.artifacts(run)).toEqual([]);
  });

  it('is caught on the load side: nothing reaches the engine', async () => {
    const tag = `${uniqueRepository('zero')}:1`;
    const run = ++runId;
    await uploadAs(run, await zeroByteLayerTarball(tag), 'docker-image');
    const before = await engineState();
    const result = await action(run, { mode: 'load' });
    expectOneErrorLine(result, /zero-byte|0 bytes|empty/i);
    expect(await engineState()).toBe(before);
    expect(await imageId(tag)).toBeUndefined();

    // Nor, with load: false, does a decompressed copy of it stay behind for a scanner.
    const scan = await action(run, { mode: 'load', load: 'false' }, NO_ENGINE);
    expectOneErrorLine(scan, /zero-byte|0 bytes|empty/i);
    const downloads = await readdir(scan.runnerTemp);
    for (const entry of downloads.filter((name) => name.startsWith('artifact-'))) {
      expect(await readdir(path.join(scan.runnerTemp, entry))).toEqual(['docker-image']);
    }
  });
});

describe('matrix handoff', () => {
  it('three images saved under three names load back with one pattern step', async () => {
    const run = ++runId;
    const services = ['api', 'web', 'worker'];
    const images = new Map<string, { tag: string; id: string }>();
    for (const name of services) {
      const tag = `${uniqueRepository(name)}:pr-6`;
      images.set(name, { tag, id: await makeImage([tag]) });
      const result = await action(run, { mode: 'save', tags: tag, name: `docker-image-${name}` });
      expect(result.code, result.stdout + result.stderr).toBe(0);
    }
    // Not part of the matrix: the pattern must not pick it up.
    const other = path.join(work, 'coverage.txt');
    await writeFile(other, 'not an image');
    await uploadAs(run, other, 'coverage-report');

    const all = [...images.values()];
    await removeImages(...all.map((image) => image.tag));
    const result = await action(run, { mode: 'load', pattern: 'docker-image-*' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    for (const image of all) expect(await imageId(image.tag)).toBe(image.id);
    expect(result.outputs.tags!.split('\n').sort()).toEqual(all.map((image) => image.tag).sort());
    expect(result.outputs['artifact-name']!.split('\n').sort()).toEqual(services.map((name) => `docker-image-${name}`));
    expect(result.outputs.digest!.split('\n')).toHaveLength(3);
    await removeImages(...all.map((image) => image.tag));
  });

  it('a second save under the same name fails with the fix, and pattern with no match lists what exists', async () => {
    const run = ++runId;
    const first = await action(run, { mode: 'save', tags: keep, name: 'docker-image-api' });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const second = await action(run, { mode: 'save', tags: keep, name: 'docker-image-api' });
    expectOneErrorLine(second, /already exists.*`name`.*`overwrite`|already exists.*overwrite/);

    const none = await action(run, { mode: 'load', pattern: 'image-*' });
    expectOneErrorLine(none, /No artifact matches `pattern` image-\*.*docker-image-api/);
  });
});

describe('platform', () => {
  it('fails clearly on an engine without docker save --platform (Docker < 28), saving nothing', async (context) => {
    if (await engineApiAtLeast(1, 48)) context.skip('this engine has docker save --platform');
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: keep, platform: 'linux/amd64' });
    expectOneErrorLine(
      result,
      /`platform` needs `docker save --platform`.*API 1\.48\+.*this engine is Docker \S+ \(API 1\.\d+\)/,
    );
    expect(service.artifacts(run)).toEqual([]);
  });

  it('saves the one platform asked for on an engine with docker save --platform (Docker 28+)', async (context) => {
    if (!(await engineApiAtLeast(1, 48))) context.skip('this engine has no docker save --platform');
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: keep, platform: 'linux/amd64' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.platforms).toBe('linux/amd64');
  });

  it('with a multi-platform source tarball, checks the platform is in it and reports every platform', async () => {
    const tag = `${uniqueRepository('multi')}:1`;
    const amd64 = await makeFixtureImage([tag], { seed: 'amd64', platform: { os: 'linux', architecture: 'amd64' } });
    const arm64 = await makeFixtureImage([tag], {
      seed: 'arm64',
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    const file = path.join(work, 'multi.tar');
    await writeFile(file, await packTar(ociLayoutEntries([amd64, arm64], { nested: true })));

    const run = ++runId;
    const ok = await action(run, { mode: 'save', source: file, platform: 'linux/arm64' }, NO_ENGINE);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.outputs.platforms!.split('\n')).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(ok.summary).toContain('linux/arm64/v8');

    const missing = await action(
      run,
      { mode: 'save', source: file, platform: 'linux/s390x', name: 'other' },
      NO_ENGINE,
    );
    expectOneErrorLine(missing, /no image for `platform` linux\/s390x: it holds linux\/amd64, linux\/arm64\/v8/);
    expect(service.artifacts(run).map((item) => item.name)).toEqual(['docker-image']);
  });
});
