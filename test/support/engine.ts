/** Test images made in the real local engine (no registry here): `docker import` of a small generated rootfs. */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ContainerEngine } from '../../src/engine/engine.ts';

const run = promisify(execFile);

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/**
 * Makes one image with the given tags in docker (or, with `engine`, podman and the `env` that points it at its
 * store); each call makes a distinct image (random content). Returns its ID.
 */
export async function makeImage(
  tags: readonly string[],
  options: { randomBytes?: number; engine?: 'docker' | 'podman'; env?: Record<string, string> } = {},
): Promise<string> {
  const engine = options.engine ?? 'docker';
  const env = { ...process.env, ...options.env };
  const root = await mkdtemp(path.join(tmpdir(), 'handoff-rootfs-'));
  try {
    await mkdir(path.join(root, 'etc'));
    await writeFile(path.join(root, 'etc', 'release'), `made for ${tags.join(', ')}\n`);
    await writeFile(path.join(root, 'random.bin'), randomBytes(options.randomBytes ?? 4096));
    const id = await new Promise<string>((resolve, reject) => {
      const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const importer = spawn(engine, ['import', '-', tags[0]!], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      tar.stdout.pipe(importer.stdin);
      let out = '';
      let err = '';
      importer.stdout.on('data', (chunk: Buffer) => (out += chunk));
      importer.stderr.on('data', (chunk: Buffer) => (err += chunk));
      importer.on('close', (code) =>
        code === 0 ? resolve(out.trim()) : reject(new Error(`${engine} import: ${err}`)),
      );
    });
    for (const tag of tags.slice(1)) await run(engine, ['tag', tags[0]!, tag], { env });
    return id;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export async function imageId(reference: string): Promise<string | undefined> {
  try {
    return (await docker('image', 'inspect', '--format', '{{.Id}}', reference)).trim();
  } catch {
    return undefined;
  }
}

/** Removes images by reference, ignoring ones already gone. */
export async function removeImages(...references: string[]): Promise<void> {
  if (references.length === 0) return;
  await run('docker', ['rmi', '--force', ...references]).catch(() => undefined);
}

const repositories = new Set<string>();

/** A unique repository name so test files never step on each other's images. */
export function uniqueRepository(prefix: string): string {
  const repository = `localhost:5000/handoff-test/${prefix}-${randomBytes(4).toString('hex')}`;
  repositories.add(repository);
  return repository;
}

/**
 * Every tag and image ID in the repositories this test file made, sorted (the containerd store lists images created
 * in the same second in no fixed order): what a failed load must leave as it was. Only this file's repositories, since
 * other runs may share the engine and change their own images meanwhile.
 */
export async function repositoriesState(): Promise<string> {
  const listing = await docker('image', 'ls', '--all', '--no-trunc', '--format', '{{.Repository}} {{.Tag}} {{.ID}}');
  return listing
    .split('\n')
    .filter((line) => repositories.has(line.split(' ')[0]!))
    .sort()
    .join('\n');
}

/** Whether the engine's API version is at least `major.minor` (Docker 20.10 is 1.41). */
export async function engineApiAtLeast(major: number, minor: number): Promise<boolean> {
  const api = (await docker('version', '--format', '{{.Server.APIVersion}}')).trim();
  return ContainerEngine.apiAtLeast(api, major, minor);
}

/** Whether `docker save` writes the legacy layout (engines before Docker 25, API 1.44), rather than an OCI layout. */
export async function savesLegacyLayout(): Promise<boolean> {
  return !(await engineApiAtLeast(1, 44));
}

/**
 * The three engine kinds the suite runs against. They differ in what a test may assume: `legacy` (Docker ≤ 24)
 * writes the legacy layout and loads only tarballs with a manifest.json; `graphdriver` (Docker 25+ with a graph
 * driver) writes an OCI layout but still loads only through manifest.json; `containerd` (the containerd image store)
 * names an image by the digest of its target (manifest or index), never by its config digest.
 */
export type EngineKind = 'legacy' | 'graphdriver' | 'containerd';

export interface EngineInfo {
  kind: EngineKind;
  version: string;
  api: string;
}

let engineInfoPromise: Promise<EngineInfo> | undefined;

/** What the engine at DOCKER_HOST is, read from the engine itself; HANDOFF_ENGINE, when set, must agree. */
export function engineInfo(): Promise<EngineInfo> {
  engineInfoPromise ??= (async () => {
    const [version = '', api = ''] = (await docker('version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}'))
      .trim()
      .split(/\s+/);
    const driverStatus = JSON.parse(
      (await docker('info', '--format', '{{json .DriverStatus}}')).trim() || 'null',
    ) as Array<[string, string]> | null;
    const containerdStore = (driverStatus ?? []).some(
      ([key, value]) => key === 'driver-type' && value === 'io.containerd.snapshotter.v1',
    );
    const kind: EngineKind = containerdStore
      ? 'containerd'
      : ContainerEngine.apiAtLeast(api, 1, 44)
        ? 'graphdriver'
        : 'legacy';
    const declared = process.env['HANDOFF_ENGINE'];
    // A run labelled with one engine must not silently test another (a stale DOCKER_HOST, say).
    if (declared && declared !== kind) {
      throw new Error(`HANDOFF_ENGINE is ${declared}, but the engine at DOCKER_HOST is ${kind} (Docker ${version})`);
    }
    return { kind, version, api };
  })();
  return engineInfoPromise;
}

export async function engineKind(): Promise<EngineKind> {
  return (await engineInfo()).kind;
}

/** The daemon-host options skopeo needs: its docker-daemon: transport ignores DOCKER_HOST. */
function daemonHost(direction: 'src' | 'dest'): string[] {
  const host = process.env['DOCKER_HOST'];
  return host ? [`--${direction}-daemon-host`, host] : [];
}

/**
 * `skopeo copy` with the engine at DOCKER_HOST on either side. HANDOFF_SKOPEO names a skopeo new enough for the engine
 * (Debian bookworm's 1.9 asks every engine for API 1.22, which Docker 26+ refuses).
 */
export async function skopeoCopy(source: string, destination: string): Promise<void> {
  const options = [
    ...(source.startsWith('docker-daemon:') ? daemonHost('src') : []),
    ...(destination.startsWith('docker-daemon:') ? daemonHost('dest') : []),
  ];
  await run(process.env['HANDOFF_SKOPEO'] || 'skopeo', ['copy', '-q', ...options, source, destination], {
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** `docker save` of references into a file (no shell redirection). */
export async function dockerSave(file: string, ...references: string[]): Promise<void> {
  await docker('save', '--output', file, ...references);
}

/** podman's global options for a store of its own under `directory`: no root store, no systemd, no cgroup manager. */
export function podmanStoreArgs(directory: string): string[] {
  return [
    '--root',
    path.join(directory, 'root'),
    '--runroot',
    path.join(directory, 'run'),
    '--storage-driver',
    'vfs',
    '--events-backend',
    'file',
    '--cgroup-manager',
    'cgroupfs',
  ];
}
