/**
 * The OCI half of verification: from index.json down through nested indexes and manifests to every config and
 * layer blob. The structure is walked first (presence, sizes, cycles), and the hashes are compared after, so an
 * error names the most basic thing that is wrong.
 */
import { shown, type Warnings } from '../display.ts';
import { UserError } from '../errors.ts';
import { parseReference, SHA256_DIGEST } from '../reference.ts';
import type { ArchiveContents, FileRecord } from './inspect.ts';
import type { JsonObject } from './json.ts';

export const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
export const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);
const CONFIG_TYPES = new Set([
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
]);
/** Indexes nest one or two levels in practice; deeper is a construction meant to exhaust the reader. */
const MAX_INDEX_DEPTH = 8;
/**
 * Descriptors read in all indexes together. A multi-platform image with attestations lists a few dozen; an index
 * that lists its child thousands of times on each level is an attack on the walk.
 */
export const MAX_DESCRIPTORS = 100_000;

const IMAGE_NAME = 'io.containerd.image.name';
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface WalkImage {
  manifestDigest: string;
  configDigest: string;
  references: string[];
  bareNames: string[];
  platform: string | undefined;
  /** Layer blob digests, in order. */
  layers: string[];
}

interface Descriptor {
  mediaType: string | undefined;
  digest: string;
  size: number;
  platform: string | undefined;
  annotations: Record<string, string>;
}

function fail(message: string): never {
  throw new UserError(message);
}

function asObject(value: unknown, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`${what} is not a JSON object; the tarball is corrupt.`);
  }
  return value as JsonObject;
}

function platformText(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { os, architecture, variant } = value as JsonObject;
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture) return undefined;
  return [os, architecture, ...(typeof variant === 'string' && variant ? [variant] : [])].join('/');
}

