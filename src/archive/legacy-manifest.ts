/**
 * Docker before 25 loads only tarballs with a manifest.json. A pure OCI layout (buildx `type=oci`, skopeo or
 * podman `oci-archive`) that holds one image for the wanted platform can still be loaded by appending one: the
 * legacy loader reads the whole archive before it looks for manifest.json, and it decompresses gzip layers itself.
 */
import { UserError } from '../errors.ts';
import type { ArchiveReport } from './inspect.ts';

function blobPath(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/**
 * The manifest.json entry for the one image of `report` on `platform` (any platform when omitted), tagged with
 * `tags` (the full references the tarball records when omitted).
 */
export function legacyManifestFor(
  report: ArchiveReport,
  options: { platform?: string; tags?: readonly string[] } = {},
): { name: string; content: Buffer } {
  if (report.loadableByLegacyEngine) {
    throw new UserError('The tarball already has a manifest.json; it needs no other to load.');
  }
  const { platform } = options;
  const candidates = report.images.filter((image) => platform === undefined || image.platform === platform);
  if (candidates.length !== 1) {
    const found = report.images.map((image) => image.platform ?? 'unknown platform').join(', ');
    throw new UserError(
      `This OCI tarball holds ${candidates.length === 0 ? 'no' : candidates.length} image(s)` +
        `${platform ? ` for ${platform}` : ''} (it has: ${found}); Docker before 25 loads exactly one from it: ` +
        'save a single platform, or load with Docker 25 or later.',
    );
  }
  const image = candidates[0]!;
  const manifest = [
    {
      Config: blobPath(image.configDigest),
      RepoTags: [...(options.tags ?? image.references)],
      Layers: image.layers.map(blobPath),
    },
  ];
  return { name: 'manifest.json', content: Buffer.from(JSON.stringify(manifest)) };
}
