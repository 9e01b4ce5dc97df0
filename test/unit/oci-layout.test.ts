/**
 * The OCI layout for buildx: what index.json says of the images (tables, no I/O), and the layout written from a
 * canonical archive, read back here with JSON.parse and sha256 alone: every blob hashes to its name, every
 * descriptor reaches a blob, nothing else is in the directory, and a failed read leaves nothing behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCanonicalWriter, selectReferences } from '../../src/archive/canonical.ts';
import { openLayout, type OciLayout } from '../../src/archive/layout.ts';
import {
  TagClaims,
  addresses,
  dockerArchiveManifest,
  entriesFor,
  layerMediaType,
  mergeEntries,
  type IndexEntry,
} from '../../src/archive/layout-index.ts';
import { UserError } from '../../src/errors.ts';
import {
  dockerArchiveEntries,
  forPlatform,
  makeConfig,
  makeImage,
  ociLayoutEntries,
  packTar,
  sha256,
  type FixtureImage,
} from '../support/fixtures.ts';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const descriptor = { mediaType: MANIFEST, digest: `sha256:${'a'.repeat(64)}`, size: 10 };
const names = (entries: readonly IndexEntry[]) => entries.map((entry) => entry.annotations);

describe('index.json entries', () => {
  it.each([
    [
      'one per tag, with the full name containerd reads',
      ['ghcr.io/o/app:pr-1', 'ghcr.io/o/app:sha-1'],
      [
        { 'io.containerd.image.name': 'ghcr.io/o/app:pr-1', 'org.opencontainers.image.ref.name': 'pr-1' },
        { 'io.containerd.image.name': 'ghcr.io/o/app:sha-1', 'org.opencontainers.image.ref.name': 'sha-1' },
      ],
    ],
    [
      'one for a tag two repositories share: `oci-layout://DIR` alone still reaches it',
      ['ghcr.io/o/app:pr-1', 'docker.io/o/app:pr-1'],
      [{ 'io.containerd.image.name': 'ghcr.io/o/app:pr-1', 'org.opencontainers.image.ref.name': 'pr-1' }],
    ],
    [
      'a short name qualified, a missing tag `latest`',
      ['app'],
      [{ 'io.containerd.image.name': 'docker.io/library/app:latest', 'org.opencontainers.image.ref.name': 'latest' }],
    ],
    ['none for an untagged image', [], [undefined]],
    ['none for a digest reference', [`app@sha256:${'b'.repeat(64)}`], [undefined]],
  ])('%s', (_case, references, expected) => {
    const entries = entriesFor(descriptor, references);
    expect(names(entries)).toEqual(expected);
    for (const entry of entries) expect(entry).toMatchObject(descriptor);
  });

  it('lists an image named by the same tag in two artifacts once', () => {
    const twice = [...entriesFor(descriptor, ['a:1']), ...entriesFor(descriptor, ['a:1', 'a:2'])];
    expect(names(mergeEntries(twice)).map((annotations) => annotations?.['org.opencontainers.image.ref.name'])).toEqual(
      ['1', '2'],
    );
  });
});

describe('tags claimed in the layout', () => {
  const one = `sha256:${'1'.repeat(64)}`;
  const two = `sha256:${'2'.repeat(64)}`;

  it('refuses a tag given to two images, naming both', () => {
    const claims = new TagClaims();
    claims.claim(one, ['ghcr.io/o/api:pr-1']);
    const error = (() => {
      try {
        claims.claim(two, ['ghcr.io/o/web:pr-1']);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(
      /^The OCI layout would give the tag `pr-1` to two images, `ghcr\.io\/o\/api:pr-1` \(sha256:1{64}\) and `ghcr\.io\/o\/web:pr-1` \(sha256:2{64}\).*name the tags to load in `tags`/,
    );
  });

  it.each([
    ['the same image under the same tag again', [one, ['a:1']], [one, ['b:1']]],
    ['two images under different tags', [one, ['a:1']], [two, ['a:2']]],
    ['two untagged images', [one, []], [two, []]],
  ] as const)('accepts %s', (_case, first, second) => {
    const claims = new TagClaims();
    claims.claim(first[0], first[1]);
    expect(() => claims.claim(second[0], second[1])).not.toThrow();
  });
});

describe('how buildx reaches an entry', () => {
  const tagged = (tag: string, digest = descriptor.digest): IndexEntry => ({
    ...descriptor,
    digest,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  it.each([
    ['the only entry', [tagged('pr-1')], 0],
    ['the entry tagged latest among several', [tagged('pr-1'), tagged('latest', `sha256:${'c'.repeat(64)}`)], 1],
    ['no entry: several, none tagged latest', [tagged('pr-1'), tagged('sha-1')], undefined],
    ['the only, untagged, entry', [{ ...descriptor }], 0],
  ])('`oci-layout://DIR` alone: %s', (_case, entries, index) => {
    const { bare, tagged: addressed } = addresses('/l', entries);
    expect(bare).toBe(index === undefined ? undefined : entries[index]);
    expect(addressed.map(({ address }) => address)).toEqual(
      entries.flatMap((entry) => {
        const tag = entry.annotations?.['org.opencontainers.image.ref.name'];
        return tag ? [`oci-layout:///l:${tag}`] : [];
      }),
    );
  });
});

describe('the manifest of a docker-archive image', () => {
  it.each([
    ['none', 'application/vnd.oci.image.layer.v1.tar'],
    ['gzip', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
  ] as const)('a %s layer is %s', (compression, mediaType) => {
    expect(layerMediaType(compression)).toBe(mediaType);
  });

  it('describes the config and the layers as written, and is named by its own digest', () => {
    const config = { digest: `sha256:${'c'.repeat(64)}`, size: 900 };
    const layers = [
      { digest: `sha256:${'d'.repeat(64)}`, size: 10240, compression: 'none' as const },
      { digest: `sha256:${'e'.repeat(64)}`, size: 300, compression: 'gzip' as const },
    ];
    const { descriptor: made, content } = dockerArchiveManifest(config, layers);
    expect(made).toEqual({ mediaType: MANIFEST, digest: sha256(content), size: content.length });
    expect(JSON.parse(content.toString())).toEqual({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layers[0]!.digest, size: 10240 },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layers[1]!.digest, size: 300 },
      ],
    });
  });
});

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'handoff-layout-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** The canonical archive of `tar`, fed in small chunks, written into `layout` as one part. */
async function writePart(layout: OciLayout, tar: Buffer, wanted?: string[]): Promise<void> {
  const part = await layout.part();
  const select = (report: Parameters<typeof selectReferences>[0]) => selectReferences(report, wanted);
  const writer = createCanonicalWriter({ select, beforeEnd: async (report) => part.admit(report, select(report)) });
  const chunks = Array.from({ length: Math.ceil(tar.length / 1000) }, (_, i) => tar.subarray(i * 1000, (i + 1) * 1000));
  const nowhere = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  await pipeline([Readable.from(chunks), writer.stream, part.stream, nowhere]);
}

