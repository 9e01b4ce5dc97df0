/**
 * `engine: podman` through the bundled action, against Debian's podman for real: save from podman's store, load
 * back into it. Podman runs daemonless with its own store in a temp directory (vfs, file events, cgroupfs), set
 * through the containers.conf / storage.conf variables it reads, so the test needs no system configuration.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { engineKind, imageId, makeImage, removeImages, uniqueRepository } from '../support/engine.ts';
import { engineConfigDigest } from '../support/images.ts';

const exec = promisify(execFile);
let service: ArtifactService;
let work: string;
let podmanEnv: Record<string, string>;
let runId = 900;
const repository = uniqueRepository('podman');
const tags = [`${repository}:pr-7`, `${repository}:sha-7777777`];
let id: string;

async function podman(...args: string[]): Promise<string> {
  const { stdout } = await exec('podman', args, { env: { ...process.env, ...podmanEnv }, maxBuffer: 1 << 26 });
  return stdout;
}

async function podmanImageId(reference: string): Promise<string | undefined> {
  try {
    return (await podman('image', 'inspect', '--format', '{{.Id}}', reference)).trim();
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-podman-'));
  await writeFile(
    path.join(work, 'storage.conf'),
    `[storage]\ndriver = "vfs"\ngraphroot = "${work}/root"\nrunroot = "${work}/run"\n`,
  );
  await writeFile(
    path.join(work, 'containers.conf'),
    '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n',
  );
  podmanEnv = {
    CONTAINERS_STORAGE_CONF: path.join(work, 'storage.conf'),
    CONTAINERS_CONF: path.join(work, 'containers.conf'),
  };
  id = await makeImage(tags, { engine: 'podman', env: podmanEnv });
});

afterAll(async () => {
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

function action(run: number, inputs: Record<string, string>): Promise<ActionRun> {
  return runAction({ engine: 'podman', ...inputs }, { ...service.env(run), ...podmanEnv });
}

describe('engine: podman', () => {
  it('saves from podman, and loads back into it with the same image ID', async () => {
    const run = ++runId;
    const saved = await action(run, { mode: 'save', tags: tags.join('\n') });
    expect(saved.code, saved.stdout + saved.stderr).toBe(0);
    expect(saved.outputs.tags!.split('\n')).toEqual(tags);
    expect(saved.outputs['image-id']).toContain(id.replace(/^sha256:/, ''));

    await podman('rmi', '--force', ...tags);
    expect(await podmanImageId(tags[0]!)).toBeUndefined();

    const loaded = await action(run, { mode: 'load', 'expected-digest': saved.outputs.digest! });
    expect(loaded.code, loaded.stdout + loaded.stderr).toBe(0);
    // In the order the tarball records them, which is podman's, not the order given to save.
    expect(loaded.outputs.tags!.split('\n').sort()).toEqual([...tags].sort());
    for (const tag of tags) expect(await podmanImageId(tag)).toBe(id.replace(/^sha256:/, ''));
  });

  it('names what podman has when a tag is missing', async () => {
    const result = await action(++runId, { mode: 'save', tags: `${repository}:pr-8` });
    expect(result.code).toBe(1);
    expect(result.error).toMatch(/not in the podman engine/);
    expect(result.stdout).toContain(tags[0]);
  });
});

describe('engine: podman and platform', () => {
  it('fails clearly, since podman save has no --platform', async () => {
    const run = ++runId;
    const result = await action(run, { mode: 'save', tags: tags[0]!, platform: 'linux/amd64' });
    expect(result.code).toBe(1);
    expect(result.error).toMatch(/podman does not have/);
    expect(service.artifacts(run)).toEqual([]);
  });
});

describe('between engines', () => {
  it('an artifact saved from podman loads into docker, and one saved from docker into podman', async () => {
    const run = ++runId;
    const fromPodman = await action(run, { mode: 'save', tags: tags[0]!, name: 'from-podman' });
    expect(fromPodman.code, fromPodman.stdout + fromPodman.stderr).toBe(0);
    const intoDocker = await runAction({ mode: 'load', name: 'from-podman' }, service.env(run));
    expect(intoDocker.code, intoDocker.stdout + intoDocker.stderr).toBe(0);
    // Podman's image ID is the config digest; the containerd store names the image it rebuilt from a docker-archive by
    // a new manifest digest, so there the config is what must match.
    if ((await engineKind()) === 'containerd') expect(await engineConfigDigest(tags[0]!)).toBe(normalized(id));
    else expect(await imageId(tags[0]!)).toBe(normalized(id));

    const dockerTag = `${uniqueRepository('docker-to-podman')}:1`;
    const dockerId = await makeImage([dockerTag]);
    try {
      const fromDocker = await runAction({ mode: 'save', tags: dockerTag, name: 'from-docker' }, service.env(run));
      expect(fromDocker.code, fromDocker.stdout + fromDocker.stderr).toBe(0);
      const intoPodman = await action(run, { mode: 'load', name: 'from-docker' });
      expect(intoPodman.code, intoPodman.stdout + intoPodman.stderr).toBe(0);
      expect(normalized((await podmanImageId(dockerTag))!)).toBe(await engineConfigDigest(dockerTag));
      if ((await engineKind()) !== 'containerd') expect(await engineConfigDigest(dockerTag)).toBe(dockerId);
    } finally {
      await removeImages(tags[0]!, dockerTag);
    }
  });
});

function normalized(imageId: string): string {
  return imageId.startsWith('sha256:') ? imageId : `sha256:${imageId}`;
}
