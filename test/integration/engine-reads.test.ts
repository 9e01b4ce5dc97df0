/**
 * What the engine interprets is what was verified, tried as an attacker would on every engine of the suite: artifacts
 * whose JSON Go reads otherwise, whose layers are not their diff_ids, that expand without bound, whose indexes make
 * the engine walk without end, whose tags name other images; and the engine's own verdict, read whatever its exit
 * code. Each hostile artifact goes through the real @actions/artifact library to the bundled action in load mode, and
 * must end in one line, leaving the engine's images as they were.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { docker, imageId, makeImage, removeImages, repositoriesState, uniqueRepository } from '../support/engine.ts';
import {
  hex,
  makeConfig,
  makeImage as makeFixtureImage,
  ociLayoutEntries,
  packTar,
  sha256,
  type RawEntry,
} from '../support/fixtures.ts';

const exec = promisify(execFile);
let service: ArtifactService;
let work: string;
let artifact: typeof import('../../src/artifacts/index.ts');
const savedEnv = { ...process.env };
const RUN = 7100;
let uploads = 0;

const repository = uniqueRepository('reads');
/** An image the engine holds before every test, which no hostile artifact may take or change. */
const bystander = `${repository}:bystander`;
let bystanderId: string;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-reads-'));
  bystanderId = await makeImage([bystander]);
  Object.assign(process.env, service.env(RUN));
  artifact = await import('../../src/artifacts/index.ts');
});

afterAll(async () => {
  process.env = savedEnv;
  const listing = await docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}');
  await removeImages(...listing.split('\n').filter((line) => line.startsWith(repository)));
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

/** Uploads `entries` as a tar artifact of the run, as any step could, and returns its name. */
async function upload(entries: RawEntry[] | Buffer): Promise<string> {
  const name = `hostile-${++uploads}.tar`;
  const file = path.join(work, name);
  await writeFile(file, Buffer.isBuffer(entries) ? entries : await packTar(entries));
  Object.assign(process.env, service.env(RUN));
  await artifact.uploadFile(file, name, { overwrite: false });
  return name;
}

function load(name: string, inputs: Record<string, string> = {}): Promise<ActionRun> {
  return runAction({ mode: 'load', name, ...inputs }, service.env(RUN));
}

/** The action's own commands, and the library's masks of a signed URL's signature. */
const OWN = /^::(error|group|endgroup|debug)::|^::add-mask::[0-9a-f]{32}$/;
// A `::debug::` line is a command of its own: the runner does not look for the legacy `##[` form inside it.

/** Lines the runner would read as workflow commands, other than the action's own. */
function injected(run: ActionRun): string[] {
  return run.stdout
    .split(/\r\n|\r|\n/)
    .filter(
      (line) => (/^\s*::/.test(line) && !OWN.test(line)) || (line.includes('##[') && !line.startsWith('::debug::')),
    );
}

/** Refused in one line, with the engine's images of this file as they were and the bystander untouched. */
async function refused(run: ActionRun, message: RegExp, before: string): Promise<void> {
  expect(run.code, run.stdout + run.stderr).toBe(1);
  expect(run.error).toMatch(message);
  expect(run.error).not.toContain('\n');
  expect(run.error).not.toMatch(/Unexpected error/);
  expect(run.stdout + run.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(injected(run)).toEqual([]);
  expect(await repositoriesState()).toBe(before);
  expect(await imageId(bystander)).toBe(bystanderId);
}

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** An OCI layout (with Docker 25's manifest.json, so every engine can load it) of one image, with its parts given raw. */
function layout(
  tag: string,
  parts: { config: Buffer; layers: Array<{ blob: Buffer; mediaType: string }>; manifest?: (json: object) => string },
): RawEntry[] {
  const put = (content: Buffer) => ({ digest: sha256(content), size: content.length });
  const manifestObject = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(parts.config) },
    layers: parts.layers.map(({ blob, mediaType }) => ({ mediaType, ...put(blob) })),
  };
  const manifest = Buffer.from(parts.manifest ? parts.manifest(manifestObject) : JSON.stringify(manifestObject));
  const blobs = [parts.config, manifest, ...parts.layers.map(({ blob }) => blob)];
  return [
    ...[...new Map(blobs.map((blob) => [hex(sha256(blob)), blob]))].map(([name, content]) => ({
      name: `blobs/sha256/${name}`,
      content,
    })),
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    {
      name: 'index.json',
      content: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...put(manifest),
            annotations: { 'io.containerd.image.name': tag, 'org.opencontainers.image.ref.name': tag.split(':').pop() },
          },
        ],
      }),
    },
    {
      name: 'manifest.json',
      content: JSON.stringify([
        {
          Config: `blobs/sha256/${hex(sha256(parts.config))}`,
          RepoTags: [tag],
          Layers: parts.layers.map(({ blob }) => `blobs/sha256/${hex(sha256(blob))}`),
        },
      ]),
    },
  ];
}

