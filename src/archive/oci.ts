/**
 * The OCI half of verification: from index.json down through nested indexes and manifests to every config and
 * layer blob. The structure is walked first (presence, sizes, cycles), and the hashes are compared after, so an
 * error names the most basic thing that is wrong.
 */
import type { Warnings } from '../display.ts';
import { refuse } from '../errors.ts';
import { platformText } from '../platform.ts';
import type { ArchiveContents } from './contents.ts';
import { asObject, descriptor, diffIdsOf, isAttestation, type Descriptor } from './descriptor.ts';
import { checkLayer } from './layers.ts';
import { CONFIG_TYPES, INDEX_TYPES, MANIFEST_TYPES, blobPath, type FileRecord } from './model.ts';
import { referencesOf } from './names.ts';

/** Indexes nest one or two levels in practice; deeper is a construction meant to exhaust the reader. */
const MAX_INDEX_DEPTH = 8;
/**
 * Descriptors read in all indexes together. A multi-platform image with attestations lists a few dozen; an index
 * that lists its child thousands of times on each level is an attack on the walk.
 */
export const MAX_DESCRIPTORS = 100_000;

/** One platform's image below an index or manifest: what the walk verified of it. */
export interface WalkImage {
  manifestDigest: string;
  configDigest: string;
  /** `os/architecture[/variant]`, from the config (or the descriptor when the config has none). */
  platform: string | undefined;
  /** Layer blob digests, in order. */
  layers: string[];
  /** The config's rootfs.diff_ids: the uncompressed layers, whatever the blobs' compression. */
  diffIds: string[];
  /** The config's `created`, which engines report as the image's creation time. */
  created: string | undefined;
}

/** What one entry of index.json names: an index or a manifest, and the image manifests and attestations below it. */
export interface WalkTarget {
  digest: string;
  kind: 'index' | 'manifest';
  /** The media type and size of the index or manifest, as the descriptor in index.json gives them. */
  mediaType: string;
  size: number;
  references: string[];
  bareNames: string[];
  /** Manifest digests of the images below, in order, each once. */
  images: string[];
  /** Manifest digests of the attestations below (buildx provenance and SBOMs, platform `unknown/unknown`). */
  attestations: string[];
}

/** What the walk found below one descriptor, each digest once. */
interface Below {
  images: string[];
  attestations: string[];
  /**
   * Descriptors an engine visits from here counting every path (containerd walks each one, however often it is shared),
   * saturated at just over MAX_VISITS.
   */
  visits: number;
}

/**
 * Descriptors one image may lead an engine to visit, counting every path through its indexes: a multi-platform image
 * with attestations has a few hundred; containerd spends milliseconds on each path, so an index tree that names the
 * same blobs over and over keeps its load busy for minutes (docs/decisions/engine-reads.md).
 */
export const MAX_VISITS = 2_000;

function addVisits(a: number, b: number): number {
  return Math.min(a + b, MAX_VISITS + 1);
}

export class OciWalk {
  readonly #contents: ArchiveContents;
  readonly #verified: Set<string>;
  readonly #warnings: Warnings;
  readonly #images = new Map<string, WalkImage>();
  /** Per visited digest, what is below it: a DAG shared many times is walked once. */
  readonly #below = new Map<string, Below>();
  readonly #toHash = new Map<string, { record: FileRecord; digest: string; where: string }>();
  /** Blob path → the blob paths it names: an index its manifests, a manifest its config and layers. */
  readonly tree = new Map<string, string[]>();
  #descriptors = 0;
  readonly #layerChecks: Array<() => void> = [];

  constructor(contents: ArchiveContents, verified: Set<string>, warnings: Warnings) {
    this.#contents = contents;
    this.#verified = verified;
    this.#warnings = warnings;
  }

  /** The image manifest `digest` names, once `run` has found it. */
  image(digest: string): WalkImage {
    return this.#images.get(digest)!;
  }

