/**
 * Reads an image tarball once, as it streams past, and says what it holds and whether every byte of it is what
 * its manifests claim. Three layouts exist in the wild:
 *
 *   docker-archive  Docker ≤ 24 `docker save`, skopeo and podman `docker-archive`: manifest.json, a config JSON
 *                   named by its digest, one uncompressed tar per layer (hashing to the config's diff_ids).
 *   docker-oci      Docker 25+ `docker save`: an OCI image layout whose manifest.json points into blobs/.
 *   oci-layout      buildx `type=oci`, skopeo and podman `oci-archive`: oci-layout, index.json, blobs/ only.
 *
 * Every entry is hashed as it arrives (entries come in any order, so the manifests may follow the blobs they
 * describe); only small JSON documents are kept, and the cross-checks run when the archive has ended.
 */
import { createHash, type Hash } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Warnings, shown, shownList } from '../display.ts';
import { UserError, messageOf } from '../errors.ts';
import { platformText } from '../platform.ts';
import { parseReference, qualify, SHA256_DIGEST } from '../reference.ts';
import { TarReader, type TarEntry } from './tar.ts';
import { parseJson, type JsonObject } from './json.ts';
import { OciWalk, digestAsTag, type WalkImage, type WalkTarget } from './oci.ts';
import {
  ExpansionBudget,
  LAYER_HEAD_BYTES,
  checkLayer,
  layerDigester,
  type LayerDigester,
  detectLayerCompression,
  type LayerContent,
} from './layers.ts';

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

export interface InspectorOptions {
  /** Largest JSON document (manifest, index, config) accepted; 8 MiB by default. */
  maxJsonBytes?: number;
  /** Every layer, uncompressed, together (`max-image-size`); DEFAULT_MAX_IMAGE_BYTES by default. */
  maxImageBytes?: number;
}

export const DEFAULT_MAX_JSON_BYTES = 8 * 1024 * 1024;
/** All kept JSON together: bounds memory when a hostile archive holds thousands of small JSON-looking blobs. */
const JSON_BUDGET_FACTOR = 8;
const MIB = 1024 * 1024;

export interface FileRecord {
  readonly name: string;
  readonly size: number;
  readonly digest: string;
  /** The content, kept when it looked like JSON and was small enough. */
  readonly content: Buffer | undefined;
  /** What the file holds decompressed (itself when it is not compressed): a layer's diff_id, once the archive ended. */
  expanded: LayerContent | undefined;
}

/** Names an image layout gives to JSON documents, refused outright when oversized rather than skipped. */
const METADATA_NAMES = new Set(['manifest.json', 'index.json', 'oci-layout']);

function fail(message: string): never {
  throw new UserError(message);
}

function looksLikeJson(firstByte: number): boolean {
  // `{`, `[` or leading white space; layer blobs start with a gzip/zstd magic or a tar entry name.
  return firstByte === 0x7b || firstByte === 0x5b || firstByte === 0x20 || firstByte === 0x0a || firstByte === 0x0d;
}

function dirname(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}

/** The archive's regular files, and its links, once the stream has ended. */
export class ArchiveContents {
  readonly files = new Map<string, FileRecord>();
  /** Legacy `<id>/layer.tar` symlinks, resolved to the archive path they point at. */
  readonly links = new Map<string, string>();
  readonly #maxJsonBytes: number;
  readonly #parsed = new Map<string, unknown>();

  constructor(maxJsonBytes: number) {
    this.#maxJsonBytes = maxJsonBytes;
  }

  /** The file at `path` (through a layer.tar link), or undefined. */
  find(path: string): FileRecord | undefined {
    return this.files.get(this.links.get(path) ?? path);
  }

