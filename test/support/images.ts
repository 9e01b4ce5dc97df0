/**
 * Real producers of images and tarballs (buildx, with the engine's built-in docker driver), and what a tarball says
 * an image is, read here with tar-stream rather than with the project's own reader, so that a misreading shared by
 * the action and its tests cannot make a test pass.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { dockerSave, engineKind, imageId } from './engine.ts';
import { sha256, unpackTar } from './fixtures.ts';

const run = promisify(execFile);

/** The platform these engines run on; a single-platform image is built for it. */
export const HOST_PLATFORM = 'linux/amd64';

interface Descriptor {
  mediaType?: string;
  digest: string;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface TarballImage {
  /** The digest of what index.json names for the reference (a manifest or an index); none in a docker-archive. */
  target: string | undefined;
  /** Each platform's manifest (none in a docker-archive) and config digest; attestations are not platforms. */
  platforms: Map<string, { manifest: string | undefined; config: string }>;
}

function platformName(platform: { os: string; architecture: string; variant?: string }): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** What a tarball (docker-archive, OCI layout or both) holds under `reference`. */
export async function imageInTarball(tar: Buffer, reference: string): Promise<TarballImage> {
  const files = await unpackTar(tar);
  const blob = (digest: string): Buffer => {
    const content = files.get(`blobs/sha256/${digest.slice('sha256:'.length)}`);
    if (!content) throw new Error(`the tarball lacks the blob ${digest}`);
    return content;
  };
  const index = files.get('index.json');
  if (index) {
    const top = (JSON.parse(index.toString()) as { manifests: Descriptor[] }).manifests;
    const named = top.find(
      (descriptor) =>
        descriptor.annotations?.['io.containerd.image.name'] === reference ||
        descriptor.annotations?.['org.opencontainers.image.ref.name'] === reference,
    );
    if (named) {
      const platforms = new Map<string, { manifest: string | undefined; config: string }>();
      const addManifest = (digest: string) => {
        const manifest = JSON.parse(blob(digest).toString()) as { config: { digest: string } };
        const config = JSON.parse(blob(manifest.config.digest).toString()) as {
          os: string;
          architecture: string;
          variant?: string;
        };
        platforms.set(platformName(config), { manifest: digest, config: manifest.config.digest });
      };
      const parsed = JSON.parse(blob(named.digest).toString()) as { manifests?: Descriptor[] };
      if (parsed.manifests) {
        for (const child of parsed.manifests) {
          // buildx's attestation manifests: they describe the image, they are not a platform of it.
          if (child.platform?.os === 'unknown') continue;
          addManifest(child.digest);
        }
      } else addManifest(named.digest);
      return { target: named.digest, platforms };
    }
  }
  const manifestJson = files.get('manifest.json');
  if (!manifestJson) throw new Error(`the tarball does not name ${reference}`);
  const items = JSON.parse(manifestJson.toString()) as Array<{ Config: string; RepoTags: string[] | null }>;
  const item = items.find((candidate) => candidate.RepoTags?.includes(reference));
  if (!item) throw new Error(`the tarball does not name ${reference}`);
  const configBytes = files.get(item.Config)!;
  const config = JSON.parse(configBytes.toString()) as { os: string; architecture: string; variant?: string };
  return {
    target: undefined,
    platforms: new Map([[platformName(config), { manifest: undefined, config: sha256(configBytes) }]]),
  };
}

/** The config digest of the image a reference names in the engine, read from a `docker save` of it. */
export async function engineConfigDigest(reference: string): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), 'handoff-config-'));
  try {
    const file = path.join(work, 'image.tar');
    await dockerSave(file, reference);
    const image = await imageInTarball(await readFile(file), reference);
    return image.platforms.get(HOST_PLATFORM)!.config;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The ID this engine shows for `reference` after loading `tar`: the config digest on legacy and graphdriver
 * engines; on the containerd store the digest of what index.json names, or none (the store rebuilds the manifest of a
 * docker-archive, under an ID no tarball holds).
 */
export async function idAfterLoad(tar: Buffer, reference: string): Promise<string | undefined> {
  const image = await imageInTarball(tar, reference);
  if ((await engineKind()) === 'containerd') return image.target;
  return image.platforms.get(HOST_PLATFORM)?.config;
}

/** Asserts the tag names the image `tar` holds under `reference`, as this engine names it. */
export async function expectTagNamesTarballImage(tag: string, tar: Buffer, reference = tag): Promise<void> {
  const expected = await idAfterLoad(tar, reference);
  if (expected) {
    expect(await imageId(tag), `${tag} after load`).toBe(expected);
    return;
  }
  // A rebuilt manifest: the image is still the tarball's if its config (and with it the layers' diff IDs) is.
  const image = await imageInTarball(tar, reference);
  expect(await imageId(tag), `${tag} after load`).toBeDefined();
  expect(await engineConfigDigest(tag)).toBe(image.platforms.get(HOST_PLATFORM)!.config);
}

/** A build context that makes a new image each time: FROM scratch and a COPY of random bytes (no network, no RUN). */
async function buildContext(): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'handoff-buildx-'));
  await writeFile(path.join(dir, 'random.txt'), randomBytes(2048).toString('base64'));
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY random.txt /random.txt\n');
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

