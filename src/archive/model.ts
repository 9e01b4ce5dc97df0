/**
 * The one model of an image tarball every layout is read into: what an image is (an index, a manifest or a
 * docker-archive config, the platforms below it), what the archive holds, the media types that say which is which,
 * and where a blob lives. Pure.
 */
import { platformMatches } from '../platform.ts';
import type { LayerContent } from './layers.ts';

export type ArchiveFormat = 'docker-archive' | 'docker-oci' | 'oci-layout';

/** One platform's image: its manifest (none in a docker-archive), its config and its layers. */
export interface PlatformImage {
  /** `os/architecture[/variant]`, from the config (or the index when the config has none). */
  platform: string | undefined;
  /** Digest of the image manifest; undefined in a docker-archive, which has none. */
  manifestDigest: string | undefined;
  /** `sha256:` digest of the image config: the image ID on engines without the containerd image store. */
  configDigest: string;
  /** docker-archive: layer paths inside the tarball, as manifest.json lists them; OCI layouts: blob digests. */
  layers: string[];
  /** The config's rootfs.diff_ids (the uncompressed layers): what an engine reports as the image's layers. */
  diffIds: string[];
  /** The config's `created` time, as the engine reports it. */
  created: string | undefined;
}

/**
 * An image as its references name it: the descriptor a reference points at (an index, a manifest, or in a
 * docker-archive the config), the platforms below it, and the attestations that belong to it. One image may have
 * several references (tags) and several platforms; attestations (platform `unknown/unknown`) are never platforms.
 */
export interface ArchiveImage {
  /** The digest of what the references name: on the containerd image store, the image ID after a load. */
  digest: string;
  kind: 'index' | 'manifest' | 'config';
  /** The media type and size of that index or manifest (undefined for a docker-archive's config). */
  mediaType: string | undefined;
  size: number;
  /** The archive path of that index, manifest or config: the root of the image's files in `ArchiveReport.tree`. */
  root: string;
  /** Full references: RepoTags, `io.containerd.image.name`, and `org.opencontainers.image.ref.name` when full. */
  references: string[];
  /**
   * `org.opencontainers.image.ref.name` values that are not a full reference (`latest`, `v1`) on an image that
   * has no full one: a name the producer gave, but no repository to tag the image with.
   */
  bareNames: string[];
  platforms: PlatformImage[];
  /** Manifest digests of the attestations (provenance, SBOM) below the image's index. */
  attestations: string[];
}

export interface ArchiveReport {
  format: ArchiveFormat;
  /** Every full reference of every image, each once. */
  references: string[];
  /** Every bare name (see ArchiveImage.bareNames), each once. */
  bareNames: string[];
  images: ArchiveImage[];
  /** Every platform of every image, each once. */
  platforms: string[];
  /**
   * Archive path → the paths it names (an index its manifests, a manifest its config and layers, a docker-archive
   * config its layers): with each image's `root`, the files that make up an image.
   */
  tree: Map<string, string[]>;
  /** Every blob that was verified, by the hash of its content. */
  blobs: Array<{ digest: string; size: number }>;
  warnings: string[];
  /** Has manifest.json, which Docker before 25 needs to load a tarball. */
  loadableByLegacyEngine: boolean;
  entries: number;
  bytes: number;
}

export interface FileRecord {
  readonly name: string;
  readonly size: number;
  readonly digest: string;
  /** The content, kept when it looked like JSON and was small enough. */
  readonly content: Buffer | undefined;
  /** What the file holds decompressed (itself when it is not compressed): a layer's diff_id, once the archive ended. */
  expanded: LayerContent | undefined;
}

export const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
export const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);
export const CONFIG_TYPES = new Set([
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
]);
/** The path of a blob in an OCI image layout. */
export function blobPath(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/**
 * The platform of `image` an engine without the containerd image store holds after a load: the only one, or the
 * engine's own; undefined when the image has several and none is the engine's.
 */
export function loadedPlatform(image: ArchiveImage, enginePlatform: string | undefined): PlatformImage | undefined {
  if (image.platforms.length === 1) return image.platforms[0];
  if (enginePlatform === undefined) return undefined;
  return image.platforms.find((one) => platformMatches(one.platform, enginePlatform));
}