describe('JSON that Go reads otherwise', () => {
  it('a manifest naming its config and layers twice, under keys that differ only in case, is refused', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:json-twins`;
    const verified = await makeFixtureImage([tag], { seed: 'verified json twin' });
    const hidden = await makeFixtureImage([tag], { seed: 'the config Go would run' });
    const hiddenConfig = makeConfig(hidden.layers);
    const entries = layout(tag, {
      config: verified.config,
      layers: verified.layers.map((layer) => ({ blob: gzipSync(layer), mediaType: GZIP })),
      // The second pair, which Go's decoder keeps, names blobs the verified pair does not.
      manifest: (json) => {
        const text = JSON.stringify(json);
        const twin = {
          Config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: sha256(hiddenConfig),
            size: hiddenConfig.length,
          },
          Layers: hidden.layers.map((layer) => ({
            mediaType: GZIP,
            digest: sha256(gzipSync(layer)),
            size: gzipSync(layer).length,
          })),
        };
        return `${text.slice(0, -1)},"Config":${JSON.stringify(twin.Config)},"Layers":${JSON.stringify(twin.Layers)}}`;
      },
    });
    entries.push(
      { name: `blobs/sha256/${hex(sha256(hiddenConfig))}`, content: hiddenConfig },
      ...hidden.layers.map((layer) => ({
        name: `blobs/sha256/${hex(sha256(gzipSync(layer)))}`,
        content: gzipSync(layer),
      })),
    );
    const run = await load(await upload(entries));
    await refused(run, /has the keys `config` and `Config` in one object, which Go reads as one field/, before);
    expect(await imageId(tag)).toBeUndefined();
  });

  it('a config whose diff_ids Go would read from a case variant of rootfs is refused', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:json-rootfs`;
    const image = await makeFixtureImage([tag], { seed: 'rootfs twin' });
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: image.layers.map((l) => sha256(l)) },
      }).slice(0, -1) + `,"RootFS":{"type":"layers","diff_ids":["${sha256('other')}"]}}`,
    );
    const run = await load(
      await upload(
        layout(tag, {
          config,
          layers: image.layers.map((blob) => ({ blob, mediaType: 'application/vnd.oci.image.layer.v1.tar' })),
        }),
      ),
    );
    await refused(run, /keys `rootfs` and `RootFS`/, before);
  });
});

describe('layers against their diff_ids', () => {
  it("a layer whose blob digest is right but whose content is another image's layer is refused", async () => {
    // Were it loaded, an engine holding that other layer would reuse it: the tag would show the other image's files.
    const before = await repositoriesState();
    const tag = `${repository}:swapped-layer`;
    const image = await makeFixtureImage([tag], { seed: 'swapped', layerCount: 2 });
    const other = await makeFixtureImage([tag], { seed: 'the other image' });
    const run = await load(
      await upload(
        layout(tag, {
          config: image.config,
          layers: [gzipSync(image.layers[0]!), gzipSync(other.layers[0]!)].map((blob) => ({ blob, mediaType: GZIP })),
        }),
      ),
    );
    await refused(
      run,
      /decompresses \(gzip\) and hashes to sha256:[0-9a-f]{64}, but the image config expects diff_id/,
      before,
    );
    expect(await imageId(tag)).toBeUndefined();
  });

  it('layers listed in another order than the diff_ids are refused', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:reordered`;
    const image = await makeFixtureImage([tag], { seed: 'reordered', layerCount: 2 });
    const [first, second] = image.layers.map((layer) => ({ blob: gzipSync(layer), mediaType: GZIP }));
    const run = await load(await upload(layout(tag, { config: image.config, layers: [second!, first!] })));
    await refused(run, /listed out of order/, before);
  });

  it('a media type that says gzip over zstd bytes is refused', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:lying-type`;
    const image = await makeFixtureImage([tag], { seed: 'lying' });
    const layers = image.layers.map((layer) => ({ blob: zstdCompressSync(layer), mediaType: GZIP }));
    const run = await load(await upload(layout(tag, { config: image.config, layers })));
    await refused(run, /says gzip-compressed, but its bytes are zstd-compressed/, before);
  });

  it('a 1 MiB zstd layer that would expand to gigabytes is stopped at its bound, in seconds', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:bomb`;
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    // 640 MiB of zeros in ten frames: past the 512 MiB a layer may always expand to.
    const bomb = Buffer.concat(Array.from({ length: 10 }, () => zstdCompressSync(zeros)));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const config = makeConfig([Buffer.alloc(1)]);
    const started = Date.now();
    const run = await load(
      await upload(
        layout(tag, { config, layers: [{ blob: bomb, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }] }),
      ),
    );
    await refused(run, /expands to more than 512\.0 MiB .* refused as a decompression bomb/, before);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('an image past max-image-size is refused, naming the input', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:too-big`;
    const layer = randomBytes(2 * 1024 * 1024);
    const run = await load(
      await upload(layout(tag, { config: makeConfig([layer]), layers: [{ blob: gzipSync(layer), mediaType: GZIP }] })),
      { 'max-image-size': '1MiB' },
    );
    await refused(run, /layers expand to more than 1\.0 MiB in all, the limit `max-image-size` sets/, before);
  });
});

