/**
 * Image tarballs for the archive tests, in all three layouts. The outer tars are written by tar-stream (not by
 * this project's reader's own writer), so a shared misunderstanding of tar cannot make a test pass.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { pack as tarPack, extract as tarExtract, type Header } from 'tar-stream';
import { inspectArchive } from '../../src/archive/inspector.ts';
import type { ArchiveReport } from '../../src/archive/model.ts';

export interface RawEntry {
  name: string;
  content?: Buffer | string;
  type?: Header['type'];
  linkname?: string;
  pax?: Record<string, string>;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hex(digest: string): string {
  return digest.slice('sha256:'.length);
}

export async function packTar(entries: readonly RawEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => pack.on('end', () => resolve()).on('error', reject));
  for (const entry of entries) {
    const content = typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content;
    const header: Partial<Header> & { name: string } = {
      name: entry.name,
      type: entry.type ?? 'file',
      mode: entry.type === 'directory' ? 0o755 : 0o644,
      mtime: new Date(0),
      ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
      ...(entry.pax === undefined ? {} : { pax: entry.pax }),
    };
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (entry.type === undefined || entry.type === 'file') pack.entry(header, content ?? Buffer.alloc(0), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** Every file of a tar, by name, with symlinks resolved the way the legacy layouts use them. */
export async function unpackTar(tar: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const links = new Map<string, string>();
  const extract = tarExtract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    stream.on('end', () => {
      const name = header.name.replace(/^\.\//, '').replace(/\/$/, '');
      if (header.type === 'file') files.set(name, Buffer.concat(chunks));
      if (header.type === 'symlink') links.set(name, header.linkname!);
      next();
    });
  });
  await new Promise((resolve, reject) => {
    extract.on('finish', () => resolve(undefined)).on('error', reject);
    extract.end(tar);
  });
  for (const [name, target] of links) {
    const resolved = new URL(target, `file:///${name}`).pathname.slice(1);
    files.set(name, files.get(resolved)!);
  }
  return files;
}

