/**
 * The OCI layout for buildx, through the bundled action: load mode writes the verified images as a layout directory,
 * and the real buildx (the docker driver on the containerd-store engine, as docker/build-push-action runs it there)
 * builds FROM it through `--build-context base=oci-layout://DIR`, from a docker-archive artifact and from a
 * multi-platform one; skopeo reads the layout back. A layout appears only when every check passed: a tampered
 * artifact, a full disk or a cancellation leaves nothing, and a destination that holds something or cannot be written
 * is one line before anything is downloaded.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { startAction, type RunningAction } from '../support/action-process.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import {
  docker,
  dockerSave,
  imageId,
  makeImage,
  removeImages,
  repositoriesState,
  savesLegacyLayout,
  skopeoCopy,
  uniqueRepository,
} from '../support/engine.ts';
import { dockerArchiveEntries, makeImage as makeFixtureImage, packTar, unpackTar } from '../support/fixtures.ts';
import { NO_TARBALL_BUILDER, tarballBuilderHost } from '../support/images.ts';
import { withTmpfs } from '../support/mounts.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

const exec = promisify(execFile);
const MiB = 1024 * 1024;
const TEST_MS = 180_000;
const skopeo = process.env['HANDOFF_SKOPEO'] || 'skopeo';

const repository = uniqueRepository('oci-layout');
/** A single-platform base, handed on as a docker-archive. */
const archived = `${repository}:archive`;
/** A two-platform base with buildx's attestations, built as an OCI tarball. */
const multi = `${repository}-multi:1`;
/** A larger image, for the full disk and the cancellation. */
const big = `${repository}:big`;
/** Saved from the engine beside `archived`'s artifact in one run, for `pattern`. */
const fromEngine = `${repository}:engine`;

let service: ArtifactService;
let artifacts: typeof import('../../src/artifacts/index.ts');
const savedEnv = { ...process.env };
let work: string;
let builder: string | undefined;
let nextRun = 700;
/** Runs whose artifacts the tests load: `archive` (docker-archive), `multi` (two platforms), `big`. */
const runs = { archive: 0, multi: 0, big: 0, pair: 0 };
/** The diff_ids of each base image, per platform, read from the tarball that was saved. */
const baseLayers = new Map<string, string[]>();
let archiveFormat = '';

/** Runs buildx on the containerd-store engine, whatever engine the pass tests: the layout is only a directory. */
async function buildx(args: readonly string[]): Promise<string> {
  const { stdout } = await exec('docker', ['buildx', 'build', '--quiet', ...args], {
    env: { ...process.env, DOCKER_HOST: builder! },
    maxBuffer: 16 * MiB,
  });
  return stdout;
}

/** The diff_ids of every platform of `reference` in an image tarball, read with tar-stream and JSON.parse alone. */
async function diffIdsInTarball(file: string, reference: string): Promise<Map<string, string[]>> {
  const files = await unpackTar(await readFile(file));
  const json = <T>(name: string): T => JSON.parse(files.get(name)!.toString()) as T;
  const blob = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;
  type Config = { os: string; architecture: string; rootfs: { diff_ids: string[] } };
  const found = new Map<string, string[]>();
  const add = (config: Config) => found.set(`${config.os}/${config.architecture}`, config.rootfs.diff_ids);
  if (!files.has('index.json')) {
    const [item] = json<Array<{ Config: string; RepoTags: string[] }>>('manifest.json');
    add(json<Config>(item!.Config));
    return found;
  }
  type Descriptor = { digest: string; annotations?: Record<string, string>; manifests?: Descriptor[] };
  const top = json<{ manifests: Descriptor[] }>('index.json').manifests.find(
    (entry) => entry.annotations?.['io.containerd.image.name'] === `${reference}`,
  )!;
  const walk = (digest: string) => {
    const document = json<{ manifests?: Descriptor[]; config?: { digest: string } }>(blob(digest));
    for (const child of document.manifests ?? []) walk(child.digest);
    if (document.config) {
      const config = json<Config>(blob(document.config.digest));
      if (config.os !== 'unknown') add(config);
    }
  };
  walk(top.digest);
  return found;
}

