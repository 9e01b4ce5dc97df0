/**
 * Verification of a whole archive once its stream has ended: which layout it is, every image of manifest.json and of
 * the OCI walk, every blob against its digest, every layer against its diff_id, and the names, each on one image.
 */
import { Warnings, shown, shownList } from '../display.ts';
import { refuse } from '../errors.ts';
import { platformText } from '../platform.ts';
import { qualify } from '../reference.ts';
import type { ArchiveContents } from './contents.ts';
import { diffIdsOf } from './descriptor.ts';
import { readConfig, readManifestJson, type ManifestItem } from './docker-archive.ts';
import type { JsonObject } from './json.ts';
import { checkLayer } from './layers.ts';
import {
  blobPath,
  type ArchiveFormat,
  type ArchiveImage,
  type ArchiveReport,
  type FileRecord,
  type PlatformImage,
} from './model.ts';
import { OciWalk, type WalkImage, type WalkTarget } from './oci.ts';

class Verification {
  readonly contents: ArchiveContents;
  readonly warnings = new Warnings();
  /** Paths whose content was checked against a digest (their own or a diff_id). */
  readonly verified = new Set<string>();

  constructor(contents: ArchiveContents) {
    this.contents = contents;
  }

  /**
   * The images manifest.json lists, verified, with their RepoTags; `oci` (the OCI walk's image manifests, in a
   * docker-oci tarball) vouches for compressed layers that cannot match a diff_id.
   */
  legacyImages(
    items: ManifestItem[],
    oci: WalkImage[],
  ): Array<{ image: PlatformImage; references: string[]; root: string; size: number; layerFiles: string[] }> {
    return items.map((item, index) => {
      const where = `manifest.json entry ${index + 1}`;
      const { record, config } = readConfig(this.contents, item.config, where);
      this.#checkNamedDigest(record);
      this.verified.add(record.name);
      const diffIds = diffIdsOf(config, `The image config ${shown(item.config)}`);
      if (diffIds.length !== item.layers.length) {
        refuse(
          `${where} lists ${item.layers.length} layers but its config ${shown(item.config)} has ${diffIds.length} ` +
            'diff_ids; the tarball is corrupt.',
        );
      }
      const vouching = oci.find((image) => image.configDigest === record.digest);
      const layerFiles = item.layers.map((path, i) => {
        const layer = this.contents.find(path);
        if (!layer) refuse(`${where} names layer ${shown(path)}, which is not in the tarball; it is incomplete.`);
        this.#checkNamedDigest(layer);
        checkLayer(
          layer.expanded!,
          { name: path, size: layer.size },
          { diffId: diffIds[i]! },
          `${where} layer ${i + 1}`,
        );
        this.verified.add(path);
        this.verified.add(layer.name);
        return layer.name;
      });
      const created = config['created'];
      return {
        image: {
          platform: platformText(config, `The image config ${shown(item.config)}`),
          manifestDigest: vouching?.manifestDigest,
          configDigest: record.digest,
          layers: layerFiles,
          diffIds,
          created: typeof created === 'string' ? created : undefined,
        },
        references: item.repoTags,
        root: record.name,
        size: record.size,
        layerFiles,
      };
    });
  }

