/**
 * The verified images as an OCI image layout directory, for buildx's `oci-layout://` named contexts: another sink of
 * the canonical archive (canonical.ts), fed by the same read that verifies it. Every file of the archive is written as
 * a blob named by its digest into a private directory beside the destination; index.json names the images only once
 * the caller commits, after every check has passed, and the directory is then renamed into place. A failure or a stop
 * leaves nothing behind. docs/decisions.md, "An OCI layout for buildx".
 */
import { createHash, type Hash } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  open,
  opendir,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { MAX_SHOWN_ITEMS, andMore, shown, shownList } from '../display.ts';
import { UserError } from '../errors.ts';
import { fileProblem, freeBytes, makeDirectory, writeAll } from '../files.ts';
import { job } from '../job.ts';
import { formatBytes } from '../progress.ts';
import { filesOf, type Selection } from './canonical.ts';
import {
  LAYOUT_VERSION_DOCUMENT,
  TagClaims,
  addresses,
  dockerArchiveManifest,
  entriesFor,
  indexDocument,
  mergeEntries,
  nameOf,
  type IndexEntry,
  type WrittenBlob,
} from './layout-index.ts';
import { LAYER_HEAD_BYTES, detectLayerCompression } from './layers.ts';
import type { ArchiveReport } from './model.ts';
import { TarReader } from './tar.ts';

const INPUT = 'oci-layout';
/** The canonical archive's own layout files: the layout writes its own index.json and oci-layout. */
const ARCHIVE_LAYOUT_FILES = new Set(['index.json', 'manifest.json', 'oci-layout']);
/** A canonical archive's blob, already verified against the digest in its name by the time the archive ends. */
const BLOB_NAME = /^blobs\/sha256\/([0-9a-f]{64})$/;
/** Entries of a non-empty destination named in its error line. */
const SHOWN_ENTRIES = 3;

/** Opens the layout for one step: the destination checked and a private directory made beside it, before any download. */
export async function openLayout(destination: string): Promise<OciLayout> {
  let target = path.resolve(destination);
  const found = await stat(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw fileProblem(error, target, 'reading', INPUT);
  });
  if (found) {
    if (!found.isDirectory()) {
      throw new UserError(
        `\`oci-layout\` ${shown(target)} is ${found.isFile() ? 'a file' : 'not a directory'}: expected a new or empty directory for the OCI layout; ` +
          'set `oci-layout` to a new path.',
      );
    }
    target = await realpath(target);
    if (target !== path.dirname(target) && found.dev !== (await stat(path.dirname(target))).dev) {
      throw new UserError(
        `\`oci-layout\` ${shown(target)} is a mount point: the layout is written beside it and renamed into place, ` +
          'which cannot cross file systems; set `oci-layout` to a new directory inside it.',
      );
    }
    const entries = await firstEntries(target);
    if (entries.length > 0) {
      throw new UserError(
        `\`oci-layout\` ${shown(target)} already holds ${shownList(entries.slice(0, SHOWN_ENTRIES))}` +
          `${entries.length > SHOWN_ENTRIES ? ' and more' : ''}: expected a new or empty directory, so that the layout ` +
          'holds only the verified images; set `oci-layout` to a new path, or empty it first.',
      );
    }
  }
  const parent = path.dirname(target);
  try {
    await makeDirectory(parent);
  } catch (error) {
    throw fileProblem(error, target, 'creating the directory for', INPUT);
  }
  let staging: string;
  try {
    staging = await mkdtemp(path.join(parent, `.${path.basename(target)}.partial-`));
    await mkdir(path.join(staging, 'blobs', 'sha256'), { recursive: true });
  } catch (error) {
    throw fileProblem(error, target, 'creating', INPUT);
  }
  return new OciLayout(target, staging);
}

/** The first few names in a directory, without listing all of a large one. */
async function firstEntries(directory: string): Promise<string[]> {
  const names: string[] = [];
  const handle = await opendir(directory);
  try {
    for await (const entry of handle) {
      names.push(entry.name);
      if (names.length > SHOWN_ENTRIES) break;
    }
  } catch (error) {
    // Named as a file inside it, so that the line names the directory itself.
    throw fileProblem(error, path.join(directory, 'x'), 'reading', INPUT);
  }
  return names;
}