/** The diff_ids of the one image buildx wrote as an OCI layout directory. */
async function diffIdsInLayout(directory: string): Promise<string[]> {
  const json = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;
  const blob = (digest: string) => path.join(directory, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const [entry] = (await json<{ manifests: Array<{ digest: string }> }>(path.join(directory, 'index.json'))).manifests;
  const manifest = await json<{ config: { digest: string } }>(blob(entry!.digest));
  return (await json<{ rootfs: { diff_ids: string[] } }>(blob(manifest.config.digest))).rootfs.diff_ids;
}

/** Saves the tarball `file` as the artifact of a new run, through the action's own save mode. */
async function saveSource(file: string): Promise<{ run: number; result: ActionRun }> {
  const run = ++nextRun;
  const result = await runAction({ mode: 'save', source: file }, service.env(run));
  expect(result.code, result.stdout).toBe(0);
  return { run, result };
}

/** What is in `directory` besides `keep`: a layout, or a partial one, left where it should not be. */
async function leftOver(directory: string, ...keep: string[]): Promise<string[]> {
  return (await readdir(directory)).filter((name) => !keep.includes(name));
}

/** A Dockerfile FROM the named context `base`, adding one layer. */
async function appContext(): Promise<string> {
  const context = await mkdtemp(path.join(work, 'app-'));
  await writeFile(path.join(context, 'app.txt'), `built on the handed image ${Math.random()}\n`);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM base\nCOPY app.txt /app.txt\n');
  return context;
}

beforeAll(async () => {
  service = await startArtifactService();
  // A tarball the action refuses to save is uploaded through the library in-process, as another step could.
  Object.assign(process.env, service.env(1));
  artifacts = await import('../../src/artifacts/index.ts');
  work = await mkdtemp(path.join(tmpdir(), 'handoff-oci-layout-'));
  builder = await tarballBuilderHost();

  // A docker-archive: Docker 20.10's own `docker save`, or skopeo's docker-archive from a newer engine.
  await makeImage([archived], { randomBytes: 64 * 1024 });
  const archive = path.join(work, 'archive.tar');
  if (await savesLegacyLayout()) await dockerSave(archive, archived);
  else await skopeoCopy(`docker-daemon:${archived}`, `docker-archive:${archive}:${archived}`);
  baseLayers.set(archived, (await diffIdsInTarball(archive, archived)).get('linux/amd64')!);
  const saved = await saveSource(archive);
  runs.archive = saved.run;
  archiveFormat = saved.result.outputs['format']!;
  // Two artifacts of one run: the docker-archive again, and an image saved from the engine.
  runs.pair = ++nextRun;
  await makeImage([fromEngine]);
  const pair: Array<Record<string, string>> = [
    { source: archive, name: 'base-archive' },
    { tags: fromEngine, name: 'base-engine' },
  ];
  for (const inputs of pair) {
    const result = await runAction({ mode: 'save', ...inputs }, service.env(runs.pair));
    expect(result.code, result.stdout).toBe(0);
  }

  if (builder) {
    const context = await mkdtemp(path.join(work, 'multi-'));
    await writeFile(path.join(context, 'base.txt'), `a multi-platform base ${Math.random()}\n`);
    await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY base.txt /base.txt\n');
    const tarball = path.join(work, 'multi.tar');
    // buildx's defaults: a provenance attestation beside each platform.
    await buildx([
      '--platform',
      'linux/amd64,linux/arm64',
      '--output',
      `type=oci,dest=${tarball}`,
      '--tag',
      multi,
      context,
    ]);
    for (const [platform, diffIds] of await diffIdsInTarball(tarball, multi)) {
      baseLayers.set(`${multi} ${platform}`, diffIds);
    }
    runs.multi = (await saveSource(tarball)).run;
  }

  await makeImage([big], { randomBytes: 24 * MiB });
  const bigRun = ++nextRun;
  const result = await runAction({ mode: 'save', tags: big, compression: 'none' }, service.env(bigRun));
  expect(result.code, result.stdout).toBe(0);
  runs.big = bigRun;
}, TEST_MS);

afterAll(async () => {
  process.env = savedEnv;
  await removeImages(archived, big, fromEngine);
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

describe('buildx builds FROM the handed image through oci-layout://', () => {
  it(
    'from a docker-archive artifact, written beside the engine load',
    async (context) => {
      expect(archiveFormat).toBe('docker-archive');
      const layout = path.join(work, 'from-archive', 'base');
      await removeImages(archived);
      const result = await runAction({ mode: 'load', 'oci-layout': layout }, service.env(runs.archive));
      expect(result.code, result.stdout).toBe(0);
      expect(result.outputs['oci-layout']).toBe(layout);
      expect(await imageId(archived)).toBeDefined();
      expect(result.stdout).toContain(`\`oci-layout://${layout}:archive\`: \`${archived}\``);
      expect(result.stdout).toContain(`\`oci-layout://${layout}\` alone: sha256:`);
      expect(await leftOver(path.dirname(layout), 'base')).toEqual([]);

      // skopeo reads it and checks every blob it copies against its digest.
      const inspected = JSON.parse((await exec(skopeo, ['inspect', `oci:${layout}:archive`])).stdout) as {
        Layers: string[];
      };
      expect(inspected.Layers).toEqual(baseLayers.get(archived));
      await exec(skopeo, ['copy', '-q', `oci:${layout}:archive`, `dir:${path.join(work, 'from-archive', 'copy')}`]);

      if (!builder) context.skip(NO_TARBALL_BUILDER);
      const built = path.join(work, 'from-archive', 'app');
      // With one image under one tag, the directory alone names it.
      await buildx([
        '--build-context',
        `base=oci-layout://${layout}`,
        '--provenance=false',
        '--output',
        `type=oci,tar=false,dest=${built}`,
        await appContext(),
      ]);
      const layers = await diffIdsInLayout(built);
      expect(layers.slice(0, -1)).toEqual(baseLayers.get(archived));
      expect(layers).toHaveLength(baseLayers.get(archived)!.length + 1);
    },
    TEST_MS,
  );

  it(
    'from a multi-platform artifact with attestations, alone (load: false), for each platform',
    async (context) => {
      if (!builder) context.skip(NO_TARBALL_BUILDER);
      const layout = path.join(work, 'from-multi');
      await mkdir(layout);
      const result = await runAction(
        { mode: 'load', load: 'false', decompress: 'false', 'oci-layout': layout },
        service.env(runs.multi),
      );
      expect(result.code, result.stdout).toBe(0);
      expect(result.outputs['oci-layout']).toBe(layout);
      // The artifact as downloaded; no plain tar beside it.
      expect(await readdir(path.dirname(result.outputs['tarball']!))).toEqual([
        path.basename(result.outputs['tarball']!),
      ]);

      const index = JSON.parse((await exec(skopeo, ['inspect', '--raw', `oci:${layout}:1`])).stdout) as {
        manifests: Array<{ platform: { os: string; architecture: string } }>;
      };
      expect(index.manifests.map(({ platform }) => `${platform.os}/${platform.architecture}`).sort()).toEqual([
        'linux/amd64',
        'linux/arm64',
        'unknown/unknown',
        'unknown/unknown',
      ]);
      await exec(skopeo, [
        'copy',
        '-q',
        '--multi-arch',
        'all',
        `oci:${layout}:1`,
        `oci:${path.join(work, 'multi-copy')}:1`,
      ]);

      for (const platform of ['linux/amd64', 'linux/arm64']) {
        const built = path.join(work, `from-multi-${platform.replace('/', '-')}`);
        await buildx([
          '--platform',
          platform,
          '--build-context',
          `base=oci-layout://${layout}:1`,
          '--provenance=false',
          '--output',
          `type=oci,tar=false,dest=${built}`,
          await appContext(),
        ]);
        const base = baseLayers.get(`${multi} ${platform}`)!;
        const layers = await diffIdsInLayout(built);
        expect(layers.slice(0, -1), platform).toEqual(base);
        expect(layers).toHaveLength(base.length + 1);
      }
    },
    TEST_MS,
  );
});

describe('several artifacts (`pattern`) in one layout', () => {
  it.each([
    ['beside the engine load', 'true'],
    ['alone, each artifact also handed on as a plain tar', 'false'],
  ])(
    '%s',
    async (_case, load) => {
      const layout = path.join(work, `pattern-${load}`);
      const diffIds = new Map([
        ['archive', baseLayers.get(archived)],
        ['engine', JSON.parse(await docker('image', 'inspect', '--format', '{{json .RootFS.Layers}}', fromEngine))],
      ]);
      if (load === 'true') await removeImages(archived, fromEngine);
      const result = await runAction(
        { mode: 'load', pattern: 'base-*', load, 'oci-layout': layout },
        service.env(runs.pair),
      );
      expect(result.code, result.stdout).toBe(0);
      expect(result.outputs['oci-layout']).toBe(layout);
      expect(result.stdout).toMatch(/OCI layout written: `.*` \(2 images, \d+ blobs\)/);
      expect(result.stdout).toContain(`\`oci-layout://${layout}\` alone names no image`);
      for (const [tag, expected] of diffIds) {
        const config = JSON.parse((await exec(skopeo, ['inspect', '--config', `oci:${layout}:${tag}`])).stdout) as {
          rootfs: { diff_ids: string[] };
        };
        expect(config.rootfs.diff_ids, tag).toEqual(expected);
      }
      if (load === 'true') for (const tag of [archived, fromEngine]) expect(await imageId(tag), tag).toBeDefined();
      else {
        // The plain tars the same reads wrote.
        for (const tarball of result.outputs['tarball']!.split('\n')) {
          expect((await exec('tar', ['-tf', tarball])).stdout).toMatch(/manifest\.json/);
        }
      }
    },
    TEST_MS,
  );
});

describe('a layout only of verified bytes, or none', () => {
  it.each([
    ['beside the engine load', 'true'],
    ['alone', 'false'],
  ])(
    'a tampered artifact (%s) leaves no directory, and nothing is loaded',
    async (_case, load) => {
      const image = await makeFixtureImage([`${repository}:tampered`], { seed: 'tampered' });
      // The second layer is not the one the config's diff_id names: the artifact's own digest is right.
      image.layers[1] = Buffer.concat([image.layers[1]!.subarray(0, 512), Buffer.alloc(1536)]);
      const file = path.join(work, 'tampered.tar');
      await writeFile(file, await packTar(dockerArchiveEntries([image])));
      const run = ++nextRun;
      const uploaded = await runAction({ mode: 'save', source: file }, service.env(run));
      // Refused already on the save side; uploaded by hand, as another step could.
      expect(uploaded.code).toBe(1);
      const env = service.env(run);
      Object.assign(process.env, env);
      await artifacts.uploadFile(file, 'docker-image', { overwrite: false });
      const parent = path.join(work, `tampered-${load}`);
      await mkdir(parent);
      const before = await repositoriesState();
      const result = await runAction({ mode: 'load', load, 'oci-layout': path.join(parent, 'layout') }, env);
      expectOneErrorLine(result, /diff_id/);
      expect(await leftOver(parent)).toEqual([]);
      expect(await repositoriesState()).toBe(before);
    },
    TEST_MS,
  );

  it.for([
    // Measured free before it is written: the layout's own line.
    [
      'the layout alone',
      'size=4m',
      { load: 'false' },
      /^Not enough disk space for the OCI layout `.*layout`: .*set `oci-layout` to a larger disk\.$/,
    ],
    // The download and the layout fill one disk as they go: whichever write meets ENOSPC says so (or the layout's
    // measure, when the download was complete before the layout began).
    [
      'the download and the layout, beside the engine load',
      'size=36m',
      { load: 'true', decompress: 'false', path: 'MOUNT' },
      new RegExp(
        '^(?:Ran out of disk space (?:writing the OCI layout `.*layout`|downloading `.*`) \\(.* free there now\\):|' +
          'Not enough disk space for the OCI layout `.*layout`: .* free there;) free space on the runner or set ' +
          '`(?:oci-layout|path)` to a larger disk\\.$',
      ),
    ],
  ] as Array<[string, string, Record<string, string>, RegExp]>)(
    'a full disk (%s) is one line, and leaves nothing',
    { timeout: TEST_MS },
    async ([, size, inputs, message], context) => {
      await withTmpfs(size, context, async (mountPoint) => {
        const before = await repositoriesState();
        const given = Object.entries(inputs).map(([name, value]) => [name, value.replace('MOUNT', mountPoint)]);
        const result = await runAction(
          { mode: 'load', ...Object.fromEntries(given), 'oci-layout': path.join(mountPoint, 'layout') },
          service.env(runs.big),
        );
        expectOneErrorLine(result, message);
        expect(await readdir(mountPoint)).toEqual([]);
        expect(await repositoriesState()).toBe(before);
      });
    },
  );

  it(
    'a cancellation mid-read leaves nothing',
    async () => {
      const slow = await startArtifactService({ rate: { download: 4e6 } });
      let action: RunningAction | undefined;
      try {
        const run = ++nextRun;
        const saved = await runAction({ mode: 'save', tags: big, compression: 'none' }, slow.env(run));
        expect(saved.code, saved.stdout).toBe(0);
        const parent = path.join(work, 'cancelled');
        await mkdir(parent);
        action = await startAction(
          { mode: 'load', load: 'false', 'oci-layout': path.join(parent, 'layout') },
          slow.env(run),
        );
        // Once the layout's blobs are being written.
        const writing = async () => {
          for (const name of await readdir(parent)) {
            const blobs = path.join(parent, name, 'blobs', 'sha256');
            for (const blob of await readdir(blobs).catch(() => [])) {
              if (((await stat(path.join(blobs, blob)).catch(() => undefined))?.size ?? 0) > 2 * MiB) return true;
            }
          }
          return false;
        };
        const deadline = performance.now() + 60_000;
        while (!(await writing()) && performance.now() < deadline && action.child.exitCode === null) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(await writing(), action.stdout()).toBe(true);
        action.child.kill('SIGTERM');
        const step = await action.ended;
        expect(step.error).toMatch(/cancelled \(SIGTERM\).*removing the partial OCI layout/);
        expect(await leftOver(parent)).toEqual([]);
      } finally {
        await action?.killAll();
        await slow.close();
      }
    },
    TEST_MS,
  );
});

describe('the destination, checked before anything is downloaded', () => {
  it('holding something already is one line', async () => {
    const layout = path.join(work, 'occupied');
    await mkdir(layout);
    await writeFile(path.join(layout, 'notes.txt'), 'mine');
    const before = service.requests().length;
    const result = await runAction({ mode: 'load', 'oci-layout': layout }, service.env(runs.archive));
    expectOneErrorLine(
      result,
      /^`oci-layout` `.*occupied` already holds `notes\.txt`: expected a new or empty directory.*set `oci-layout` to a new path, or empty it first\.$/,
    );
    expect(service.requests().length).toBe(before);
    expect(await readdir(layout)).toEqual(['notes.txt']);
  });

  it('a file is one line', async () => {
    const layout = path.join(work, 'a-file');
    await writeFile(layout, 'mine');
    const result = await runAction({ mode: 'load', 'oci-layout': layout }, service.env(runs.archive));
    expectOneErrorLine(result, /^`oci-layout` `.*a-file` is a file: expected a new or empty directory/);
  });

  it('a place that cannot be written is one line', async (context) => {
    await withTmpfs('ro,size=1m', context, async (mountPoint) => {
      const before = service.requests().length;
      const result = await runAction(
        { mode: 'load', 'oci-layout': path.join(mountPoint, 'layout') },
        service.env(runs.archive),
      );
      expectOneErrorLine(result, /^Cannot write to `.*` \(EROFS\): set `oci-layout` to a writable directory\.$/);
      expect(service.requests().length).toBe(before);
    });
  });
});