function descriptor(value: unknown, where: string): Descriptor {
  const object = asObject(value, where);
  const { mediaType, digest, size, platform, annotations } = object;
  if (typeof digest !== 'string' || !SHA256_DIGEST.test(digest)) {
    fail(`${where} has digest ${shown(String(digest), 100)}; expected "sha256:" and 64 lowercase hex digits.`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    fail(`${where} has size ${shown(String(JSON.stringify(size)), 40)}; expected a whole number of bytes.`);
  }
  const texts: Record<string, string> = {};
  if (typeof annotations === 'object' && annotations !== null) {
    for (const [key, text] of Object.entries(annotations)) if (typeof text === 'string') texts[key] = text;
  }
  return {
    mediaType: typeof mediaType === 'string' ? mediaType : undefined,
    digest,
    size,
    platform: platformText(platform),
    annotations: texts,
  };
}

function referencesOf(annotations: Record<string, string>, where: string): { full: string[]; bare: string[] } {
  const full: string[] = [];
  const bare: string[] = [];
  for (const key of [IMAGE_NAME, REF_NAME]) {
    const text = annotations[key];
    if (text === undefined) continue;
    if (key === REF_NAME && !/[:/@]/.test(text)) {
      bare.push(text);
      continue;
    }
    const parsed = parseReference(text);
    if (!parsed.ok)
      fail(`${where} names the image ${shown(text)} (${key}), which is not a valid reference: ${parsed.reason}.`);
    full.push(text);
  }
  return { full: [...new Set(full)], bare: full.length > 0 ? [] : bare };
}

export class OciWalk {
  readonly #contents: ArchiveContents;
  readonly #verified: Set<string>;
  readonly #warnings: Warnings;
  readonly #images = new Map<string, WalkImage>();
  /** Per visited digest, the manifests below it: a DAG shared many times is walked once. */
  readonly #below = new Map<string, string[]>();
  readonly #toHash = new Map<string, { record: FileRecord; digest: string; where: string }>();
  #descriptors = 0;

  constructor(contents: ArchiveContents, verified: Set<string>, warnings: Warnings) {
    this.#contents = contents;
    this.#verified = verified;
    this.#warnings = warnings;
  }

  run(): WalkImage[] {
    const index = asObject(this.#contents.json(this.#contents.files.get('index.json')!, 'index.json'), 'index.json');
    const manifests = index['manifests'];
    if (!Array.isArray(manifests) || manifests.length === 0) {
      fail('index.json lists no manifests; the tarball holds no image.');
    }
    // Sets while walking: one image named by thousands of descriptors must not copy its list each time.
    const names = new Map<string, { references: Set<string>; bareNames: Set<string> }>();
    manifests.forEach((value, i) => {
      const where = `index.json manifest ${i + 1}`;
      const top = this.#descriptor(value, where);
      const { full, bare } = referencesOf(top.annotations, where);
      for (const manifestDigest of this.#walk(top, [], where, false)) {
        let named = names.get(manifestDigest);
        if (!named) names.set(manifestDigest, (named = { references: new Set(), bareNames: new Set() }));
        for (const reference of full) named.references.add(reference);
        for (const name of bare) named.bareNames.add(name);
      }
    });
    for (const [manifestDigest, named] of names) {
      const image = this.#images.get(manifestDigest)!;
      image.references = [...named.references];
      image.bareNames = [...named.bareNames];
    }
    for (const { record, digest, where } of this.#toHash.values()) {
      if (record.digest !== digest) {
        fail(
          `Blob ${digest} (${where}) hashes to ${record.digest}: it is corrupt or was replaced; produce the ` +
            'tarball again.',
        );
      }
    }
    const images = [...this.#images.values()];
    if (images.length === 0) fail('index.json leads to no image manifest with an image config; nothing to load.');
    for (const image of images) {
      if (image.bareNames.length > 0 && image.references.length > 0) image.bareNames = [];
    }
    return images;
  }

  /** Checks the blob a descriptor names is present with its size; its hash is compared at the end of `run`. */
  #blob(target: Descriptor, where: string): FileRecord {
    const path = `blobs/sha256/${target.digest.slice('sha256:'.length)}`;
    const record = this.#contents.files.get(path);
    if (!record) fail(`${where} refers to blob ${target.digest}, which is not in the tarball; it is incomplete.`);
    if (record.size === 0 && target.size > 0) {
      fail(
        `Blob ${target.digest} (${where}) is empty (0 bytes) but should be ${target.size} bytes: a blob that was ` +
          'never filled in (an unfinished cache or export); produce the tarball again.',
      );
    }
    if (record.size !== target.size) {
      fail(`Blob ${target.digest} (${where}) is ${record.size} bytes, but its descriptor says ${target.size}.`);
    }
    this.#toHash.set(target.digest, { record, digest: target.digest, where });
    this.#verified.add(path);
    return record;
  }

  /** Returns the digests of the image manifests at or below `target`. */
  #walk(target: Descriptor, stack: string[], where: string, nested: boolean): string[] {
    if (stack.includes(target.digest)) {
      fail(`${where} refers back to index ${target.digest}, which contains it: the indexes form a cycle.`);
    }
    if (stack.length > MAX_INDEX_DEPTH) fail(`${where} is nested more than ${MAX_INDEX_DEPTH} indexes deep.`);
    const seen = this.#below.get(target.digest);
    if (seen) return seen;

    const path = `blobs/sha256/${target.digest.slice('sha256:'.length)}`;
    const isManifest = target.mediaType !== undefined && MANIFEST_TYPES.has(target.mediaType);
    if (nested && isManifest && !this.#contents.files.has(path)) {
      // A platform left out of a multi-platform image (docker save --platform) is a gap, not damage.
      this.#warnings.add(
        `The image index lists a ${target.platform ?? 'platform'} manifest ${target.digest} that is not in the ` +
          'tarball; that platform cannot be loaded from it.',
      );
      this.#below.set(target.digest, []);
      return [];
    }
    const record = this.#blob(target, where);
    let below: string[] = [];
    const kind = target.mediaType ?? this.#sniff(record, where);
    if (INDEX_TYPES.has(kind)) {
      const index = asObject(this.#contents.json(record, `Index ${target.digest}`), `Index ${target.digest}`);
      const manifests = index['manifests'];
      if (!Array.isArray(manifests)) fail(`Index ${target.digest} has no manifests list; the tarball is corrupt.`);
      // A set: a child listed many times is one child, or the lists would multiply on each level.
      const manifestsBelow = new Set<string>();
      manifests.forEach((value, i) => {
        const where = `index ${target.digest} manifest ${i + 1}`;
        for (const digest of this.#walk(this.#descriptor(value, where), [...stack, target.digest], where, true)) {
          manifestsBelow.add(digest);
        }
      });
      below = [...manifestsBelow];
    } else if (MANIFEST_TYPES.has(kind)) {
      below = this.#manifest(target, record) ? [target.digest] : [];
    }
    this.#below.set(target.digest, below);
    return below;
  }

  #descriptor(value: unknown, where: string): Descriptor {
    if (++this.#descriptors > MAX_DESCRIPTORS) {
      fail(
        `The tarball's indexes list more than ${MAX_DESCRIPTORS} descriptors (at ${where}); no image has that many, ` +
          'so it is refused as hostile.',
      );
    }
    return descriptor(value, where);
  }

  #sniff(record: FileRecord, where: string): string {
    const document = asObject(this.#contents.json(record, where), where);
    if (typeof document['mediaType'] === 'string') return document['mediaType'];
    return Array.isArray(document['manifests']) ? [...INDEX_TYPES][0]! : [...MANIFEST_TYPES][0]!;
  }

  /** Verifies a manifest's config and layers; returns whether it is an image (not an attestation or artifact). */
  #manifest(target: Descriptor, record: FileRecord): boolean {
    const what = `Manifest ${target.digest}`;
    const manifest = asObject(this.#contents.json(record, what), what);
    const config = descriptor(manifest['config'], `${what} config`);
    const layersValue = manifest['layers'];
    if (!Array.isArray(layersValue)) fail(`${what} has no layers list; the tarball is corrupt.`);
    const layers = layersValue.map((value, i) => descriptor(value, `${what} layer ${i + 1}`));
    const configRecord = this.#blob(config, `config of manifest ${target.digest}`);
    layers.forEach((layer, i) => this.#blob(layer, `layer ${i + 1} of manifest ${target.digest}`));
    if (config.mediaType !== undefined && !CONFIG_TYPES.has(config.mediaType)) return false;

    const configJson = asObject(this.#contents.json(configRecord, `The config of ${what}`), `The config of ${what}`);
    const rootfs = configJson['rootfs'];
    const diffIds = typeof rootfs === 'object' && rootfs !== null ? (rootfs as JsonObject)['diff_ids'] : undefined;
    if (!Array.isArray(diffIds) || diffIds.length !== layers.length) {
      fail(
        `${what} has ${layers.length} layers but its config lists ` +
          `${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids; the tarball is corrupt.`,
      );
    }
    this.#images.set(target.digest, {
      manifestDigest: target.digest,
      configDigest: config.digest,
      references: [],
      bareNames: [],
      platform: platformText(configJson) ?? target.platform,
      layers: layers.map((layer) => layer.digest),
    });
    return true;
  }
}
