/** The one model of an image (index → platforms + attestations, per reference) and what each engine makes of it. */
import { describe, expect, it } from 'vitest';
import type { ArchiveImage } from '../../src/archive/model.ts';
import type { EngineKind, ImageInfo } from '../../src/engine/output.ts';
import { loadedPlatform } from '../../src/archive/model.ts';
import { idsOf, imageIdOn, isSameImage } from '../../src/images.ts';
import { describeImages } from '../../src/action/summary.ts';
import {
  dockerArchiveEntries,
  forPlatform,
  inspectBuffer,
  makeImage,
  ociLayoutEntries,
  packTar,
  sha256,
} from '../support/fixtures.ts';

const app = await makeImage(['ghcr.io/owner/app:pr-1', 'ghcr.io/owner/app:sha-abc'], { seed: 'app' });
const arm = forPlatform(app, { os: 'linux', architecture: 'arm64' });
const other = await makeImage(['ghcr.io/owner/other:1'], { seed: 'other' });

describe('the image model', () => {
  it('a buildx image: one image whose index holds one platform and its attestation', async () => {
    const report = await inspectBuffer(
      await packTar(ociLayoutEntries([app], { gzip: true, nested: true, attestations: true })),
    );
    expect(report.images).toHaveLength(1);
    const [image] = report.images;
    expect(image!.kind).toBe('index');
    expect(image!.references).toEqual(app.tags);
    expect(image!.platforms.map((one) => one.platform)).toEqual(['linux/amd64']);
    expect(image!.platforms[0]!.configDigest).toBe(sha256(app.config));
    expect(image!.attestations).toHaveLength(1);
    expect(report.platforms).toEqual(['linux/amd64']);
    expect(describeImages(report)).toBe('1 image, 1 platform, 1 attestation');
  });

  it('a two-platform image with attestations is 1 image, 2 platforms; unknown/unknown is never a platform', async () => {
    const report = await inspectBuffer(
      await packTar(ociLayoutEntries([app, arm], { gzip: true, nested: true, attestations: true })),
    );
    expect(describeImages(report)).toBe('1 image, 2 platforms, 2 attestations');
    expect(report.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    const [image] = report.images;
    // The reference names the index: its digest is what the containerd image store shows as the image ID.
    const index = JSON.parse(
      (await packTar(ociLayoutEntries([app, arm], { gzip: true, nested: true, attestations: true })))
        .toString('latin1')
        .match(
          /\{"schemaVersion":2,"mediaType":"application\/vnd\.oci\.image\.index\.v1\+json","manifests":\[\{"mediaType[^\0]*?\]\}/,
        )![0],
    ) as { manifests: unknown[] };
    expect(index.manifests).toHaveLength(4);
    expect(image!.platforms.map((one) => one.manifestDigest)).not.toContain(image!.digest);
  });

  it('a manifest per tag (Docker 28 graphdriver save): one image of kind manifest, named by both tags', async () => {
    const report = await inspectBuffer(await packTar(ociLayoutEntries([app], { docker25: true })));
    expect(report.images).toHaveLength(1);
    expect(report.images[0]).toMatchObject({ kind: 'manifest', references: app.tags, attestations: [] });
    expect(report.images[0]!.digest).toBe(report.images[0]!.platforms[0]!.manifestDigest);
  });

  it('a docker-archive: each image is named by its config and has no manifest', async () => {
    const report = await inspectBuffer(await packTar(dockerArchiveEntries([app, other])));
    expect(report.images.map((image) => [image.kind, image.digest])).toEqual([
      ['config', sha256(app.config)],
      ['config', sha256(other.config)],
    ]);
    expect(report.images[0]!.platforms[0]!.manifestDigest).toBeUndefined();
    expect(report.images[0]!.platforms[0]!.diffIds).toEqual(app.layers.map((layer) => sha256(layer)));
    expect(describeImages(report)).toBe('2 images, 2 platforms');
  });

  it('an index listing its child many times still has each platform once', async () => {
    const entries = ociLayoutEntries([app], { gzip: true, nested: true });
    const report = await inspectBuffer(await packTar(entries));
    expect(report.images[0]!.platforms).toHaveLength(1);
  });
});

const image: ArchiveImage = {
  digest: 'sha256:' + 'a'.repeat(64),
  kind: 'index',
  mediaType: 'application/vnd.oci.image.index.v1+json',
  size: 855,
  root: 'blobs/sha256/' + 'a'.repeat(64),
  references: ['app:1'],
  bareNames: [],
  platforms: [
    {
      platform: 'linux/amd64',
      manifestDigest: 'sha256:' + 'b'.repeat(64),
      configDigest: 'sha256:' + 'c'.repeat(64),
      layers: [],
      diffIds: ['sha256:' + '1'.repeat(64)],
      created: '2026-11-23T20:43:13.467224112Z',
    },
    {
      platform: 'linux/arm64',
      manifestDigest: 'sha256:' + 'd'.repeat(64),
      configDigest: 'sha256:' + 'e'.repeat(64),
      layers: [],
      diffIds: ['sha256:' + '2'.repeat(64)],
      created: '2026-11-23T20:43:13.467224112Z',
    },
  ],
  attestations: [],
};
const archived: ArchiveImage = {
  digest: 'sha256:' + 'f'.repeat(64),
  kind: 'config',
  mediaType: undefined,
  size: 895,
  root: 'f'.repeat(64) + '.json',
  references: ['legacy/app:x'],
  bareNames: [],
  platforms: [
    {
      platform: 'linux/amd64',
      manifestDigest: undefined,
      configDigest: 'sha256:' + 'f'.repeat(64),
      layers: ['x/layer.tar'],
      diffIds: ['sha256:' + '3'.repeat(64)],
      created: '2026-11-23T20:43:13.467224112Z',
    },
  ],
  attestations: [],
};

function engineImage(overrides: Partial<ImageInfo>): ImageInfo {
  return {
    id: 'sha256:' + '9'.repeat(64),
    repoTags: ['legacy/app:x'],
    created: '2026-11-23T20:43:13.467224112Z',
    size: 1,
    platform: 'linux/amd64',
    layers: ['sha256:' + '3'.repeat(64)],
    targetType: 'application/vnd.docker.distribution.manifest.v2+json',
    ...overrides,
  };
}

describe('image IDs per engine kind', () => {
  it.each([
    ['docker-containerd', image, 'linux/amd64', image.digest],
    ['docker-graphdriver', image, 'linux/amd64', image.platforms[0]!.configDigest],
    ['docker-graphdriver', image, 'linux/arm64', image.platforms[1]!.configDigest],
    ['podman', image, 'linux/arm64', image.platforms[1]!.configDigest],
    ['docker-containerd', archived, 'linux/amd64', archived.platforms[0]!.configDigest],
    ['docker-graphdriver', archived, 'linux/arm64', archived.platforms[0]!.configDigest],
  ] as const)('%s shows %#', (kind, which, platform, expected) => {
    expect(imageIdOn(kind, which, platform)).toBe(expected);
  });

  it('an engine without the containerd store loads its own platform, or the only one there is', () => {
    expect(loadedPlatform(image, 'linux/arm64')?.configDigest).toBe(image.platforms[1]!.configDigest);
    expect(loadedPlatform(image, 'linux/s390x')).toBeUndefined();
    expect(loadedPlatform(archived, 'linux/s390x')).toBe(archived.platforms[0]);
  });

  it('every ID an engine may show is from the tree, once', () => {
    expect(idsOf(image)).toEqual([
      image.digest,
      image.platforms[0]!.manifestDigest,
      image.platforms[0]!.configDigest,
      image.platforms[1]!.manifestDigest,
      image.platforms[1]!.configDigest,
    ]);
    expect(idsOf(archived)).toEqual([archived.digest]);
  });
});

describe('isSameImage: the check after load', () => {
  it.each([
    ['the index digest on the containerd store', image, { id: image.digest }, 'docker-containerd', true],
    ['a platform manifest', image, { id: image.platforms[1]!.manifestDigest! }, 'docker-containerd', true],
    [
      'a config digest on a graphdriver engine',
      image,
      { id: image.platforms[0]!.configDigest },
      'docker-graphdriver',
      true,
    ],
    ['another image', image, { id: 'sha256:' + '0'.repeat(64) }, 'docker-containerd', false],
    ['another image on a graphdriver engine', image, { id: 'sha256:' + '0'.repeat(64) }, 'docker-graphdriver', false],
    [
      'a docker-archive the containerd store rebuilt: same layers, platform, time',
      archived,
      {},
      'docker-containerd',
      true,
    ],
    [
      'a rebuilt manifest with other layers',
      archived,
      { layers: ['sha256:' + '4'.repeat(64)] },
      'docker-containerd',
      false,
    ],
    [
      'a rebuilt manifest made at another time',
      archived,
      { created: '2026-11-23T20:43:14Z' },
      'docker-containerd',
      false,
    ],
    ['a rebuilt manifest with no time when the config has one', archived, { created: '' }, 'docker-containerd', false],
    [
      'a rebuilt manifest of a config with no time (the engine shows none)',
      { ...archived, platforms: [{ ...archived.platforms[0]!, created: undefined }] },
      { created: '' },
      'docker-containerd',
      true,
    ],
    [
      'a config with no time, an engine image with one',
      { ...archived, platforms: [{ ...archived.platforms[0]!, created: undefined }] },
      {},
      'docker-containerd',
      false,
    ],
    ['a rebuilt manifest for another platform', archived, { platform: 'linux/arm64' }, 'docker-containerd', false],
    [
      'an index the engine holds with the same layers',
      archived,
      { targetType: 'application/vnd.oci.image.index.v1+json' },
      'docker-containerd',
      false,
    ],
    [
      'the same layers on a graphdriver engine (IDs are config digests there)',
      archived,
      {},
      'docker-graphdriver',
      false,
    ],
    [
      'an image with one layer more',
      archived,
      { layers: ['sha256:' + '3'.repeat(64), 'sha256:' + '4'.repeat(64)] },
      'docker-containerd',
      false,
    ],
  ] as Array<[string, ArchiveImage, Partial<ImageInfo>, EngineKind, boolean]>)(
    '%s',
    (_label, expected, overrides, kind, same) => {
      expect(isSameImage(expected, engineImage(overrides), kind)).toBe(same);
    },
  );
});
