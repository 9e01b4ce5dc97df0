/**
 * What the reader keeps of an archive as it streams past: each file's digest, the content of small JSON documents, and
 * what every other file (a layer) holds once decompressed. Nothing is extracted; only the JSON is kept, bounded.
 */
import { createHash, type Hash } from 'node:crypto';
import { shown } from '../display.ts';
import { refuse } from '../errors.ts';
import { parseJson } from './json.ts';
import {
  ExpansionBudget,
  LAYER_HEAD_BYTES,
  detectLayerCompression,
  layerDigester,
  type LayerDigester,
} from './layers.ts';
import type { FileRecord } from './model.ts';
import type { TarEntry } from './tar.ts';

export const DEFAULT_MAX_JSON_BYTES = 8 * 1024 * 1024;
/** All kept JSON together: bounds memory when a hostile archive holds thousands of small JSON-looking blobs. */
const JSON_BUDGET_FACTOR = 8;
const MIB = 1024 * 1024;

/** Names an image layout gives to JSON documents, refused outright when oversized rather than skipped. */
const METADATA_NAMES = new Set(['manifest.json', 'index.json', 'oci-layout']);

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
        refuse(
          `${label} is ${(record.size / MIB).toFixed(1)} MiB; JSON documents over ` +
            `${(this.#maxJsonBytes / MIB).toFixed(0)} MiB are refused as hostile: check how the tarball was made.`,
        );
      }
      refuse(`${label} is not JSON (its first byte is not "{"); the tarball is corrupt.`);
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
      refuse(
        `The tarball has two entries named ${shown(entry.name)} (the second at byte ${entry.offset}): a later entry ` +
          'could replace one already verified, so the tarball is refused.',
      );
    }
    this.#kinds.set(entry.name, entry.type);
    switch (entry.type) {
      case 'directory':
        return;
      case 'file':
        if (entry.name === '') refuse(`The tar entry at byte ${entry.offset} is a file with an empty name.`);
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
          refuse(
            `${entry.name} is ${(entry.size / MIB).toFixed(1)} MiB; JSON documents over ` +
              `${(this.#maxJsonBytes / MIB).toFixed(0)} MiB are refused as hostile: check how the tarball was made.`,
          );
        }
        return;
      case 'symlink':
        this.#symlink(entry);
        return;
      case 'hardlink':
        refuse(
          `The tarball holds a hard link ${shown(entry.name)} -> ${shown(entry.linkname)}; image tarballs never hold links ` +
            'between their files, so it is refused.',
        );
        break;
      default:
        refuse(
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
    const refused = (): never =>
      refuse(
        `The tarball holds a symbolic link ${shown(entry.name)} -> ${shown(entry.linkname)}; only docker's own links between ` +
          '`<id>/layer.tar` files are accepted, so it is refused.',
      );
    if (!/^[0-9a-f]{64}\/layer\.tar$/.test(entry.name) || entry.linkname.startsWith('/')) refused();
    const parts = dirname(entry.name).split('/');
    for (const part of entry.linkname.split('/')) {
      if (part === '..') {
        if (parts.length === 0) refused();
        parts.pop();
      } else if (part !== '.' && part !== '') {
        parts.push(part);
      }
    }
    const target = parts.join('/');
    if (!/^[0-9a-f]{64}(?:\/layer\.tar|\.tar)$/.test(target) || target === entry.name) refused();
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
          refuse(
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