  /** Files named by a digest (blobs/sha256/<hex>, a legacy `<hex>.json` config) must hash to that name. */
  #checkNamedDigest(record: FileRecord): void {
    const named = /^(?:blobs\/sha256\/([0-9a-f]{64})|([0-9a-f]{64})\.json)$/.exec(record.name);
    const hex = named?.[1] ?? named?.[2];
    if (hex && record.digest !== `sha256:${hex}`) {
      refuse(
        `${record.name} hashes to ${record.digest}, not to the digest in its name: it is corrupt or was ` +
          'replaced; produce the tarball again.',
      );
    }
  }

  /** Checks every blob file hashes to its name, and warns about files nothing refers to. */
  sweep(format: ArchiveFormat): void {
    const unreferenced: string[] = [];
    for (const record of this.contents.files.values()) {
      this.#checkNamedDigest(record);
      if (this.verified.has(record.name) || this.#isBookkeeping(record, format)) continue;
      unreferenced.push(record.name);
    }
    if (unreferenced.length > 0) {
      this.warnings.add(
        `${unreferenced.length} file(s) in the tarball are not part of any image: ${shownList(unreferenced, 5)}`,
      );
    }
    const byDigest = new Map<string, string[]>();
    for (const name of this.verified) {
      const record = this.contents.find(name);
      if (!record || record.name !== name || record.size === 0) continue;
      const names = byDigest.get(record.digest);
      if (names) names.push(name);
      else byDigest.set(record.digest, [name]);
    }
    for (const [digest, names] of byDigest) {
      if (names.length > 1) {
        const which = names.length === 2 ? names.map((name) => shown(name)).join(' and ') : shownList(names, 3);
        this.warnings.add(`${which} have the same content (${digest}).`);
      }
    }
  }

  #isBookkeeping(record: FileRecord, format: ArchiveFormat): boolean {
    if (['manifest.json', 'index.json', 'oci-layout', 'repositories'].includes(record.name)) return true;
    // Docker ≤ 24 keeps each layer's v1 `json` and `VERSION` beside its layer.tar.
    if (/^[0-9a-f]{64}\/(?:json|VERSION)$/.test(record.name)) return true;
    // Docker 25+ writes each layer's v1 JSON as a blob that no manifest refers to.
    if (format === 'docker-oci' && record.name.startsWith('blobs/sha256/') && record.content) {
      const value = this.contents.json(record, 'A legacy layer JSON');
      return typeof value === 'object' && value !== null && typeof (value as JsonObject)['id'] === 'string';
    }
    return false;
  }
}

/** Verifies a whole archive once its stream has ended: the layout, every image, every blob. */
export function verifyContents(contents: ArchiveContents, bytes: number, entries: number): ArchiveReport {
  for (const [name, target] of contents.links) {
    if (!contents.files.has(target)) {
      refuse(`The tarball's link ${shown(name)} points at ${shown(target)}, which is not a file in the tarball.`);
    }
  }
  const hasManifest = contents.files.has('manifest.json');
  const hasIndex = contents.files.has('index.json');
  if (!hasManifest && !hasIndex) {
    const names = shownList([...contents.files.keys()], 5);
    refuse(
      'This is not an image tarball: it has neither manifest.json (docker save) nor index.json (OCI layout)' +
        (names ? `; found ${names}` : '; found no files') +
        '. Pass the output of docker save, buildx, skopeo or podman.',
    );
  }
  const format: ArchiveFormat = !hasIndex ? 'docker-archive' : hasManifest ? 'docker-oci' : 'oci-layout';
  if (hasIndex) {
    const layout = contents.files.get('oci-layout');
    if (!layout) refuse('The tarball has index.json but no oci-layout file; it is not a complete OCI image layout.');
    const value = contents.json(layout, 'oci-layout');
    if (
      typeof value !== 'object' ||
      value === null ||
      typeof (value as JsonObject)['imageLayoutVersion'] !== 'string'
    ) {
      refuse('oci-layout has no imageLayoutVersion; the tarball is not a valid OCI image layout.');
    }
  }

  const verification = new Verification(contents);
  const walk = hasIndex ? new OciWalk(contents, verification.verified, verification.warnings) : undefined;
  const targets = walk ? walk.run() : [];
  const walked = [...new Set(targets.flatMap((target) => target.images))].map((digest) => walk!.image(digest));
  const listed = hasManifest ? verification.legacyImages(readManifestJson(contents), walked) : [];
  const images = imagesOf(targets, walked, listed);
  const tree = new Map(walk?.tree);
  for (const { root, layerFiles } of listed) if (!tree.has(root)) tree.set(root, [...new Set(layerFiles)]);
  verification.sweep(format);

  const references = new Map<string, string>();
  const owners = new Map<string, ArchiveImage>();
  for (const image of images) {
    for (const reference of image.references) {
      const name = qualify(reference);
      const owner = owners.get(name);
      if (owner !== undefined && owner !== image) {
        refuse(
          `The tarball gives the tag ${shown(reference)} to two images (${owner.digest} and ${image.digest}): an engine ` +
            'would keep only the last one it reads, so the tarball is refused.',
        );
      }
      owners.set(name, image);
      if (!references.has(name)) references.set(name, reference);
    }
  }
  const platforms = [
    ...new Set(images.flatMap((image) => image.platforms.map((one) => one.platform)).filter((p) => p !== undefined)),
  ];
  const blobs = new Map<string, number>();
  for (const name of verification.verified) {
    const record = contents.find(name)!;
    blobs.set(record.digest, record.size);
  }
  return {
    format,
    references: [...references.values()],
    bareNames: [...new Set(images.flatMap((image) => image.bareNames))],
    images,
    platforms,
    tree,
    blobs: [...blobs].map(([digest, size]) => ({ digest, size })),
    warnings: verification.warnings.list(),
    loadableByLegacyEngine: hasManifest,
    entries,
    bytes,
  };
}