  /** Every entry of index.json as a target (entries naming the same digest are one target), verified. */
  run(): WalkTarget[] {
    const index = asObject(this.#contents.json(this.#contents.files.get('index.json')!, 'index.json'), 'index.json');
    const manifests = index['manifests'];
    if (!Array.isArray(manifests) || manifests.length === 0) {
      refuse('index.json lists no manifests; the tarball holds no image.');
    }
    // Sets while walking: one image named by thousands of descriptors must not copy its list each time.
    const targets = new Map<string, WalkTarget & { named: Set<string>; bare: Set<string> }>();
    manifests.forEach((value, i) => {
      const where = `index.json manifest ${i + 1}`;
      const top = this.#descriptor(value, where);
      const { full, bare } = referencesOf(top.annotations, where);
      const below = this.#walk(top, [], where, false);
      if (below.visits > MAX_VISITS) {
        refuse(
          `${where} leads to more than ${MAX_VISITS} descriptors counted along every path through its indexes, which ` +
            'an engine walks one by one: no image has that many, so it is refused as hostile.',
        );
      }
      if (below.images.length === 0) return;
      let target = targets.get(top.digest);
      if (!target) {
        const mediaType = this.#kindOf(top);
        target = {
          digest: top.digest,
          kind: INDEX_TYPES.has(mediaType) ? 'index' : 'manifest',
          mediaType,
          size: top.size,
          references: [],
          bareNames: [],
          images: below.images,
          attestations: below.attestations,
          named: new Set(),
          bare: new Set(),
        };
        targets.set(top.digest, target);
      }
      for (const reference of full) target.named.add(reference);
      for (const name of bare) target.bare.add(name);
    });
    for (const { record, digest, where } of this.#toHash.values()) {
      if (record.digest !== digest) {
        refuse(
          `Blob ${digest} (${where}) hashes to ${record.digest}: it is corrupt or was replaced; produce the ` +
            'tarball again.',
        );
      }
    }
    for (const check of this.#layerChecks) check();
    if (targets.size === 0) refuse('index.json leads to no image manifest with an image config; nothing to load.');
    return [...targets.values()].map(({ named, bare, ...target }) => ({
      ...target,
      references: [...named],
      bareNames: named.size > 0 ? [] : [...bare],
    }));
  }

  /** Checks the blob a descriptor names is present with its size; its hash is compared at the end of `run`. */
  #blob(target: Descriptor, where: string): FileRecord {
    const path = blobPath(target.digest);
    const record = this.#contents.files.get(path);
    if (!record) refuse(`${where} refers to blob ${target.digest}, which is not in the tarball; it is incomplete.`);
    if (record.size === 0 && target.size > 0) {
      refuse(
        `Blob ${target.digest} (${where}) is empty (0 bytes) but should be ${target.size} bytes: a blob that was ` +
          'never filled in (an unfinished cache or export); produce the tarball again.',
      );
    }
    if (record.size !== target.size) {
      refuse(`Blob ${target.digest} (${where}) is ${record.size} bytes, but its descriptor says ${target.size}.`);
    }
    this.#toHash.set(target.digest, { record, digest: target.digest, where });
    this.#verified.add(path);
    return record;
  }

  /** The media type of what a descriptor names, from the descriptor or, when it has none, the document itself. */
  #kindOf(target: Descriptor): string {
    if (target.mediaType !== undefined) return target.mediaType;
    const record = this.#contents.files.get(blobPath(target.digest));
    return record ? this.#sniff(record, `Blob ${target.digest}`) : '';
  }

  /** The image manifests and attestations at or below `target`. */
  #walk(target: Descriptor, stack: string[], where: string, nested: boolean): Below {
    if (stack.includes(target.digest)) {
      refuse(`${where} refers back to index ${target.digest}, which contains it: the indexes form a cycle.`);
    }
    if (stack.length > MAX_INDEX_DEPTH) refuse(`${where} is nested more than ${MAX_INDEX_DEPTH} indexes deep.`);
    const seen = this.#below.get(target.digest);
    if (seen) return seen;

