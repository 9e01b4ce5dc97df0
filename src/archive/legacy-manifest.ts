/**
 * Docker engines without the containerd image store (Docker 20.10, and Docker 25+ in graphdriver mode, as on
 * GitHub's ubuntu-24.04) load only tarballs with a manifest.json: a pure OCI layout (buildx `type=oci`, skopeo or
 * podman `oci-archive`) fails there with `open …/blobs/json: no such file or directory`. It can still be loaded by
 * appending one: those loaders read the whole archive before they look for manifest.json, and decompress gzip
 * layers themselves. Such an engine holds one platform of an image, so each image contributes one entry.
 */
import { UserError } from '../errors.ts';
import { platformMatches } from '../platform.ts';
import type { ArchiveImage, ArchiveReport, PlatformImage } from './inspect.ts';

function blobPath(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

function platformFor(image: ArchiveImage, platform: string | undefined): PlatformImage {
  if (image.platforms.length === 1 && platform === undefined) return image.platforms[0]!;
  const candidates = image.platforms.filter((one) => platform === undefined || platformMatches(one.platform, platform));
  if (candidates.length === 1) return candidates[0]!;
  const found = image.platforms.map((one) => one.platform ?? 'unknown platform').join(', ');
  const name = image.references[0] ?? image.digest;
  throw new UserError(
    `The image ${name} has ${candidates.length === 0 ? 'no' : candidates.length} platform${candidates.length === 1 ? '' : 's'}` +
      `${platform ? ` for ${platform}` : ''} (it has: ${found}); an engine without the containerd image store loads ` +
      'exactly one: save the platform this runner has, or load on an engine with the containerd image store.',
  );
}

/**
 * The manifest.json entry for `report`: for each image, its platform `platform` (the engine's; any when the image
 * has one), tagged with `tags` (the image's full references when omitted).
 */
export function legacyManifestFor(
  report: ArchiveReport,
  options: { platform?: string; tags?: readonly string[] } = {},
): { name: string; content: Buffer } {
  if (report.loadableByLegacyEngine) {
    throw new UserError('The tarball already has a manifest.json; it needs no other to load.');
  }
  const manifest = report.images.map((image) => {
    const chosen = platformFor(image, options.platform);
    return {
      Config: blobPath(chosen.configDigest),
      RepoTags: [...(options.tags ?? image.references)],
      Layers: chosen.layers.map(blobPath),
    };
  });
  return { name: 'manifest.json', content: Buffer.from(JSON.stringify(manifest)) };
}