/**
 * One artifact's share of the layout: a pass-through for its canonical archive that writes each of its files as a
 * blob, and `admit`, which names the images it holds once they are verified, before the archive's end is passed on.
 */
export interface LayoutPart {
  stream: Transform;
  admit: (report: ArchiveReport, selections: Selection[]) => void;
}

/** The images of one artifact written into the layout: its blobs by archive name, and what it names. */
interface Part {
  files: Map<string, WrittenBlob>;
  admitted: { report: ArchiveReport; selections: Selection[] } | undefined;
}

export class OciLayout {
  /** Where the layout goes once committed. */
  readonly destination: string;
  readonly #staging: string;
  readonly #blobs: string;
  readonly #parts: Part[] = [];
  readonly #claims = new TagClaims();
  readonly #unregister: () => void;
  #incoming = 0;

  constructor(destination: string, staging: string) {
    this.destination = destination;
    this.#staging = staging;
    this.#blobs = path.join(staging, 'blobs', 'sha256');
    this.#unregister = job.onStop('removing the partial OCI layout', () => this.discard());
  }

  /** The layout's share of one more artifact (see LayoutPart). */
  async part(): Promise<LayoutPart> {
    const part: Part = { files: new Map(), admitted: undefined };
    this.#parts.push(part);
    const room = (await freeBytes(this.#staging)) ?? Infinity;
    return {
      stream: this.#extractor(part, room),
      admit: (report, selections) => {
        for (const { image, references } of selections) this.#claims.claim(image.digest, references);
        part.admitted = { report, selections };
      },
    };
  }

  #extractor(part: Part, room: number): Transform {
    let queue: Promise<void> = Promise.resolve();
    const enqueue = (step: () => Promise<unknown>) => {
      queue = queue.then(step).then(() => undefined);
      queue.catch(() => undefined);
    };
    let written = 0;
    let current: { name: string; incoming: string; hash: Hash | undefined; size: number; head: Buffer[] } | undefined;
    let handle: FileHandle | undefined;
    const reader = new TarReader({
      entry: (header) => {
        if (header.type !== 'file' || ARCHIVE_LAYOUT_FILES.has(header.name)) {
          current = undefined;
          return;
        }
        const file = {
          name: header.name,
          incoming: path.join(this.#blobs, `.incoming-${this.#incoming++}`),
          hash: BLOB_NAME.test(header.name) ? undefined : createHash('sha256'),
          size: 0,
          head: [] as Buffer[],
        };
        current = file;
        enqueue(async () => (handle = await open(file.incoming, 'wx')));
      },
      data: (chunk) => {
        const file = current;
        if (!file) return;
        file.hash?.update(chunk);
        if (file.size < LAYER_HEAD_BYTES) file.head.push(chunk.subarray(0, LAYER_HEAD_BYTES - file.size));
        file.size += chunk.length;
        written += chunk.length;
        if (written > room) throw this.#full(room);
        enqueue(() => writeAll(handle!, chunk));
      },
      entryEnd: () => {
        const file = current;
        current = undefined;
        if (!file) return;
        const digest = file.hash ? `sha256:${file.hash.digest('hex')}` : `sha256:${BLOB_NAME.exec(file.name)![1]}`;
        const compression = detectLayerCompression(Buffer.concat(file.head));
        part.files.set(file.name, { digest, size: file.size, compression });
        enqueue(async () => {
          await handle!.close();
          handle = undefined;
          await rename(file.incoming, path.join(this.#blobs, digest.slice('sha256:'.length)));
        });
      },
    });
    const failed = (error: unknown) => fileProblem(error, this.destination, 'writing the OCI layout', INPUT);
    /** Feeds the reader, then answers once the writes it queued are done. */
    const settle = (step: () => void, callback: TransformCallback) => {
      try {
        step();
      } catch (error) {
        callback(failed(error));
        return;
      }
      queue.then(
        () => callback(),
        (error: unknown) => callback(failed(error)),
      );
    };
    return new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        // Passed on at once: the engine or the copy reads it while it is written here.
        this.push(chunk);
        settle(() => reader.write(chunk), callback);
      },
      flush(callback: TransformCallback) {
        settle(() => reader.end(), callback);
      },
      destroy(error, callback) {
        // The partial directory goes with the step's failure (discard) or stop; only the open file is closed here.
        void queue.catch(() => undefined).then(() => handle?.close().catch(() => undefined));
        callback(error);
      },
    });
  }

  #full(room: number): UserError {
    return new UserError(
      `Not enough disk space for the OCI layout ${shown(this.destination)}: its blobs need more than the ` +
        `${formatBytes(room)} free there; free space on the runner or set \`oci-layout\` to a larger disk.`,
    );
  }