  /** The parsed JSON document at `path`; `what` names it in errors. */
  json(record: FileRecord, what: string): unknown {
    if (this.#parsed.has(record.name)) return this.#parsed.get(record.name);
    const label = what === record.name ? what : `${what} (${record.name})`;
    if (!record.content) {
      if (record.size > this.#maxJsonBytes) {
        fail(
          `${label} is ${(record.size / MIB).toFixed(1)} MiB; JSON documents over ` +
            `${(this.#maxJsonBytes / MIB).toFixed(0)} MiB are refused as hostile: check how the tarball was made.`,
        );
      }
      fail(`${label} is not JSON (its first byte is not "{"); the tarball is corrupt.`);
    }
    const value = parseJson(record.content, label, record.name === 'manifest.json' ? 'manifest.json' : 'image');
    this.#parsed.set(record.name, value);
    return value;
  }
}

/** The file being read: its hash, its content when kept, and how its compression is being told and undone. */
interface CurrentFile {
  entry: TarEntry;
  hash: Hash;
  content: Buffer | undefined;
  fill: number;
  first: boolean;
  /** Its first bytes, until there are enough to tell its compression. */
  head: Buffer[] | undefined;
  headBytes: number;
  digester: LayerDigester | undefined;
}

/**
 * Collects what the tar reader hands it: each file's digest, the content of small JSON documents, and what every other
 * file (a layer) holds once decompressed, which finishes after the file's last byte: `settled` waits for it.
 */
export class Collector {
  readonly contents: ArchiveContents;
  entries = 0;
  readonly #maxJsonBytes: number;
  readonly #budget: ExpansionBudget;
  readonly #kinds = new Map<string, TarEntry['type']>();
  readonly #expanding = new Set<LayerDigester>();
  readonly #pending: Array<Promise<void>> = [];
  #failure: unknown;
  #keptBytes = 0;
  #current: CurrentFile | undefined;

  constructor(maxJsonBytes: number, maxImageBytes?: number) {
    this.#maxJsonBytes = maxJsonBytes;
    this.#budget = new ExpansionBudget(maxImageBytes);
    this.contents = new ArchiveContents(maxJsonBytes);
  }

  entry(entry: TarEntry): void {
    this.#check();
    this.entries++;
    const earlier = this.#kinds.get(entry.name);
    if (earlier !== undefined) {
      // Two directory entries for one directory are harmless; anything else lets a later entry shadow a verified one.
      if (earlier === 'directory' && entry.type === 'directory') return;
      fail(
        `The tarball has two entries named ${shown(entry.name)} (the second at byte ${entry.offset}): a later entry ` +
          'could replace one already verified, so the tarball is refused.',
      );
    }
    this.#kinds.set(entry.name, entry.type);
    switch (entry.type) {
      case 'directory':
        return;
      case 'file':
        if (entry.name === '') fail(`The tar entry at byte ${entry.offset} is a file with an empty name.`);
        this.#current = {
          entry,
          hash: createHash('sha256'),
          content: undefined,
          fill: 0,
          first: true,
          head: undefined,
          headBytes: 0,
          digester: undefined,
        };
        if (METADATA_NAMES.has(entry.name) && entry.size > this.#maxJsonBytes) {
          fail(
            `${entry.name} is ${(entry.size / MIB).toFixed(1)} MiB; JSON documents over ` +
              `${(this.#maxJsonBytes / MIB).toFixed(0)} MiB are refused as hostile: check how the tarball was made.`,
          );
        }
        return;
      case 'symlink':
        this.#symlink(entry);
        return;
      case 'hardlink':
        fail(
          `The tarball holds a hard link ${shown(entry.name)} -> ${shown(entry.linkname)}; image tarballs never hold links ` +
            'between their files, so it is refused.',
        );
        break;
      default:
        fail(
          `The tarball holds a ${entry.type.replace('-', ' ')} ${shown(entry.name)}; an image tarball holds only files ` +
            'and directories, so it is refused.',
        );
    }
  }