describe("the engine's walk", () => {
  it('an index that lists its child a thousand times is refused at once, not handed to the engine', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:walk`;
    const image = await makeFixtureImage([tag], { seed: 'walk' });
    const entries = ociLayoutEntries([image]);
    const index = JSON.parse(String(entries.find((entry) => entry.name === 'index.json')!.content)) as {
      manifests: Array<Record<string, unknown>>;
    };
    const top = index.manifests[0]!;
    const child = { ...top, annotations: undefined };
    const nested = JSON.stringify({ schemaVersion: 2, manifests: Array.from({ length: 1000 }, () => child) });
    const descriptor = {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: sha256(nested),
      size: Buffer.byteLength(nested),
      annotations: top['annotations'],
    };
    const hostile = [
      ...entries.filter((entry) => entry.name !== 'index.json'),
      { name: `blobs/sha256/${hex(sha256(nested))}`, content: nested },
      { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [descriptor] }) },
    ];
    const started = Date.now();
    const run = await load(await upload(hostile));
    await refused(run, /lists sha256:[0-9a-f]{64} twice \(manifests 1 and 2\)/, before);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe("the engine's own verdict", () => {
  it("a layer that is its diff_id but no tar fails the step with the engine's line, and the tags are put back", async () => {
    // Every check of the action passes; only the engine, unpacking it, finds it is not a tar. Docker on the containerd
    // image store still exits 0 and says so only on stdout.
    const tag = `${repository}:not-a-tar`;
    await docker('tag', bystander, tag);
    const before = await repositoriesState();
    const garbage = randomBytes(64 * 1024);
    const config = makeConfig([garbage]);
    const run = await load(
      await upload(layout(tag, { config, layers: [{ blob: gzipSync(garbage), mediaType: GZIP }] })),
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.error).toMatch(/`docker load` (reported `Error unpacking image|failed: )|cannot use/);
    expect(run.error).not.toMatch(/Unexpected error/);
    expect(run.error).not.toContain('\n');
    // The tag it would have taken names the image it named before.
    expect(await imageId(tag)).toBe(bystanderId);
    expect(await repositoriesState()).toBe(before);
    await removeImages(tag);
  });
});