/**
 * The images of the archive, one per descriptor that references name. In an OCI layout those are index.json's
 * entries; manifest.json (docker-oci) adds its RepoTags to the image that holds the config it names. In a
 * docker-archive each manifest.json entry is an image of one platform, named by its config.
 */
function imagesOf(
  targets: readonly WalkTarget[],
  walked: readonly WalkImage[],
  listed: ReadonlyArray<{ image: PlatformImage; references: string[]; root: string; size: number }>,
): ArchiveImage[] {
  const byManifest = new Map(walked.map((image) => [image.manifestDigest, image]));
  const images: ArchiveImage[] = targets.map((target) => ({
    digest: target.digest,
    kind: target.kind,
    mediaType: target.mediaType,
    size: target.size,
    root: blobPath(target.digest),
    references: [...target.references],
    bareNames: [...target.bareNames],
    platforms: target.images.map((digest) => {
      const image = byManifest.get(digest)!;
      return {
        platform: image.platform,
        manifestDigest: image.manifestDigest,
        configDigest: image.configDigest,
        layers: image.layers,
        diffIds: image.diffIds,
        created: image.created,
      };
    }),
    attestations: [...target.attestations],
  }));
  for (const { image, references, root, size } of listed) {
    // manifest.json names one platform's config; the image it belongs to is the one naming that config already
    // by one of these references, else any image holding that config, else a docker-archive image of its own.
    const holding = images.filter((candidate) =>
      candidate.platforms.some((one) => one.configDigest === image.configDigest),
    );
    const named = holding.find((candidate) =>
      candidate.references.some((reference) => references.some((tag) => qualify(tag) === qualify(reference))),
    );
    const owner =
      named ??
      holding[0] ??
      images.find((candidate) => candidate.kind === 'config' && candidate.digest === image.configDigest);
    if (owner) {
      // RepoTags first: they are spelled as the user tagged the image (`app:1`, not `docker.io/library/app:1`).
      owner.references = [...references, ...owner.references];
      continue;
    }
    images.push({
      digest: image.configDigest,
      kind: 'config',
      mediaType: undefined,
      size,
      root,
      references: [...references],
      bareNames: [],
      platforms: [image],
      attestations: [],
    });
  }
  for (const image of images) {
    const seen = new Set<string>();
    image.references = image.references.filter(
      (reference) => !seen.has(qualify(reference)) && seen.add(qualify(reference)),
    );
    if (image.references.length > 0) image.bareNames = [];
  }
  return images;
}