    const path = blobPath(target.digest);
    const isManifest = target.mediaType !== undefined && MANIFEST_TYPES.has(target.mediaType);
    const none: Below = { images: [], attestations: [], visits: 1 };
    if (nested && isManifest && !this.#contents.files.has(path)) {
      // A platform left out of a multi-platform image (docker save --platform) is a gap, not damage; so is an
      // attestation left out with it.
      if (!isAttestation(target)) {
        this.#warnings.add(
          `The image index lists a ${target.platform ?? 'platform'} manifest ${target.digest} that is not in the ` +
            'tarball; that platform cannot be loaded from it.',
        );
      }
      this.#below.set(target.digest, none);
      return none;
    }
    const record = this.#blob(target, where);
    let below = none;
    const kind = target.mediaType ?? this.#sniff(record, where);
    if (INDEX_TYPES.has(kind)) {
      const index = asObject(this.#contents.json(record, `Index ${target.digest}`), `Index ${target.digest}`);
      const manifests = index['manifests'];
      if (!Array.isArray(manifests)) refuse(`Index ${target.digest} has no manifests list; the tarball is corrupt.`);
      const images = new Set<string>();
      const attestations = new Set<string>();
      const children = new Set<string>();
      const listed = new Map<string, number>();
      let visits = 1;
      manifests.forEach((value, i) => {
        const childWhere = `index ${target.digest} manifest ${i + 1}`;
        const childDescriptor = this.#descriptor(value, childWhere);
        const twice = listed.get(childDescriptor.digest);
        if (twice !== undefined) {
          refuse(
            `Index ${target.digest} lists ${childDescriptor.digest} twice (manifests ${twice} and ${i + 1}): an engine ` +
              'walks it once for each, so the tarball is refused.',
          );
        }
        listed.set(childDescriptor.digest, i + 1);
        const child = this.#walk(childDescriptor, [...stack, target.digest], childWhere, true);
        visits = addVisits(visits, child.visits);
        for (const digest of child.images) images.add(digest);
        for (const digest of child.attestations) attestations.add(digest);
        const childPath = blobPath(childDescriptor.digest);
        if (this.#verified.has(childPath)) children.add(childPath);
      });
      this.tree.set(path, [...children]);
      below = { images: [...images], attestations: [...attestations], visits };
    } else if (MANIFEST_TYPES.has(kind)) {
      const { image, visits } = this.#manifest(target, record);
      below = image
        ? { images: [target.digest], attestations: [], visits }
        : { images: [], attestations: [target.digest], visits };
    }
    this.#below.set(target.digest, below);
    return below;
  }

  #descriptor(value: unknown, where: string): Descriptor {
    if (++this.#descriptors > MAX_DESCRIPTORS) {
      refuse(
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

  /**
   * Verifies a manifest's config and layers; returns whether it is an image, rather than an attestation or another
   * artifact that no engine runs (its config is not an image config).
   */
  #manifest(target: Descriptor, record: FileRecord): { image: boolean; visits: number } {
    const what = `Manifest ${target.digest}`;
    const manifest = asObject(this.#contents.json(record, what), what);
    const config = descriptor(manifest['config'], `${what} config`);
    const layersValue = manifest['layers'];
    if (!Array.isArray(layersValue)) refuse(`${what} has no layers list; the tarball is corrupt.`);
    const layers = layersValue.map((value, i) => descriptor(value, `${what} layer ${i + 1}`));
    const configRecord = this.#blob(config, `config of manifest ${target.digest}`);
    const layerRecords = layers.map((layer, i) => this.#blob(layer, `layer ${i + 1} of manifest ${target.digest}`));
    this.tree.set(record.name, [...new Set([config, ...layers].map((one) => blobPath(one.digest)))]);
    const visits = 2 + layers.length;
    if (isAttestation(target) || (config.mediaType !== undefined && !CONFIG_TYPES.has(config.mediaType))) {
      return { image: false, visits };
    }

    const configJson = asObject(this.#contents.json(configRecord, `The config of ${what}`), `The config of ${what}`);
    // buildx writes its attestations with an image config of platform unknown/unknown.
    const configPlatform = platformText(configJson, `The config of ${what}`);
    if (configPlatform === 'unknown/unknown') return { image: false, visits };
    const diffIds = diffIdsOf(configJson, `The config of ${what}`);
    if (diffIds.length !== layers.length) {
      refuse(
        `${what} has ${layers.length} layers but its config lists ${diffIds.length} diff_ids; the tarball is corrupt.`,
      );
    }
    // After every blob's hash is checked (run): a blob that is not what its digest says is the more basic fault.
    this.#layerChecks.push(() =>
      layers.forEach((layer, i) =>
        checkLayer(
          layerRecords[i]!.expanded!,
          layerRecords[i]!,
          { diffId: diffIds[i] as string, mediaType: layer.mediaType },
          `layer ${i + 1} of manifest ${target.digest}`,
        ),
      ),
    );
    const created = configJson['created'];
    this.#images.set(target.digest, {
      manifestDigest: target.digest,
      configDigest: config.digest,
      platform: configPlatform ?? target.platform,
      layers: layers.map((layer) => layer.digest),
      diffIds: diffIds as string[],
      created: typeof created === 'string' ? created : undefined,
    });
    return { image: true, visits };
  }
}
