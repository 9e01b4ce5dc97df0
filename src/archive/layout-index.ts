/**
 * What an OCI image layout directory says of the images in it, without I/O: the index.json entries that name them as
 * buildx and skopeo look them up (by `org.opencontainers.image.ref.name`, the tag alone), the manifest a
 * docker-archive image lacks, and which image each `oci-layout://DIR[:tag]` address reaches.
 */
import { createHash } from 'node:crypto';
import { shown } from '../display.ts';
import { UserError } from '../errors.ts';
import type { LayerCompression } from './layers.ts';
import { IMAGE_NAME, REF_NAME, nameAnnotations } from './names.ts';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

export interface BlobDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface IndexEntry extends BlobDescriptor {
  annotations?: Record<string, string>;
}

/** A blob as written to the layout: its digest, size, and the compression its first bytes show. */
export interface WrittenBlob {
  digest: string;
  size: number;
  compression: LayerCompression;
}

/** The tag of a reference and its full name (`docker.io/library/app:1`); undefined for a digest reference. */
function tagOf(reference: string): { tag: string; name: string } | undefined {
  const annotations = nameAnnotations(reference);
  return annotations && { tag: annotations[REF_NAME], name: annotations[IMAGE_NAME] };
}

/**
 * The tags given so far, each to one image: buildx finds an image in a layout by its tag alone
 * (`oci-layout://DIR:tag`), so a tag given to two images would reach either. Throws the line that says so.
 */
export class TagClaims {
  readonly #owners = new Map<string, { digest: string; reference: string }>();

  claim(digest: string, references: readonly string[]): void {
    for (const reference of references) {
      const named = tagOf(reference);
      if (!named) continue;
      const owner = this.#owners.get(named.tag);
      if (owner === undefined) this.#owners.set(named.tag, { digest, reference });
      else if (owner.digest !== digest) {
        throw new UserError(
          `The OCI layout would give the tag ${shown(named.tag)} to two images, ${shown(owner.reference)} (${owner.digest}) ` +
            `and ${shown(reference)} (${digest}), and buildx finds an image in a layout by its tag alone: name the tags ` +
            'to load in `tags` so that each tag names one image, or load the images in separate steps, each with its ' +
            'own `oci-layout`. Nothing was loaded or written.',
        );
      }
    }
  }
}

/**
 * index.json's entries for an image: one per distinct tag, annotated with the tag (what buildx and skopeo match) and
 * the first full name that has it (what containerd reads); one without annotations for an untagged image.
 */
export function entriesFor(descriptor: BlobDescriptor, references: readonly string[]): IndexEntry[] {
  const byTag = new Map<string, string>();
  for (const reference of references) {
    const named = tagOf(reference);
    if (named && !byTag.has(named.tag)) byTag.set(named.tag, named.name);
  }
  if (byTag.size === 0) return [{ ...descriptor }];
  return [...byTag].map(([tag, name]) => ({ ...descriptor, annotations: { [IMAGE_NAME]: name, [REF_NAME]: tag } }));
}

/** The entries of several images together, an image named by the same tag twice (or untagged twice) listed once. */
export function mergeEntries(entries: readonly IndexEntry[]): IndexEntry[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const key = `${entry.digest} ${entry.annotations?.[REF_NAME] ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function indexDocument(entries: readonly IndexEntry[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }));
}

export const LAYOUT_VERSION_DOCUMENT = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

/** The OCI media type of a layer blob whose bytes show `compression`. */
export function layerMediaType(compression: LayerCompression): string {
  return compression === 'none'
    ? 'application/vnd.oci.image.layer.v1.tar'
    : `application/vnd.oci.image.layer.v1.tar+${compression}`;
}

/**
 * The OCI manifest of a docker-archive image, which has none: its config, and its layers in the config's order, each
 * described by the bytes written (an uncompressed layer's digest is its diff_id).
 */
export function dockerArchiveManifest(
  config: { digest: string; size: number },
  layers: readonly WrittenBlob[],
): { descriptor: BlobDescriptor; content: Buffer } {
  const content = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((layer) => ({
        mediaType: layerMediaType(layer.compression),
        digest: layer.digest,
        size: layer.size,
      })),
    }),
  );
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  return { descriptor: { mediaType: OCI_MANIFEST, digest, size: content.length }, content };
}

/**
 * How buildx reaches the entries (build/opt.go resolveDigest with client/ociindex): `oci-layout://DIR:tag` the entry
 * whose ref.name is `tag`; `oci-layout://DIR` alone the tag `latest`, or else the only entry; `@digest` any of them.
 */
export function addresses(
  directory: string,
  entries: readonly IndexEntry[],
): { tagged: Array<{ address: string; entry: IndexEntry }>; bare: IndexEntry | undefined } {
  const tagged = entries.flatMap((entry) => {
    const tag = entry.annotations?.[REF_NAME];
    return tag === undefined ? [] : [{ address: `oci-layout://${directory}:${tag}`, entry }];
  });
  const latest = entries.find((entry) => entry.annotations?.[REF_NAME] === 'latest');
  return { tagged, bare: latest ?? (entries.length === 1 ? entries[0] : undefined) };
}

/** The full name an entry gives its image, for the log. */
export function nameOf(entry: IndexEntry): string | undefined {
  return entry.annotations?.[IMAGE_NAME];
}
