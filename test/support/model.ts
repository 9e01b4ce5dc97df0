/** Archive-model values for the tests of pure decisions: images and reports without a tarball. */
import type { ArchiveImage, ArchiveReport } from '../../src/archive/model.ts';
import type { ImageInfo } from '../../src/engine/output.ts';

/** `sha256:` and 64 of one hex digit. */
export const digest = (c: string) => `sha256:${c.repeat(64)}`;
export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';

/**
 * An image of the archive model: a manifest of linux/amd64 (manifest 1, config c), an index (9, or 8 with `seed: 'b'`)
 * adding linux/arm64 (manifest 2, config f), or a docker-archive config (c).
 */
export function modelImage(
  references: string[],
  opts: { index?: boolean; kind?: 'config'; seed?: string } = {},
): ArchiveImage {
  const amd = {
    platform: 'linux/amd64',
    manifestDigest: opts.kind === 'config' ? undefined : digest('1'),
    configDigest: digest('c'),
    layers: [digest('d')],
    diffIds: [digest('e')],
    created: '2026-01-01T00:00:00Z',
  };
  const arm = { ...amd, platform: 'linux/arm64', manifestDigest: digest('2'), configDigest: digest('f') };
  if (opts.kind === 'config') {
    return {
      digest: amd.configDigest,
      kind: 'config',
      mediaType: undefined,
      size: 0,
      root: 'c.json',
      references,
      bareNames: [],
      platforms: [amd],
      attestations: [],
    };
  }
  return {
    digest: opts.index ? digest(opts.seed === 'b' ? '8' : '9') : amd.manifestDigest!,
    kind: opts.index ? 'index' : 'manifest',
    mediaType: opts.index ? INDEX_TYPE : MANIFEST_TYPE,
    size: 100,
    root: 'blobs/sha256/x',
    references,
    bareNames: [],
    platforms: opts.index ? [amd, arm] : [amd],
    attestations: [],
  };
}

/** The report of a tarball holding `images`. */
export function modelReport(images: ArchiveImage[]): ArchiveReport {
  return {
    format: 'docker-oci',
    references: images.flatMap((one) => one.references),
    bareNames: [],
    images,
    platforms: [...new Set(images.flatMap((one) => one.platforms.map((p) => p.platform!)))],
    tree: new Map(),
    blobs: [],
    warnings: [],
    loadableByLegacyEngine: true,
    entries: 0,
    bytes: 0,
  };
}

/** What `docker image inspect` says of image `id` (linux/amd64, no layers), with `extra` over it. */
export function imageInfo(id: string, extra: Partial<ImageInfo> = {}): ImageInfo {
  return {
    id,
    repoTags: [],
    created: '',
    size: 0,
    platform: 'linux/amd64',
    layers: [],
    targetType: undefined,
    ...extra,
  };
}
