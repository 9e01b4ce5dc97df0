/**
 * What the current engines really do, through the bundled action: buildx as the producer (`--load` with its default
 * provenance attestation, two platforms, `-o type=docker|oci`), podman's docker-archive, skopeo's oci-archive, and
 * `platform`. The same file runs on every engine (scripts/test.sh runs the suite once per engine); it asserts what the
 * engine in DOCKER_HOST does, and skips only what that engine cannot do, saying what it lacks.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import {
  docker,
  engineApiAtLeast,
  engineInfo,
  engineKind,
  imageId,
  makeImage,
  podmanStoreArgs,
  removeImages,
  skopeoCopy,
  uniqueRepository,
} from '../support/engine.ts';
import {
  buildxLoad,
  buildxLoadTwoPlatforms,
  buildxTarball,
  engineConfigDigest,
  expectTagNamesTarballImage,
  NO_TARBALL_BUILDER,
  tarballBuilderHost,
} from '../support/images.ts';
import { retagAfterLoad } from '../support/retag.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

const exec = promisify(execFile);
const NO_ENGINE = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
const INDEX = 'application/vnd.oci.image.index.v1+json';
const NO_SAVE_PLATFORM = 'this engine has no docker save --platform (API 1.48+, Docker 28)';
let service: ArtifactService;
let work: string;
let runId = 3000;
const created: string[] = [];

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-engines-'));
  const engine = await engineInfo();
  console.log(`engine under test: ${engine.kind} (Docker ${engine.version}, API ${engine.api})`);
});

afterAll(async () => {
  await removeImages(...created);
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

function action(run: number, inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
  return runAction(inputs, { ...service.env(run), ...env });
}

function expectSuccess(result: ActionRun): void {
  expect(result.code, result.stdout + result.stderr).toBe(0);
}

function repositoryTags(prefix: string, ...names: string[]): string[] {
  const repository = uniqueRepository(prefix);
  const tags = names.map((name) => `${repository}:${name}`);
  created.push(...tags);
  return tags;
}

async function filesIn(directory: string): Promise<string[]> {
  return (await readdir(directory)).filter((file) => !['github_output', 'step_summary'].includes(file));
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * save → docker rmi → load → load: false, asserting every tag names the image saved, and that `image-id` is the
 * ID `docker image inspect` shows, the same in all three steps.
 */
async function handOff(
  tags: readonly string[],
  id: string,
  platforms: readonly string[],
): Promise<{ saved: ActionRun; loaded: ActionRun }> {
  const run = ++runId;
  const saved = await action(run, { mode: 'save', tags: tags.join('\n') });
  expectSuccess(saved);
  expect(saved.outputs['image-id'], 'image-id in save mode').toBe(id);
  expect(saved.outputs.platforms!.split('\n')).toEqual(platforms);

  await removeImages(...tags);
  for (const tag of tags) expect(await imageId(tag)).toBeUndefined();

  const loaded = await action(run, { mode: 'load' });
  expectSuccess(loaded);
  for (const tag of tags) expect(await imageId(tag), tag).toBe(id);
  expect(loaded.outputs['image-id'], 'image-id in load mode').toBe(id);
  expect(loaded.outputs.tags!.split('\n').sort()).toEqual([...tags].sort());

  // load: false needs no engine, but asks the one there is what it would show.
  const scanned = await action(run, { mode: 'load', load: 'false' });
  expectSuccess(scanned);
  expect(scanned.outputs['image-id'], 'image-id with load: false').toBe(id);
  return { saved, loaded };
}

/** The log counts images and their platforms ("1 image, 2 platforms"), never "image(s)". */
function expectImageCount(result: ActionRun, count: RegExp): void {
  expect(result.stdout).toMatch(count);
  expect(result.stdout).not.toContain('image(s)');
}

