/**
 * What an image in a tarball is to a given engine: the ID that engine shows for it, and whether the image a tag
 * names in the engine is that image. Save, load and `load: false` all answer these questions here.
 */
import { MANIFEST_TYPES, loadedPlatform, type ArchiveImage } from './archive/model.ts';
import type { EngineKind, ImageInfo } from './engine/output.ts';
import { platformMatches } from './platform.ts';

/**
 * The ID `docker image inspect` shows for `image` on an engine of `kind` once it is loaded. The containerd image
 * store names an image by the digest of the index or manifest its tag points at; other engines by the config
 * digest. A docker-archive has no manifest: the containerd image store writes one when it loads it, whose digest
 * no tarball holds, so its config digest stands in (README: Outputs).
 */
export function imageIdOn(kind: EngineKind, image: ArchiveImage, enginePlatform?: string): string {
  if (kind === 'docker-containerd' && image.kind !== 'config') return image.digest;
  return (loadedPlatform(image, enginePlatform) ?? image.platforms[0]!).configDigest;
}

/** Every ID under which an engine may hold `image`: its own digest, and each platform's manifest and config. */
export function idsOf(image: ArchiveImage): string[] {
  const ids = [image.digest];
  for (const one of image.platforms) {
    if (one.manifestDigest) ids.push(one.manifestDigest);
    ids.push(one.configDigest);
  }
  return [...new Set(ids)];
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

/**
 * Whether `actual` (what the engine's tag names) is `expected`. Its ID must be one from the image's own tree; on
 * the containerd image store a docker-archive is loaded under a manifest the engine wrote itself, so there the
 * image must instead have one of the tarball's configs: the same layers (diff_ids), platform and creation time.
 */
export function isSameImage(expected: ArchiveImage, actual: ImageInfo, kind: EngineKind): boolean {
  if (idsOf(expected).includes(actual.id)) return true;
  if (kind !== 'docker-containerd' || actual.targetType === undefined || !MANIFEST_TYPES.has(actual.targetType)) {
    return false;
  }
  return expected.platforms.some(
    (one) =>
      one.manifestDigest === undefined &&
      sameList(one.diffIds, actual.layers) &&
      one.platform !== undefined &&
      platformMatches(actual.platform, one.platform) &&
      sameCreated(one.created, actual.created),
  );
}

/** The config's `created` against the engine's: an image whose config has none is shown with an empty time. */
function sameCreated(config: string | undefined, engine: string): boolean {
  if (config === undefined) return engine === '' || engine.startsWith('0001-01-01');
  return Date.parse(config) === Date.parse(engine);
}
