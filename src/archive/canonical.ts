/**
 * The canonical archive: the only tar an engine, a scanner or an artifact ever receives from this action. Another
 * tar reader (Go's archive/tar in `docker load`, Trivy's, skopeo's) may read a tricky header differently from ours,
 * so the bytes that reach it are never the input's: they are a tar written here, from what was verified, with
 *
 *   - plain ustar headers (no PAX, GNU or global headers), mode 0644, owner 0, time 0;
 *   - only the files of the archive's images: layers streamed through as they arrive (each hashed, and checked when
 *     the archive ends), small JSON documents (configs, manifests, indexes) written after them, only when they belong
 *     to an image that is selected;
 *   - `oci-layout`, `index.json` and `manifest.json` written by the action at the very end, naming exactly the
 *     selected references.
 *
 * Nothing an engine can load is complete before the last byte: `docker load` names images from index.json or
 * manifest.json, which come last and only once every check has passed. When a check fails, the output stops short
 * of them (and of the end-of-archive marker), so a reader sees a truncated archive and loads nothing.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { shown, shownList } from '../display.ts';
import { UserError } from '../errors.ts';
import { familiar, qualify } from '../reference.ts';
import { Collector, DEFAULT_MAX_JSON_BYTES } from './contents.ts';
import { blobPath, loadedPlatform, type ArchiveFormat, type ArchiveImage, type ArchiveReport } from './model.ts';
import { nameAnnotations } from './names.ts';
import { verifyContents } from './verify.ts';
import { BLOCK, TarReader, type TarEntry } from './tar.ts';
import { END_OF_ARCHIVE, tarEntry, tarHeader } from './tar-write.ts';

/** An image to write, and the references to name it by (none: it is loaded untagged). */
export interface Selection {
  image: ArchiveImage;
  references: string[];
}

export interface CanonicalOptions {
  /** Which images, under which references, the written archive names; called once the input is verified. */
  select: (report: ArchiveReport) => Selection[];
  /**
   * The platform an engine without the containerd image store loads (its own), for the manifest.json of a
   * multi-platform image; without it such an image gets no manifest.json entry.
   */
  platform?: string;
  /** Every selected image must get a manifest.json entry (the engine has no containerd image store). */
  requireManifest?: boolean;
  /**
   * The last check before the archive's end is written, once the input is verified: what it throws stops the archive
   * short. The file's digest is compared here when the same read also hashed it.
   */
  beforeEnd?: (report: ArchiveReport) => Promise<void>;
  /** Every layer, uncompressed, together (`max-image-size`). */
  maxImageBytes?: number;
}

export interface CanonicalResult {
  /** What the input held, verified. */
  report: ArchiveReport;
  /** The layout written. */
  format: ArchiveFormat;
  selections: Selection[];
}

/** Names an image tarball uses for its files; anything else is refused rather than written under a new name. */
const SAFE_NAME = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
/** Files that only describe the input's layout: the canonical archive writes its own, or none. */
const LAYOUT_FILES = /^(?:manifest\.json|index\.json|oci-layout|repositories|[0-9a-f]{64}\/(?:json|VERSION))$/;

/** Every selection of `report`: each image under the `wanted` references it has (all of them when undefined). */
export function selectReferences(report: ArchiveReport, wanted: readonly string[] | undefined): Selection[] {
  if (wanted === undefined) return report.images.map((image) => ({ image, references: [...image.references] }));
  const selections: Selection[] = [];
  for (const image of report.images) {
    const names = new Set(image.references.map(qualify));
    const references = wanted.filter((tag) => names.has(qualify(tag)));
    if (references.length > 0) selections.push({ image, references: [...new Set(references)] });
  }
  return selections;
}

/** The files of the images, following the archive's tree from each root, each once. */
export function filesOf(report: Pick<ArchiveReport, 'tree'>, images: readonly ArchiveImage[]): Set<string> {
  const files = new Set<string>();
  const stack = images.map((image) => image.root);
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const child of report.tree.get(file) ?? []) if (!files.has(child)) stack.push(child);
  }
  return files;
}