  /**
   * Docker ≤ 24 writes a layer saved twice (an image and its base saved together) as a symlink `<id>/layer.tar`
   * -> `../<other id>/layer.tar`, and skopeo and podman link every `<id>/layer.tar` to `../<diff_id>.tar`; those
   * shapes are followed, every other link is refused.
   */
  #symlink(entry: TarEntry): void {
    const refuse = (): never =>
      fail(
        `The tarball holds a symbolic link ${shown(entry.name)} -> ${shown(entry.linkname)}; only docker's own links between ` +
          '`<id>/layer.tar` files are accepted, so it is refused.',
      );
    if (!/^[0-9a-f]{64}\/layer\.tar$/.test(entry.name) || entry.linkname.startsWith('/')) refuse();
    const parts = dirname(entry.name).split('/');
    for (const part of entry.linkname.split('/')) {
      if (part === '..') {
        if (parts.length === 0) refuse();
        parts.pop();
      } else if (part !== '.' && part !== '') {
        parts.push(part);
      }
    }
    const target = parts.join('/');
    if (!/^[0-9a-f]{64}(?:\/layer\.tar|\.tar)$/.test(target) || target === entry.name) refuse();
    this.contents.links.set(entry.name, target);
  }

  data(chunk: Buffer): void {
    this.#check();
    const current = this.#current!;
    current.hash.update(chunk);
    if (current.first) {
      current.first = false;
      if (current.entry.size <= this.#maxJsonBytes && looksLikeJson(chunk[0]!)) {
        this.#keptBytes += current.entry.size;
        if (this.#keptBytes > JSON_BUDGET_FACTOR * this.#maxJsonBytes) {
          fail(
            `The tarball holds more than ${(JSON_BUDGET_FACTOR * this.#maxJsonBytes) / MIB} MiB of JSON documents; ` +
              'no image needs that much metadata, so it is refused.',
          );
        }
        current.content = Buffer.allocUnsafe(current.entry.size);
      } else {
        current.head = [];
      }
    }
    if (current.content) {
      current.fill += chunk.copy(current.content, current.fill);
    } else if (current.digester) {
      current.digester.write(chunk);
    } else if (current.head) {
      current.head.push(chunk);
      current.headBytes += chunk.length;
      if (current.headBytes >= LAYER_HEAD_BYTES) this.#expand(current);
    }
  }

  /**
   * Tells the file's compression from its first bytes and starts undoing it; an uncompressed file is its own content.
   * Everything but the small JSON documents counts against the image's size.
   */
  #expand(current: CurrentFile): void {
    const head = current.head!;
    current.head = undefined;
    const first = head.length === 1 ? head[0]! : Buffer.concat(head);
    const compression = detectLayerCompression(first);
    if (compression === 'none') {
      this.#budget.take(current.entry.size);
      return;
    }
    const digester = layerDigester(compression, current.entry.size, current.entry.name, this.#budget);
    current.digester = digester;
    this.#expanding.add(digester);
    for (const chunk of head) digester.write(chunk);
  }

  /** Whether the content of the file being read is kept (a small JSON document): known from its first chunk on. */
  get keepsCurrent(): boolean {
    return this.#current?.content !== undefined;
  }

  entryEnd(): void {
    this.#check();
    const current = this.#current;
    if (!current) return;
    this.#current = undefined;
    if (current.head) this.#expand(current);
    const { entry } = current;
    const digest = `sha256:${current.hash.digest('hex')}`;
    const record: FileRecord = {
      name: entry.name,
      size: entry.size,
      digest,
      content: current.content,
      expanded: current.digester ? undefined : { compression: 'none', digest, size: entry.size },
    };
    this.contents.files.set(entry.name, record);
    const { digester } = current;
    if (digester) {
      digester.end();
      const done = digester.result.then(
        (expanded) => {
          record.expanded = expanded;
          this.#expanding.delete(digester);
        },
        (error: unknown) => {
          this.#failure ??= error;
          this.#expanding.delete(digester);
        },
      );
      this.#pending.push(done);
    }
  }

  /** A layer's decompression that failed, reported at the next step of the read. */
  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Undefined when the reader may go on; else what to wait for: the layer being read has as much queued for its
   * decompressor as it may. Rejects when a decompression failed.
   */
  room(): Promise<void> | undefined {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const digester = this.#current?.digester;
    if (!digester?.full) return undefined;
    return digester.drained().then(() => this.#check());
  }

  /** Waits for every layer's decompression: each file then knows what it expands to, or the first failure is thrown. */
  async settled(): Promise<void> {
    await Promise.all(this.#pending);
    this.#check();
  }

  /** Stops every decompression under way (the read was abandoned). */
  destroy(): void {
    this.#current?.digester?.destroy();
    for (const digester of this.#expanding) digester.destroy();
    this.#expanding.clear();
  }
}

/** A Writable you pipe a plain (already decompressed) tar into; `report` settles when it finishes. */
export function createArchiveInspector(options: InspectorOptions = {}): {
  stream: Writable;
  report: Promise<ArchiveReport>;
} {
  const maxJsonBytes = options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const collector = new Collector(maxJsonBytes, options.maxImageBytes);
  const reader = new TarReader(collector);
  let settle: { resolve: (report: ArchiveReport) => void; reject: (error: unknown) => void };
  const report = new Promise<ArchiveReport>((resolve, reject) => (settle = { resolve, reject }));
  // Errors reach the caller through `report`; these keep an unobserved one from crashing the process.
  report.catch(() => {});
  let done = false;
  const finish = (outcome: () => ArchiveReport): void => {
    if (done) return;
    done = true;
    try {
      settle.resolve(outcome());
    } catch (error) {
      settle.reject(error);
    }
  };
  const failed = (error: unknown, callback: (error: Error) => void) => {
    collector.destroy();
    finish(() => {
      throw error;
    });
    callback(error as Error);
  };
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        reader.write(chunk);
      } catch (error) {
        failed(error, callback);
        return;
      }
      const room = collector.room();
      if (room)
        room.then(
          () => callback(),
          (error: unknown) => failed(error, callback),
        );
      else callback();
    },
    final(callback) {
      const end = async () => {
        reader.end();
        await collector.settled();
        return verifyContents(collector.contents, reader.offset, collector.entries);
      };
      end().then(
        (result) => {
          finish(() => result);
          callback();
        },
        (error: unknown) => failed(error, callback),
      );
    },
  });
  stream.on('error', () => {});
  stream.on('close', () => {
    collector.destroy();
    finish(() => {
      throw new UserError(
        `The tarball stream stopped after ${reader.offset} bytes, before its end; the image could not be verified.`,
      );
    });
  });
  return { stream, report };
}