interface ReadLayout {
  entries: IndexEntry[];
  /** Blob digest → content, every one checked against its name. */
  blobs: Map<string, Buffer>;
  /** The blobs the entries reach. */
  reached: Set<string>;
  /** Each entry's platforms, as the config of each image manifest below it says, with its diff_ids. */
  images: Map<string, Array<{ platform: string; diffIds: string[]; layers: string[] }>>;
}

/** Reads a layout with JSON.parse and sha256 alone, as a consumer would, walking from index.json to every blob. */
async function readLayout(directory: string): Promise<ReadLayout> {
  expect((await readdir(directory)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  expect(JSON.parse(await readFile(path.join(directory, 'oci-layout'), 'utf8'))).toEqual({
    imageLayoutVersion: '1.0.0',
  });
  const blobs = new Map<string, Buffer>();
  for (const name of await readdir(path.join(directory, 'blobs', 'sha256'))) {
    const content = await readFile(path.join(directory, 'blobs', 'sha256', name));
    expect(sha256(content), `blob ${name}`).toBe(`sha256:${name}`);
    blobs.set(`sha256:${name}`, content);
  }
  const index = JSON.parse(await readFile(path.join(directory, 'index.json'), 'utf8')) as { manifests: IndexEntry[] };
  const reached = new Set<string>();
  const images = new Map<string, Array<{ platform: string; diffIds: string[]; layers: string[] }>>();
  const reach = (digest: string, size: number): Buffer => {
    const content = blobs.get(digest);
    expect(content, `blob ${digest}`).toBeDefined();
    expect(content!.length).toBe(size);
    reached.add(digest);
    return content!;
  };
  const walk = (
    digest: string,
    size: number,
    found: Array<{ platform: string; diffIds: string[]; layers: string[] }>,
  ) => {
    const document = JSON.parse(reach(digest, size).toString()) as {
      manifests?: Array<{ digest: string; size: number }>;
      config?: { digest: string; size: number };
      layers?: Array<{ digest: string; size: number }>;
    };
    for (const child of document.manifests ?? []) walk(child.digest, child.size, found);
    if (!document.config) return;
    const config = JSON.parse(reach(document.config.digest, document.config.size).toString()) as {
      os: string;
      architecture: string;
      rootfs: { diff_ids: string[] };
    };
    for (const layer of document.layers ?? []) reach(layer.digest, layer.size);
    found.push({
      platform: `${config.os}/${config.architecture}`,
      diffIds: config.rootfs.diff_ids,
      layers: (document.layers ?? []).map((layer) => layer.digest),
    });
  };
  for (const entry of index.manifests) {
    const found: Array<{ platform: string; diffIds: string[]; layers: string[] }> = [];
    walk(entry.digest, entry.size, found);
    images.set(entry.digest, found);
  }
  return { entries: index.manifests, blobs, reached, images };
}

const tagOf = (entry: IndexEntry) => entry.annotations?.['org.opencontainers.image.ref.name'];

describe('the layout written from a canonical archive', () => {
  let base: FixtureImage;
  let app: FixtureImage;
  beforeAll(async () => {
    base = await makeImage(['example.com/base:1'], { seed: 'base' });
    // Built FROM base: its bottom layer is base's.
    const own = (await makeImage([], { seed: 'app', layerCount: 1 })).layers[0]!;
    const layers = [base.layers[0]!, own];
    app = { config: makeConfig(layers), layers, tags: ['example.com/app:2', 'example.com/app:latest'] };
  });

  /** The platforms and layers each entry reaches, by its tag. */
  const byTag = (read: ReadLayout) =>
    Object.fromEntries(read.entries.map((entry) => [tagOf(entry) ?? '', read.images.get(entry.digest)]));

  it('gives docker-archive images OCI manifests whose layers are their diff_ids, each blob once', async () => {
    const destination = path.join(work, 'docker-archive');
    const layout = await openLayout(destination);
    await writePart(layout, await packTar(dockerArchiveEntries([app, base])));
    const lines = await layout.commit();
    const read = await readLayout(destination);
    expect(read.entries.map(tagOf)).toEqual(['2', 'latest', '1']);
    expect(read.reached).toEqual(new Set(read.blobs.keys()));
    // 3 layers (one shared), 2 configs, 2 manifests made here.
    expect(read.blobs.size).toBe(7);
    const images = byTag(read);
    for (const [tag, image] of [
      ['2', app],
      ['latest', app],
      ['1', base],
    ] as const) {
      expect(images[tag]).toEqual([
        { platform: 'linux/amd64', diffIds: image.layers.map(sha256), layers: image.layers.map(sha256) },
      ]);
    }
    expect(lines[0]).toMatch(/^OCI layout written: `.*docker-archive` \(2 images, 7 blobs\)$/);
    expect(lines).toContainEqual(expect.stringMatching(/`oci-layout:\/\/.*docker-archive` alone: sha256:/));
  });

  it('says how buildx reaches each image: at most ten tags, then how many more', async () => {
    const tags = Array.from({ length: 12 }, (_, i) => `example.com/many:t${i}`);
    const destination = path.join(work, 'many');
    const layout = await openLayout(destination);
    await writePart(layout, await packTar(dockerArchiveEntries([{ ...base, tags }])));
    const lines = await layout.commit();
    expect((await readLayout(destination)).entries.map(tagOf)).toEqual(tags.map((tag) => tag.split(':')[1]));
    expect(lines.slice(1, 3)).toEqual([
      expect.stringMatching(/^ {2}`oci-layout:\/\/.*many:t0`: `example\.com\/many:t0` sha256:[0-9a-f]{64}$/),
      expect.stringMatching(/many:t1`/),
    ]);
    expect(lines.slice(11)).toEqual([
      '  … and 2 more tags',
      expect.stringMatching(/^ {2}`oci-layout:\/\/.*many` alone names no image \(no tag `latest`, several images\)/),
    ]);
  });

  it('keeps a multi-platform index whole: every platform, every attestation, gzip layers as they are', async () => {
    const multi = { ...base, tags: ['example.com/multi:3'] };
    const arm = forPlatform(multi, { os: 'linux', architecture: 'arm64' });
    const tar = await packTar(ociLayoutEntries([multi, arm], { nested: true, attestations: true, gzip: true }));
    const destination = path.join(work, 'multi');
    const layout = await openLayout(destination);
    await writePart(layout, tar);
    await layout.commit();
    const read = await readLayout(destination);
    expect(read.entries).toHaveLength(1);
    expect(read.entries[0]!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(byTag(read)['3']!.map((one) => one.platform)).toEqual([
      'linux/amd64',
      'unknown/unknown',
      'linux/arm64',
      'unknown/unknown',
    ]);
    expect(byTag(read)['3']![0]!.layers).toEqual(base.layers.map((layer) => sha256(gzipSync(layer))));
    expect(read.reached).toEqual(new Set(read.blobs.keys()));
  });

  it('keeps only the images `tags` selects', async () => {
    const destination = path.join(work, 'selected');
    const layout = await openLayout(destination);
    await writePart(layout, await packTar(ociLayoutEntries([app, base], { docker25: true })), ['example.com/base:1']);
    await layout.commit();
    const read = await readLayout(destination);
    expect(read.entries.map(tagOf)).toEqual(['1']);
    // base's two layers, its config and its manifest: none of app's, nor docker's v1 layer JSON blobs.
    expect(read.blobs.size).toBe(4);
    expect(read.reached).toEqual(new Set(read.blobs.keys()));
  });

  it('holds the images of several artifacts, and refuses a tag two of them give to different images', async () => {
    const destination = path.join(work, 'several');
    const layout = await openLayout(destination);
    await writePart(layout, await packTar(dockerArchiveEntries([base])));
    await writePart(layout, await packTar(ociLayoutEntries([app], { gzip: true })));
    const other = await makeImage(['example.com/other:2'], { seed: 'other' });
    await expect(writePart(layout, await packTar(dockerArchiveEntries([other])))).rejects.toThrow(
      /would give the tag `2` to two images, `example\.com\/app:2`/,
    );
    await layout.discard();
    expect(await readdir(work)).not.toContainEqual(expect.stringMatching(/^\.several/));
  });

  it('leaves nothing behind when the archive fails verification', async () => {
    const corrupt = {
      ...base,
      layers: [base.layers[0]!, Buffer.concat([base.layers[1]!.subarray(0, 1024), Buffer.alloc(1024)])],
    };
    const destination = path.join(work, 'refused');
    const layout = await openLayout(destination);
    await expect(writePart(layout, await packTar(dockerArchiveEntries([corrupt])))).rejects.toThrow(/diff_id/);
    await layout.discard();
    expect((await readdir(work)).filter((name) => name.includes('refused'))).toEqual([]);
  });
});

describe('the destination', () => {
  it('may be an empty directory, and its missing parents are made', async () => {
    const empty = path.join(work, 'empty');
    await mkdir(empty);
    const nested = path.join(work, 'a', 'b', 'c');
    for (const destination of [empty, nested]) {
      const layout = await openLayout(destination);
      await writePart(layout, await packTar(dockerArchiveEntries([await makeImage(['example.com/d:1'])])));
      await layout.commit();
      expect((await readLayout(destination)).entries).toHaveLength(1);
    }
  });

  it('is refused, before anything is written, when it holds something or is a file', async () => {
    const full = path.join(work, 'full');
    await mkdir(full);
    for (const name of ['a', 'b', 'c', 'd', 'e']) await writeFile(path.join(full, name), name);
    await expect(openLayout(full)).rejects.toThrow(
      /^`oci-layout` `.*full` already holds `.`, `.`, `.` and more: expected a new or empty directory/,
    );
    const file = path.join(work, 'file');
    await writeFile(file, 'x');
    await expect(openLayout(file)).rejects.toThrow(
      /^`oci-layout` `.*file` is a file: expected a new or empty directory/,
    );
    expect((await readdir(work)).filter((name) => name.startsWith('.full') || name.startsWith('.file'))).toEqual([]);
  });
});