async function buildx(args: readonly string[], env: Record<string, string> = {}): Promise<void> {
  const context = await buildContext();
  try {
    await run('docker', ['buildx', 'build', '--quiet', ...args, context.dir], {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
  } finally {
    await context.done();
  }
}

function tagArgs(tags: readonly string[]): string[] {
  return tags.flatMap((tag) => ['--tag', tag]);
}

/** `docker buildx build --load` with buildx's defaults (a provenance attestation, where the engine keeps one). */
export async function buildxLoad(tags: readonly string[]): Promise<string> {
  await buildx(['--load', ...tagArgs(tags)]);
  return (await imageId(tags[0]!))!;
}

/**
 * A two-platform `--load` (linux/amd64 and linux/arm64: nothing is RUN, so no emulation). Only the containerd store
 * can hold such an image: elsewhere the engine's refusal is returned, to skip with.
 */
export async function buildxLoadTwoPlatforms(tags: readonly string[]): Promise<{ id: string } | { refused: string }> {
  try {
    await buildx(['--platform', 'linux/amd64,linux/arm64', '--load', ...tagArgs(tags)]);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? error);
    const line = stderr
      .split('\n')
      .map((text) => text.trim())
      .filter(Boolean)
      .at(-1);
    return { refused: line ?? stderr };
  }
  return { id: (await imageId(tags[0]!))! };
}

/**
 * The engine buildx exports tarballs with: `-o type=docker|oci,dest=…` needs the containerd image store with the
 * built-in docker driver, so from another engine the containerd-store engine in HANDOFF_BUILDX_HOST (set by
 * scripts/engines.sh) builds them. Undefined when there is none.
 */
export async function tarballBuilderHost(): Promise<string | undefined> {
  if ((await engineKind()) === 'containerd') return process.env['DOCKER_HOST'] ?? 'unix:///var/run/docker.sock';
  const host = process.env['HANDOFF_BUILDX_HOST'];
  if (!host) return undefined;
  try {
    await run('docker', ['version'], { env: { ...process.env, DOCKER_HOST: host } });
    return host;
  } catch {
    return undefined;
  }
}

export const NO_TARBALL_BUILDER =
  "buildx's docker driver exports tarballs only from a containerd-store engine, and HANDOFF_BUILDX_HOST names none that answers";

/** `docker buildx build -o type=docker|oci,dest=FILE`: a tarball, not an image in any engine. */
export async function buildxTarball(
  type: 'docker' | 'oci',
  file: string,
  tags: readonly string[],
  host: string,
): Promise<void> {
  await buildx(['--output', `type=${type},dest=${file}`, ...tagArgs(tags)], { DOCKER_HOST: host });
}