/** Inspects a whole plain tar from a stream or an async iterable of chunks. */
export async function inspectArchive(
  input: Readable | AsyncIterable<Buffer>,
  options: InspectorOptions = {},
): Promise<ArchiveReport> {
  const { stream, report } = createArchiveInspector(options);
  try {
    await pipeline(input, stream);
  } catch (error) {
    // A UserError is the inspector's own verdict; anything else is the input failing (a read or decompression error).
    throw error instanceof UserError ? error : new UserError(`Reading the tarball failed: ${messageOf(error)}`);
  }
  return report;
}

function checkReference(text: unknown, where: string): string {
  if (typeof text !== 'string') fail(`${where} has a tag that is not a string.`);
  const parsed = parseReference(text);
  if (!parsed.ok) fail(`${where} records ${shown(text)}, which is not a valid image reference: ${parsed.reason}.`);
  if (parsed.ref.digest) digestAsTag(text, where);
  return text;
}

/** The image config at `path`, with its digest checked against its file name when the name is a digest. */
function readConfig(
  contents: ArchiveContents,
  path: string,
  where: string,
): { record: FileRecord; config: JsonObject } {
  const record = contents.find(path);
  if (!record) fail(`${where} names the image config ${shown(path)}, which is not in the tarball.`);
  const value = contents.json(record, 'The image config');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`The image config ${shown(path)} is not a JSON object; the tarball is corrupt.`);
  }
  return { record, config: value as JsonObject };
}