/** A small inner layer tar; its content never matters to the reader, only its hash. */
export async function layerTar(files: Record<string, string>): Promise<Buffer> {
  return packTar(Object.entries(files).map(([name, content]) => ({ name, content })));
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface FixtureImage {
  /** Raw config bytes: its digest is the image ID. */
  config: Buffer;
  /** Uncompressed layer tars, bottom first. */
  layers: Buffer[];
  tags: string[];
}

export function makeConfig(
  layers: readonly Buffer[],
  platform: Platform = { os: 'linux', architecture: 'amd64' },
): Buffer {
  return Buffer.from(
    JSON.stringify({
      ...platform,
      config: { Env: ['PATH=/usr/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => sha256(layer)) },
      history: layers.map(() => ({ created_by: 'fixture' })),
    }),
  );
}

export async function makeImage(
  tags: string[],
  options: { platform?: Platform; seed?: string; layerCount?: number } = {},
): Promise<FixtureImage> {
  const layers: Buffer[] = [];
  for (let i = 0; i < (options.layerCount ?? 2); i++) {
    layers.push(await layerTar({ [`file-${i}.txt`]: `${options.seed ?? 'seed'} layer ${i}\n`.repeat(50) }));
  }
  return { config: makeConfig(layers, options.platform), layers, tags };
}

/** Docker ≤ 24 `docker save`: `<id>/layer.tar`, `<config hex>.json`, manifest.json, repositories. */
export function dockerArchiveEntries(images: readonly FixtureImage[]): RawEntry[] {
  const entries: RawEntry[] = [];
  const written = new Set<string>();
  const manifest = images.map((image) => {
    const layers = image.layers.map((layer) => {
      const id = hex(sha256(`v1 ${sha256(layer)}`));
      if (!written.has(id)) {
        written.add(id);
        entries.push({ name: `${id}/`, type: 'directory' });
        entries.push({ name: `${id}/VERSION`, content: '1.0' });
        entries.push({ name: `${id}/json`, content: JSON.stringify({ id }) });
        entries.push({ name: `${id}/layer.tar`, content: layer });
      }
      return `${id}/layer.tar`;
    });
    entries.push({ name: `${hex(sha256(image.config))}.json`, content: image.config });
    return { Config: `${hex(sha256(image.config))}.json`, RepoTags: image.tags, Layers: layers };
  });
  entries.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  entries.push({ name: 'repositories', content: '{}' });
  return entries;
}

export interface OciOptions {
  /** gzip the layer blobs, as skopeo, podman and buildx do. */
  gzip?: boolean;
  /** Put every image under one nested multi-platform index (as a registry's image index is saved). */
  nested?: boolean;
  /** With `nested`: a provenance attestation manifest beside each image's, as buildx adds by default. */
  attestations?: boolean;
  /** Also write manifest.json and the v1 layer JSON blobs, as Docker 25+ `docker save` does. */
  docker25?: boolean;
  /** The annotations naming an image in index.json; Docker 25 style (containerd name and tag) by default. */
  names?: (tag: string) => Record<string, string>;
}

const docker25Names = (tag: string): Record<string, string> => ({
  'io.containerd.image.name': tag,
  'org.opencontainers.image.ref.name': tag.slice(tag.lastIndexOf(':') + 1),
});

/** An OCI image layout, pure or as Docker 25+ writes it. */
export function ociLayoutEntries(images: readonly FixtureImage[], options: OciOptions = {}): RawEntry[] {
  const blobs = new Map<string, Buffer>();
  const put = (content: Buffer): { digest: string; size: number } => {
    const digest = sha256(content);
    blobs.set(hex(digest), content);
    return { digest, size: content.length };
  };
  const top: object[] = [];
  const nested: object[] = [];
  const legacy: object[] = [];
  for (const image of images) {
    const layerBlobs = image.layers.map((layer) => (options.gzip ? gzipSync(layer) : layer));
    const layers = layerBlobs.map((blob) => ({
      mediaType: `application/vnd.oci.image.layer.v1.tar${options.gzip ? '+gzip' : ''}`,
      ...put(blob),
    }));
    const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(image.config) };
    const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers })));
    const parsed = JSON.parse(image.config.toString()) as Platform;
    const platform = {
      os: parsed.os,
      architecture: parsed.architecture,
      ...(parsed.variant ? { variant: parsed.variant } : {}),
    };
    const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform };
    if (options.nested) nested.push(descriptor);
    if (options.nested && options.attestations) {
      const statement = Buffer.from(
        JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', subject: [manifest] }),
      );
      const statementBlob = put(statement);
      const attestationConfig = put(
        Buffer.from(
          JSON.stringify({
            architecture: 'unknown',
            os: 'unknown',
            config: {},
            rootfs: { type: 'layers', diff_ids: [statementBlob.digest] },
          }),
        ),
      );
      const attestation = put(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...attestationConfig },
            layers: [{ mediaType: 'application/vnd.in-toto+json', ...statementBlob }],
          }),
        ),
      );
      nested.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...attestation,
        annotations: {
          'vnd.docker.reference.digest': manifest.digest,
          'vnd.docker.reference.type': 'attestation-manifest',
        },
        platform: { architecture: 'unknown', os: 'unknown' },
      });
    }
    for (const tag of options.nested ? [] : image.tags) {
      top.push({ ...descriptor, annotations: (options.names ?? docker25Names)(tag) });
    }
    if (!options.nested && image.tags.length === 0) top.push(descriptor);
    if (options.docker25) {
      for (const layer of image.layers) put(Buffer.from(JSON.stringify({ id: hex(sha256(`v1 ${sha256(layer)}`)) })));
      legacy.push({
        Config: `blobs/sha256/${hex(config.digest)}`,
        RepoTags: image.tags,
        Layers: layers.map((layer) => `blobs/sha256/${hex(layer.digest)}`),
      });
    }
  }
  if (options.nested) {
    const index = put(
      Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: nested }),
      ),
    );
    const tags = [...new Set(images.flatMap((image) => image.tags))];
    for (const tag of tags.length > 0 ? tags : [undefined]) {
      top.push({
        mediaType: 'application/vnd.oci.image.index.v1+json',
        ...index,
        ...(tag ? { annotations: (options.names ?? docker25Names)(tag) } : {}),
      });
    }
  }
  return [
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    ...[...blobs].map(([name, content]) => ({ name: `blobs/sha256/${name}`, content })),
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    {
      name: 'index.json',
      content: JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: top,
      }),
    },
    ...(options.docker25 ? [{ name: 'manifest.json', content: JSON.stringify(legacy) }] : []),
  ];
}

/** The images of a real legacy `docker save` tarball, to rebuild them in the other layouts. */
export async function imagesOfDockerArchive(tar: Buffer): Promise<FixtureImage[]> {
  const files = await unpackTar(tar);
  const manifest = JSON.parse(files.get('manifest.json')!.toString()) as Array<{
    Config: string;
    RepoTags: string[] | null;
    Layers: string[];
  }>;
  // The containerd image store saves its layers as it stores them, gzip-compressed; a FixtureImage's are plain.
  const plain = (blob: Buffer) => (blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob);
  return manifest.map((item) => ({
    config: files.get(item.Config)!,
    layers: item.Layers.map((layer) => plain(files.get(layer)!)),
    tags: item.RepoTags ?? [],
  }));
}

/** The same image for another platform: only the config differs, as in a real multi-platform build. */
export function forPlatform(image: FixtureImage, platform: Platform): FixtureImage {
  const config = JSON.parse(image.config.toString()) as Record<string, unknown>;
  delete config['variant'];
  return { ...image, config: Buffer.from(JSON.stringify({ ...config, ...platform })) };
}

/** Inspects a tar held in memory, fed in chunks of `chunkSize` bytes to exercise every boundary. */
export function inspectBuffer(tar: Buffer, chunkSize = 4096): Promise<ArchiveReport> {
  return inspectArchive(Readable.from(chunksOf(tar, chunkSize)));
}

function* chunksOf(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}