  /**
   * Names the images every part admitted (a docker-archive image gets its manifest), drops the blobs no named image
   * needs, and renames the directory into place. Returns the lines that say how buildx reaches each image.
   */
  async commit(): Promise<string[]> {
    try {
      const entries: IndexEntry[] = [];
      const needed = new Set<string>();
      for (const part of this.#parts) {
        if (!part.admitted) throw new Error('an OCI layout part was never admitted');
        for (const selection of part.admitted.selections) {
          entries.push(...(await this.#name(part, part.admitted.report, selection, needed)));
        }
      }
      const merged = mergeEntries(entries);
      for (const name of await readdir(this.#blobs)) {
        if (!needed.has(`sha256:${name}`)) await rm(path.join(this.#blobs, name), { force: true });
      }
      await writeFile(path.join(this.#staging, 'oci-layout'), LAYOUT_VERSION_DOCUMENT);
      await writeFile(path.join(this.#staging, 'index.json'), indexDocument(merged));
      // mkdtemp makes it private; a layout is read by whatever the job runs next.
      await chmod(this.#staging, 0o755);
      await rename(this.#staging, this.destination);
      this.#unregister();
      return this.#describe(merged, needed.size);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw new UserError(
          `\`oci-layout\` ${shown(this.destination)} was empty when the step began, but holds files now: another step ` +
            'or process writes there; set `oci-layout` to a path of its own.',
        );
      }
      // A failure of the place written to gets its line; anything else is not the user's to fix.
      throw typeof code === 'string' ? fileProblem(error, this.destination, 'writing the OCI layout', INPUT) : error;
    }
  }

  /** index.json's entries for one selected image, its blobs added to `needed`. */
  async #name(part: Part, report: ArchiveReport, selection: Selection, needed: Set<string>): Promise<IndexEntry[]> {
    const { image, references } = selection;
    const blob = (name: string): WrittenBlob => {
      const written = part.files.get(name);
      if (!written) throw new Error(`the OCI layout lacks ${name}, a file of a verified image`);
      needed.add(written.digest);
      return written;
    };
    for (const name of filesOf(report, [image])) blob(name);
    if (image.kind !== 'config') {
      return entriesFor({ mediaType: image.mediaType!, digest: image.digest, size: image.size }, references);
    }
    // A docker-archive image has a config and layer files, and no manifest: one is made from what was written.
    const platform = image.platforms[0]!;
    const manifest = dockerArchiveManifest(blob(image.root), platform.layers.map(blob));
    await writeFile(path.join(this.#blobs, manifest.descriptor.digest.slice('sha256:'.length)), manifest.content);
    needed.add(manifest.descriptor.digest);
    return entriesFor(manifest.descriptor, references);
  }

  #describe(entries: readonly IndexEntry[], blobs: number): string[] {
    const { tagged, bare } = addresses(this.destination, entries);
    const images = new Set(entries.map((entry) => entry.digest)).size;
    const lines = [
      `OCI layout written: ${shown(this.destination)} (${images} image${images === 1 ? '' : 's'}, ${blobs} blobs)`,
    ];
    for (const { address, entry } of tagged.slice(0, MAX_SHOWN_ITEMS)) {
      lines.push(`  ${shown(address)}: ${shown(nameOf(entry) ?? '')} ${entry.digest}`);
    }
    if (tagged.length > MAX_SHOWN_ITEMS) lines.push(`  ${andMore(tagged.length - MAX_SHOWN_ITEMS)} tags`);
    lines.push(
      bare
        ? `  ${shown(`oci-layout://${this.destination}`)} alone: ${bare.digest}`
        : `  ${shown(`oci-layout://${this.destination}`)} alone names no image (no tag \`latest\`, several images): add \`:tag\` or \`@digest\``,
    );
    return lines;
  }

  /** Removes the partial directory (a failure or a stop): nothing is left behind. */
  async discard(): Promise<void> {
    this.#unregister();
    await rm(this.#staging, { recursive: true, force: true });
  }
}