function diffIdsOf(config: JsonObject, path: string): string[] {
  const rootfs = config['rootfs'];
  const ids = typeof rootfs === 'object' && rootfs !== null ? (rootfs as JsonObject)['diff_ids'] : undefined;
  if (!Array.isArray(ids)) fail(`The image config ${shown(path)} has no rootfs.diff_ids list; the tarball is corrupt.`);
  for (const id of ids) {
    if (typeof id !== 'string' || !SHA256_DIGEST.test(id)) {
      fail(
        `The image config ${shown(path)} lists diff_id ${shown(String(id))}; expected "sha256:" and 64 lowercase hex digits.`,
      );
    }
  }
  return ids as string[];
}

interface ManifestItem {
  config: string;
  repoTags: string[];
  layers: string[];
}

function readManifestJson(contents: ArchiveContents): ManifestItem[] {
  const value = contents.json(contents.find('manifest.json')!, 'manifest.json');
  if (!Array.isArray(value) || value.length === 0) {
    fail('manifest.json is not a non-empty list of images; the tarball is corrupt.');
  }
  return value.map((item: unknown, index): ManifestItem => {
    const where = `manifest.json entry ${index + 1}`;
    if (typeof item !== 'object' || item === null) fail(`${where} is not an object; the tarball is corrupt.`);
    const { Config, RepoTags, Layers } = item as JsonObject;
    if (typeof Config !== 'string' || Config === '') fail(`${where} has no Config path; the tarball is corrupt.`);
    if (!Array.isArray(Layers) || Layers.some((layer) => typeof layer !== 'string')) {
      fail(`${where} has no Layers list of paths; the tarball is corrupt.`);
    }
    if (RepoTags !== null && RepoTags !== undefined && !Array.isArray(RepoTags)) {
      fail(`${where} has RepoTags that is not a list; the tarball is corrupt.`);
    }
    const repoTags = ((RepoTags as unknown[] | null | undefined) ?? []).map((tag) => checkReference(tag, where));
    return { config: Config, repoTags, layers: Layers as string[] };
  });
}

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
      const diffIds = diffIdsOf(config, item.config);
      if (diffIds.length !== item.layers.length) {
        fail(
          `${where} lists ${item.layers.length} layers but its config ${shown(item.config)} has ${diffIds.length} ` +
            'diff_ids; the tarball is corrupt.',
        );
      }
      const vouching = oci.find((image) => image.configDigest === record.digest);
      const layerFiles = item.layers.map((path, i) => {
        const layer = this.contents.find(path);
        if (!layer) fail(`${where} names layer ${shown(path)}, which is not in the tarball; it is incomplete.`);
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
      fail(
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
      fail(`The tarball's link ${shown(name)} points at ${shown(target)}, which is not a file in the tarball.`);
    }
  }
  const hasManifest = contents.files.has('manifest.json');
  const hasIndex = contents.files.has('index.json');
  if (!hasManifest && !hasIndex) {
    const names = shownList([...contents.files.keys()], 5);
    fail(
      'This is not an image tarball: it has neither manifest.json (docker save) nor index.json (OCI layout)' +
        (names ? `; found ${names}` : '; found no files') +
        '. Pass the output of docker save, buildx, skopeo or podman.',
    );
  }
  const format: ArchiveFormat = !hasIndex ? 'docker-archive' : hasManifest ? 'docker-oci' : 'oci-layout';
  if (hasIndex) {
    const layout = contents.files.get('oci-layout');
    if (!layout) fail('The tarball has index.json but no oci-layout file; it is not a complete OCI image layout.');
    const value = contents.json(layout, 'oci-layout');
    if (
      typeof value !== 'object' ||
      value === null ||
      typeof (value as JsonObject)['imageLayoutVersion'] !== 'string'
    ) {
      fail('oci-layout has no imageLayoutVersion; the tarball is not a valid OCI image layout.');
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
        fail(
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
    root: `blobs/sha256/${target.digest.slice('sha256:'.length)}`,
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