function manifestEntry(selection: Selection, options: CanonicalOptions): object | undefined {
  const { image, references } = selection;
  const chosen = loadedPlatform(image, options.platform);
  if (!chosen) {
    if (!options.requireManifest) return undefined;
    // The tarball's own words: shown escaped, and at most a few of them.
    const found = shownList(image.platforms.map((one) => one.platform ?? 'unknown platform'));
    throw new UserError(
      `The image ${references[0] ?? image.digest} has no ${options.platform ?? 'single'} platform (it has: ${found}); ` +
        'an engine without the containerd image store loads exactly one: save the platform this runner has ' +
        '(`platform` on the save side), or load on an engine with the containerd image store.',
    );
  }
  const path = (file: string) => (image.kind === 'config' ? file : blobPath(file));
  return {
    Config: image.kind === 'config' ? image.root : blobPath(chosen.configDigest),
    // With their tag: a graph-driver engine refuses a bare `app` ("invalid tag") after creating the image untagged.
    RepoTags: references.map(familiar),
    Layers: chosen.layers.map(path),
  };
}

/**
 * A Transform from a plain image tar to its canonical archive (see above). `result` settles when the input has
 * ended: with what was verified and written, or with the first problem found (the output then stops short).
 */
export function createCanonicalWriter(options: CanonicalOptions): {
  stream: Transform;
  result: Promise<CanonicalResult>;
} {
  const collector = new Collector(DEFAULT_MAX_JSON_BYTES, options.maxImageBytes);
  /** Files already written to the output, as they streamed past. */
  const streamed: string[] = [];
  let current: { entry: TarEntry; mode: 'pending' | 'stream' | 'hold' | 'drop' } | undefined;

  const startStreaming = (file: TarEntry) => {
    if (!SAFE_NAME.test(file.name) || Buffer.byteLength(file.name) > 100) {
      throw new UserError(
        `The tarball holds a file named ${shown(file.name, 120)}, which is not a ` +
          'name an image tarball uses (expected blobs/sha256/<digest> or <id>/layer.tar); it is refused.',
      );
    }
    output.push(tarHeader(file.name, file.size));
    streamed.push(file.name);
  };
  const reader = new TarReader({
    entry(header) {
      collector.entry(header);
      current =
        header.type === 'file'
          ? { entry: header, mode: LAYOUT_FILES.test(header.name) ? 'drop' : 'pending' }
          : undefined;
    },
    data(chunk) {
      collector.data(chunk);
      if (!current) return;
      if (current.mode === 'pending') {
        // Small JSON documents are kept by the collector, and written at the end if an image needs them.
        current.mode = collector.keepsCurrent ? 'hold' : 'stream';
        if (current.mode === 'stream') startStreaming(current.entry);
      }
      if (current.mode === 'stream') output.push(chunk);
    },
    entryEnd() {
      collector.entryEnd();
      if (current?.mode === 'stream') {
        const padding = (BLOCK - (current.entry.size % BLOCK)) % BLOCK;
        if (padding > 0) output.push(Buffer.alloc(padding));
      }
      current = undefined;
    },
  });

  let settle!: { resolve: (result: CanonicalResult) => void; reject: (error: unknown) => void };
  const result = new Promise<CanonicalResult>((resolve, reject) => (settle = { resolve, reject }));
  // Errors reach the caller through `result` and the stream; this keeps an unobserved one from crashing the process.
  result.catch(() => {});
  let settled = false;
  const fail = (error: unknown): Error => {
    if (!settled) {
      settled = true;
      settle.reject(error);
    }
    return error instanceof Error ? error : new Error(String(error));
  };

  // Used by the reader's listener above, which runs only once input arrives, after this is set.
  const output: Transform = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        reader.write(chunk);
      } catch (error) {
        callback(fail(error));
        return;
      }
      // A layer's decompressor that has all it may queue holds the read back until it catches up.
      const room = collector.room();
      if (room)
        room.then(
          () => callback(),
          (error: unknown) => callback(fail(error)),
        );
      else callback();
    },
    flush(callback: TransformCallback) {
      const end = async () => {
        reader.end();
        await collector.settled();
        const report = verifyContents(collector.contents, reader.offset, collector.entries);
        await options.beforeEnd?.(report);
        const written = finish(report, streamed, collector, options);
        for (const buffer of written.buffers) this.push(buffer);
        settled = true;
        settle.resolve({ report, format: written.format, selections: written.selections });
      };
      end().then(
        () => callback(null, END_OF_ARCHIVE),
        (error: unknown) => callback(fail(error)),
      );
    },
    destroy(error, callback) {
      collector.destroy();
      fail(
        error ??
          new UserError(
            `The tarball stream stopped after ${reader.offset} bytes, before its end; the image could not be verified.`,
          ),
      );
      callback(error);
    },
  });
  return { stream: output, result };
}

