/**
 * Tarballs from the real producers: Docker 20.10 `docker save`, skopeo and podman in both their layouts, and the
 * Docker 25+ and multi-platform layouts rebuilt from a real save's layers. Each must verify and report the
 * references and platforms its producer wrote; and Docker 20.10 must load a pure OCI layout once the
 * manifest.json it lacks is appended.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCanonicalWriter } from '../../src/archive/canonical.ts';
import {
  docker,
  dockerSave,
  engineKind,
  imageId,
  makeImage,
  podmanStoreArgs,
  removeImages,
  savesLegacyLayout,
  skopeoCopy,
  uniqueRepository,
} from '../support/engine.ts';
import { engineConfigDigest } from '../support/images.ts';
import {
  forPlatform,
  imagesOfDockerArchive,
  inspectBuffer,
  ociLayoutEntries,
  packTar,
  sha256,
} from '../support/fixtures.ts';

const run = promisify(execFile);
const repository = uniqueRepository('formats');
const base = `${repository}-base:1`;
const app = `${repository}:1`;
const loaded = `${repository}-from-oci:1`;
let work: string;
let podmanArgs: string[];
let appConfig: string;
let baseConfig: string;

async function file(name: string): Promise<Buffer> {
  return readFile(path.join(work, name));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'handoff-formats-'));
  podmanArgs = podmanStoreArgs(path.join(work, 'podman'));
  await makeImage([base]);
  // A classic-builder image on top of the imported one: two layers, one of them shared with `base`.
  const context = path.join(work, 'context');
  await mkdir(context);
  await writeFile(path.join(context, 'added.txt'), 'added by the classic builder\n');
  await writeFile(path.join(context, 'Dockerfile'), `FROM ${base}\nCOPY added.txt /added.txt\n`);
  await run('docker', ['build', '-q', '-t', app, context], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  await dockerSave(path.join(work, 'docker-save.tar'), app, base);
  // The image ID is the config digest only on graph-driver engines: the tarballs record configs.
  appConfig = await engineConfigDigest(app);
  baseConfig = await engineConfigDigest(base);
  await skopeoCopy(`docker-daemon:${app}`, `docker-archive:${work}/skopeo-docker.tar:${app}`);
  await skopeoCopy(`docker-daemon:${app}`, `oci-archive:${work}/skopeo-oci.tar:${app}`);
  await run('podman', [...podmanArgs, 'load', '-q', '-i', `${work}/docker-save.tar`]);
  await run('podman', [
    ...podmanArgs,
    'save',
    '-q',
    '--format',
    'docker-archive',
    '-o',
    `${work}/podman-docker.tar`,
    app,
  ]);
  await run('podman', [...podmanArgs, 'save', '-q', '--format', 'oci-archive', '-o', `${work}/podman-oci.tar`, app]);
});

afterAll(async () => {
  await removeImages(app, base, loaded);
  await rm(work, { recursive: true, force: true });
});

describe('tarballs from real tools', () => {
  it('Docker 20.10 docker save: legacy layout, a shared layer written as a symlink', async (context) => {
    if (!(await savesLegacyLayout())) context.skip('this engine saves the Docker 25+ layout');
    const report = await inspectBuffer(await file('docker-save.tar'), 64 * 1024);
    expect(report).toMatchObject({ format: 'docker-archive', platforms: ['linux/amd64'], warnings: [] });
    expect(report.references.sort()).toEqual([app, base].sort());
    expect(report.images.map((image) => image.platforms[0]!.configDigest).sort()).toEqual(
      [appConfig, baseConfig].sort(),
    );
    const listing = (await run('tar', ['-tvf', `${work}/docker-save.tar`])).stdout;
    expect(listing).toMatch(/^l.* [0-9a-f]{64}\/layer\.tar -> \.\.\/[0-9a-f]{64}\/layer\.tar$/m);
  });

  it('Docker 25+ docker save: an OCI layout with manifest.json, every blob verified', async (context) => {
    if (await savesLegacyLayout()) context.skip('this engine saves the legacy layout');
    const report = await inspectBuffer(await file('docker-save.tar'), 64 * 1024);
    expect(report).toMatchObject({ format: 'docker-oci', platforms: ['linux/amd64'], loadableByLegacyEngine: true });
    expect(report.references.sort()).toEqual([app, base].sort());
  });

  it('skopeo docker-archive: <diff_id>.tar layers linked from <id>/layer.tar', async () => {
    const report = await inspectBuffer(await file('skopeo-docker.tar'));
    expect(report.format).toBe('docker-archive');
    expect(report.references).toEqual([app]);
    expect(report.images[0]!.platforms[0]!.configDigest).toBe(appConfig);
    expect(report.images[0]!.platforms[0]!.layers.every((layer) => /^[0-9a-f]{64}\.tar$/.test(layer))).toBe(true);
  });

  it('skopeo oci-archive: gzip layers, a converted config, the full name in ref.name', async () => {
    const report = await inspectBuffer(await file('skopeo-oci.tar'));
    expect(report).toMatchObject({
      format: 'oci-layout',
      references: [app],
      platforms: ['linux/amd64'],
      bareNames: [],
    });
    // skopeo rewrites the Docker config as an OCI config, so the image ID changes.
    expect(report.images[0]!.platforms[0]!.configDigest).not.toBe(appConfig);
    expect(report.loadableByLegacyEngine).toBe(false);
  });

  it('podman docker-archive and oci-archive', async () => {
    const dockerArchive = await inspectBuffer(await file('podman-docker.tar'));
    expect(dockerArchive.format).toBe('docker-archive');
    expect(dockerArchive.references).toEqual([app]);
    const ociArchive = await inspectBuffer(await file('podman-oci.tar'));
    expect(ociArchive).toMatchObject({ format: 'oci-layout', references: [app], platforms: ['linux/amd64'] });
  });

  it('the Docker 25+ layout, rebuilt from the real layers', async () => {
    const images = await imagesOfDockerArchive(await file('docker-save.tar'));
    const report = await inspectBuffer(await packTar(ociLayoutEntries(images, { docker25: true })));
    expect(report).toMatchObject({ format: 'docker-oci', warnings: [], loadableByLegacyEngine: true });
    expect(report.references.sort()).toEqual([app, base].sort());
    expect(report.images.map((image) => image.platforms[0]!.configDigest).sort()).toEqual(
      [appConfig, baseConfig].sort(),
    );
  });

  it('a multi-platform nested index, rebuilt from the real layers', async () => {
    // Docker 25+ may list the images in another order than they were named.
    const image = (await imagesOfDockerArchive(await file('docker-save.tar'))).find((one) => one.tags.includes(app));
    const arm = forPlatform(image!, { os: 'linux', architecture: 'arm64', variant: 'v8' });
    const report = await inspectBuffer(await packTar(ociLayoutEntries([image!, arm], { gzip: true, nested: true })));
    expect(report.platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(report.references).toEqual([app]);
    expect(report.images).toHaveLength(1);
    expect(report.images[0]!.platforms[1]!.configDigest).toBe(sha256(arm.config));
  });
});

describe('A graph-driver engine (Docker 20.10, or 25+ without the containerd store) and a pure OCI layout', () => {
  it('loads it, gzip layers and all, from the canonical archive with manifest.json at its end', async (context) => {
    if ((await engineKind()) === 'containerd') {
      context.skip('the containerd image store loads an OCI layout by its index.json and ignores manifest.json');
    }
    const tar = await file('skopeo-oci.tar');
    await removeImages(app, base);
    // The canonical archive, as load mode writes it for such an engine: the layout, and manifest.json last.
    const writer = createCanonicalWriter({
      select: (verified) => [{ image: verified.images[0]!, references: [loaded] }],
      platform: 'linux/amd64',
      requireManifest: true,
    });
    const load = spawn('docker', ['load'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    load.stdout.on('data', (chunk: Buffer) => (output += chunk));
    load.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => load.on('close', resolve));
    await pipeline(Readable.from([tar]), writer.stream, load.stdin);
    expect(await exited, output).toBe(0);
    expect(output).toContain(`Loaded image: ${loaded}`);
    const { report } = await writer.result;
    expect(await imageId(loaded)).toBe(report.images[0]!.platforms[0]!.configDigest);
    const layers = (await docker('image', 'inspect', '--format', '{{json .RootFS.Layers}}', loaded)).trim();
    expect(JSON.parse(layers)).toHaveLength(report.images[0]!.platforms[0]!.layers.length);
  });
});