describe('a buildx --load image with its default attestation', () => {
  it('goes save → docker rmi → load, every tag naming the image saved, with one image-id in every mode', async () => {
    const tags = repositoryTags('buildx', 'pr-1', 'sha-abc1234');
    const id = await buildxLoad(tags);
    if ((await engineInfo()).kind === 'containerd') {
      // The premise: on the containerd store the image is an index (the platform's manifest and the attestation's).
      const descriptor = await docker('image', 'inspect', '--format', '{{.Descriptor.MediaType}}', tags[0]!);
      expect(descriptor.trim()).toBe(INDEX);
    }
    const { saved, loaded } = await handOff(tags, id, ['linux/amd64']);
    for (const result of [saved, loaded]) expectImageCount(result, /\b1 image, 1 platform\b/);
  });

  it('a tag moved to another image between the load and the check fails, naming that tag only', async () => {
    const tags = repositoryTags('buildx-retag', 'pr-1', 'sha-abc1234');
    const [other] = repositoryTags('buildx-other', 'pr-1');
    await buildxLoad(tags);
    const otherId = await buildxLoad([other!]);
    const run = ++runId;
    expectSuccess(await action(run, { mode: 'save', tags: tags.join('\n') }));
    await removeImages(...tags);

    const result = await action(run, { mode: 'load' }, await retagAfterLoad(other!, tags[1]!));
    expectOneErrorLine(result, /do not name the image in the tarball/);
    expect(result.error).toMatch(new RegExp(`${escape(tags[1]!)} is ${otherId}`));
    // The tag that still names the saved image is not reported: the failure is the move, not the engine's ID scheme.
    expect(result.error).not.toContain(`${tags[0]} is`);
    // A check that fails leaves the engine as it was before the load: neither tag existed then.
    expect(result.error).toContain('The tags are put back as they were.');
    for (const tag of tags) expect(await imageId(tag), tag).toBeUndefined();
    expect(await imageId(other!)).toBe(otherId);
  });
});

describe('a two-platform buildx image (linux/amd64 and linux/arm64)', () => {
  const tags = repositoryTags('buildx-multi', 'pr-2', 'sha-def5678');
  let built: Promise<{ id: string } | { refused: string }> | undefined;
  /** Built once, by the first test that needs it; an engine that cannot hold it is named in each skip. */
  async function twoPlatformImage(context: { skip: (note: string) => void }): Promise<string> {
    built ??= buildxLoadTwoPlatforms(tags);
    const result = await built;
    if ('refused' in result) {
      context.skip(`this engine cannot load a multi-platform image (${result.refused})`);
      throw new Error('unreachable: skipped');
    }
    if ((await imageId(tags[0]!)) !== result.id) for (const tag of tags) await docker('tag', result.id, tag);
    return result.id;
  }

  it('is saved whole without `platform` and loads back under the same ID', async (context) => {
    const id = await twoPlatformImage(context);
    const { saved, loaded } = await handOff(tags, id, ['linux/amd64', 'linux/arm64']);
    for (const result of [saved, loaded]) expectImageCount(result, /\b1 image, 2 platforms\b/);
  });

  it('with `platform`, saves that one platform', async (context) => {
    if (!(await engineApiAtLeast(1, 48))) context.skip(NO_SAVE_PLATFORM);
    await twoPlatformImage(context);
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: tags[0]!, platform: 'linux/arm64' });
    expectSuccess(result);
    expect(result.outputs.platforms).toBe('linux/arm64');
    expect(service.artifacts(run)).toHaveLength(1);
  });

  it('with a `platform` it lacks, fails clearly and uploads nothing', async (context) => {
    if (!(await engineApiAtLeast(1, 48))) context.skip(NO_SAVE_PLATFORM);
    await twoPlatformImage(context);
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: tags[0]!, platform: 'linux/s390x' });
    expectOneErrorLine(result, /linux\/s390x/);
    // The platform `docker image inspect` shows for the tag; the CLI names one platform per tag, not all of them.
    expect(result.error).toMatch(/linux\/amd64/);
    expect(service.artifacts(run)).toEqual([]);
    expect(await filesIn(result.runnerTemp)).toEqual([]);
  });
});