/** The end of the canonical archive, once the input is verified: held documents, then the layout's own files. */
function finish(
  report: ArchiveReport,
  streamed: readonly string[],
  collector: Collector,
  options: CanonicalOptions,
): { buffers: Buffer[]; format: ArchiveFormat; selections: Selection[] } {
  const everything = filesOf(report, report.images);
  const stray = streamed.filter((name) => !everything.has(name));
  if (stray.length > 0) {
    throw new UserError(
      `The tarball holds ${stray.length} file${stray.length === 1 ? '' : 's'} that no image refers to (${stray
        .slice(0, 3)
        .join(
          ', ',
        )}${stray.length > 3 ? ', …' : ''}); an image tarball holds only its images' files, so it is refused.`,
    );
  }
  // A layout file named as an image's file (a "layer" called index.json) would be read by an engine as the layout
  // itself, naming whatever it likes: the canonical archive writes those names only for its own documents.
  const impostor = [...everything].find((name) => LAYOUT_FILES.test(name));
  if (impostor !== undefined) {
    throw new UserError(
      `An image in the tarball names "${impostor}" as one of its files (a config or layer); that name belongs to the ` +
        "archive's layout, so the tarball is refused.",
    );
  }
  const selections = options.select(report);
  const wanted = filesOf(
    report,
    selections.map((selection) => selection.image),
  );
  const already = new Set(streamed);
  const buffers: Buffer[] = [];
  for (const name of [...wanted].sort()) {
    if (already.has(name)) continue;
    const record = collector.contents.files.get(name);
    if (!record) throw new UserError(`The verified image needs ${name}, which the tarball does not hold.`);
    const content = record.content ?? (record.size === 0 ? Buffer.alloc(0) : undefined);
    if (!content) throw new UserError(`${name} was not kept while reading the tarball; it cannot be written again.`);
    buffers.push(tarEntry(name, content));
  }

  const oci = report.format !== 'docker-archive';
  if (oci) {
    buffers.push(tarEntry('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')));
    const manifests = selections.flatMap(({ image, references }) => {
      if (image.kind === 'config' || image.mediaType === undefined) return [];
      const descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.size };
      const named = references.flatMap((reference) => {
        const annotations = nameAnnotations(reference);
        return annotations ? [{ ...descriptor, annotations }] : [];
      });
      return named.length > 0 ? named : [descriptor];
    });
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests,
    };
    buffers.push(tarEntry('index.json', Buffer.from(JSON.stringify(index))));
  }
  const legacy = selections.map((selection) => manifestEntry(selection, options)).filter((item) => item !== undefined);
  const needsManifest = !oci || options.requireManifest || legacy.length === selections.length;
  if (needsManifest && legacy.length > 0) buffers.push(tarEntry('manifest.json', Buffer.from(JSON.stringify(legacy))));
  const format: ArchiveFormat = !oci
    ? 'docker-archive'
    : needsManifest && legacy.length > 0
      ? 'docker-oci'
      : 'oci-layout';
  return { buffers, format, selections };
}