describe('tags as the engine names them', () => {
  it("a tarball tag spelled index.docker.io/library/… is the engine's tag, and the check and outputs agree", async () => {
    const name = `handoff-reads-${randomBytes(4).toString('hex')}`;
    const image = await makeFixtureImage([`index.docker.io/library/${name}:1`], { seed: 'legacy hub name' });
    const other = await makeImage([`${name}:1`]);
    try {
      const run = await load(await upload(ociLayoutEntries([image], { docker25: true })));
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.outputs.tags).toBe(`${name}:1`);
      expect(await imageId(`${name}:1`)).not.toBe(other);
      expect(run.stdout).toMatch(new RegExp(`${name}:1 pointed to ${other} before this load`));
    } finally {
      await removeImages(`${name}:1`);
      await removeImages(other);
    }
  });

  it('a tag given to two different images is refused before the engine', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:twice`;
    const first = await makeFixtureImage([tag], { seed: 'first' });
    const second = await makeFixtureImage([`${repository}:other`], { seed: 'second' });
    const entries = ociLayoutEntries([first, { ...second, tags: [tag] }], { docker25: true });
    const run = await load(await upload(entries));
    await refused(run, /gives the tag `.*:twice` to two images/, before);
  });

  it('a digest reference recorded as a tag is refused before the engine', async () => {
    const before = await repositoriesState();
    const image = await makeFixtureImage([`${repository}@sha256:${'d'.repeat(64)}`], { seed: 'digest tag' });
    const run = await load(await upload(ociLayoutEntries([image], { docker25: true })));
    await refused(run, /a digest reference, as a tag/, before);
  });

  it('a platform that is not a platform name never reaches a line or an output', async () => {
    const before = await repositoriesState();
    const tag = `${repository}:platform`;
    const image = await makeFixtureImage([tag], {
      seed: 'platform',
      platform: { os: 'linux', architecture: '$(touch /tmp/owned)`id`' },
    });
    const run = await load(await upload(ociLayoutEntries([image], { docker25: true })));
    await refused(run, /gives the platform part `\$\(touch \/tmp\/owned\)`id``, which is not a platform name/, before);
    expect(run.outputs.platforms ?? '').toBe('');
  });
});

describe('leftovers and names', () => {
  it('a single artifact that is not an image leaves nothing in RUNNER_TEMP', async () => {
    const before = await repositoriesState();
    const run = await load(await upload(Buffer.from('just some text, no image\n'.repeat(100))));
    await refused(run, /is not an image tarball/, before);
    expect(await readdir(run.runnerTemp)).toEqual(expect.not.arrayContaining([expect.stringMatching(/^artifact-/)]));
  });

  it('`repository: ../..` is refused before any request carries the token', async () => {
    const seen = service.requests().length;
    const run = await runAction(
      { mode: 'load', name: 'x', 'run-id': '5', repository: '../..', 'github-token': 'secret' },
      service.env(RUN),
    );
    expect(run.code).toBe(1);
    expect(run.error).toMatch(/`repository` must be `owner\/name`, found `\.\.\/\.\.`/);
    expect(service.requests().slice(seen)).toEqual([]);
  });

  it('an artifact a pattern matches whose name holds `##[` is refused before the library prints it', async () => {
    const tag = `${repository}:named`;
    const image = await makeFixtureImage([tag], { seed: 'named' });
    Object.assign(process.env, service.env(RUN + 1));
    const hostileName = 'img##[warning]owned';
    const client = new (await import('@actions/artifact')).DefaultArtifactClient();
    const staged = path.join(work, hostileName);
    await writeFile(staged, await packTar(ociLayoutEntries([image], { docker25: true })));
    await client.uploadArtifact(hostileName, [staged], work, { skipArchive: true });
    const run = await runAction({ mode: 'load', pattern: 'img*' }, service.env(RUN + 1));
    expect(run.code).toBe(1);
    expect(run.error).toMatch(/which `pattern` img\* matches, contains `##<U\+005B>`/);
    expect(injected(run)).toEqual([]);
  });
});

describe('save: checked one image, saved another', () => {
  it('fails when a tag moves between the check and docker save, and uploads nothing', async () => {
    const tag = `${repository}:moving`;
    const first = await makeImage([tag]);
    const second = await makeImage([`${repository}:mover`]);
    // A `docker` that retags the image just before it saves, as another step of the job could.
    const real = (await exec('sh', ['-c', 'command -v docker'])).stdout.trim();
    const bin = await mkdtemp(path.join(work, 'bin-'));
    await writeFile(
      path.join(bin, 'docker'),
      `#!/bin/sh\nif [ "$1" = save ]; then "${real}" tag "${second}" "${tag}" >/dev/null; fi\nexec "${real}" "$@"\n`,
    );
    await chmod(path.join(bin, 'docker'), 0o755);
    const runs = service.artifacts(RUN + 2).length;
    const run = await runAction(
      { mode: 'save', tags: tag, name: 'moving' },
      { ...service.env(RUN + 2), PATH: `${bin}:${process.env.PATH}` },
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.error).toMatch(
      /named another image when saved than when checked .*was sha256:[0-9a-f]{64}, saved sha256:/,
    );
    expect(run.error).toContain(first);
    expect(service.artifacts(RUN + 2).length).toBe(runs);
  });
});