describe('platform on a single-platform buildx image', () => {
  const tags = repositoryTags('buildx-platform', 'pr-3');
  let id: string;

  it('saves the platform the image has', async (context) => {
    if (!(await engineApiAtLeast(1, 48))) context.skip(NO_SAVE_PLATFORM);
    id = await buildxLoad(tags);
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: tags[0]!, platform: 'linux/amd64' });
    expectSuccess(result);
    expect(result.outputs.platforms).toBe('linux/amd64');
    // The image the tarball holds, as an engine of this kind names it once loaded: on the containerd image store the
    // platform's manifest (the tarball names no index), elsewhere its config, the ID the engine already shows.
    await removeImages(tags[0]!);
    const loaded = await action(run, { mode: 'load' });
    expectSuccess(loaded);
    expect(result.outputs['image-id']).toBe(loaded.outputs['image-id']);
    expect(result.outputs['image-id']).toBe(await imageId(tags[0]!));
    if ((await engineKind()) !== 'containerd') expect(result.outputs['image-id']).toBe(id);
  });

  it('fails clearly on a platform the image lacks, uploading nothing', async (context) => {
    if (!(await engineApiAtLeast(1, 48))) context.skip(NO_SAVE_PLATFORM);
    if ((await imageId(tags[0]!)) === undefined) await buildxLoad(tags);
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: tags[0]!, platform: 'linux/arm64' });
    expectOneErrorLine(result, /linux\/arm64/);
    expect(result.error).toMatch(/linux\/amd64/);
    expect(service.artifacts(run)).toEqual([]);
    expect(await filesIn(result.runnerTemp)).toEqual([]);
  });
});

/** `source` → artifact → docker rmi → load; the tag must name the image the tarball holds, as this engine names it. */
async function sourceHandOff(file: string, tag: string, format: string): Promise<void> {
  const run = ++runId;
  const saved = await action(run, { mode: 'save', source: file, tags: tag }, NO_ENGINE);
  expectSuccess(saved);
  expect(saved.outputs.format).toBe(format);
  await removeImages(tag);
  const loaded = await action(run, { mode: 'load' });
  expectSuccess(loaded);
  expect(loaded.outputs.tags).toBe(tag);
  await expectTagNamesTarballImage(tag, await readFile(file));
  // image-id is what the engine shows for the tag after the load, in load mode and with load: false alike.
  const shown = await imageId(tag);
  expect(loaded.outputs['image-id'], 'image-id in load mode').toBe(shown);
  const scanned = await action(run, { mode: 'load', load: 'false' });
  expectSuccess(scanned);
  if (format === 'docker-archive' && (await engineKind()) === 'containerd') {
    // The one documented exception (README, Outputs): the containerd store writes its own manifest for a
    // docker-archive when it loads one, so before a load image-id is the config digest.
    expect(scanned.outputs['image-id'], 'image-id with load: false').toBe(saved.outputs['image-id']);
    expect(scanned.outputs['image-id']).toBe(await engineConfigDigest(tag));
  } else {
    expect(scanned.outputs['image-id'], 'image-id with load: false').toBe(shown);
  }
}

describe('tarballs from other producers, through `source`', () => {
  it.for([
    // The artifact is the canonical archive: an OCI layout with the manifest.json engines without the containerd
    // image store need, whatever the producer wrote.
    ['oci', 'docker-oci'],
    ['docker', 'docker-oci'],
  ] as const)('a buildx -o type=%s tarball', async ([type, format], context) => {
    const host = await tarballBuilderHost();
    if (!host) context.skip(NO_TARBALL_BUILDER);
    const [tag] = repositoryTags(`buildx-${type}`, '1');
    const file = path.join(work, `buildx-${type}.tar`);
    await buildxTarball(type, file, [tag!], host!);
    await sourceHandOff(file, tag!, format);
  });

  it('a skopeo oci-archive of an image from the engine', async () => {
    const [tag] = repositoryTags('skopeo-oci', '1');
    await makeImage([tag!]);
    const file = path.join(work, 'skopeo-oci.tar');
    await skopeoCopy(`docker-daemon:${tag}`, `oci-archive:${file}:${tag}`);
    await sourceHandOff(file, tag!, 'docker-oci');
  });

  it('a podman docker-archive (the layout of Docker 20.10 and skopeo)', async () => {
    const [tag] = repositoryTags('podman-archive', '1');
    const store = path.join(work, 'podman');
    const podmanArgs = podmanStoreArgs(store);
    const rootfs = path.join(work, 'podman-rootfs.tar');
    const source = path.join(work, 'podman-rootfs');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'hello.txt'), `podman image ${tag}\n`);
    await exec('tar', ['-C', source, '-cf', rootfs, '.']);
    await exec('podman', [...podmanArgs, 'import', '-q', rootfs, tag!]);
    const file = path.join(work, 'podman-docker.tar');
    await exec('podman', [...podmanArgs, 'save', '-q', '--format', 'docker-archive', '-o', file, tag!]);
    await sourceHandOff(file, tag!, 'docker-archive');
  });
});
