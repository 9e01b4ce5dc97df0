/**
 * Every layer is checked against its diff_id once decompressed, as the engine unpacks it: a blob whose own digest is
 * right but whose content is another layer's, layers listed out of order, a media type that lies about the compression,
 * and layers that expand without bound are all refused before a report exists.
 */
import { Readable } from 'node:stream';
import { gzipSync, zstdCompressSync, createZstdCompress, constants as zlibConstants } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createCanonicalWriter } from '../../src/archive/canonical.ts';
import { inspectArchive } from '../../src/archive/inspector.ts';
import {
  LAYER_EXPANSION_FLOOR,
  declaredCompression,
  detectLayerCompression,
  layerExpansionLimit,
} from '../../src/archive/layers.ts';
import { UserError } from '../../src/errors.ts';
import {
  dockerArchiveEntries,
  hex,
  inspectBuffer,
  makeConfig,
  makeImage,
  ociLayoutEntries,
  packTar,
  sha256,
  type RawEntry,
} from '../support/fixtures.ts';

const image = await makeImage(['app:1'], { seed: 'layers', layerCount: 2 });
const other = await makeImage(['other:1'], { seed: 'another image entirely', layerCount: 1 });

/** An OCI layout of one image whose layer blobs are `blobs` (any bytes), described with `mediaTypes`. */
function layout(config: Buffer, blobs: Buffer[], mediaTypes: string[]): RawEntry[] {
  const put = (content: Buffer) => ({ digest: sha256(content), size: content.length });
  const layers = blobs.map((blob, i) => ({ mediaType: mediaTypes[i]!, ...put(blob) }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
      layers,
    }),
  );
  return [
    ...[config, manifest, ...blobs].map((content) => ({ name: `blobs/sha256/${hex(sha256(content))}`, content })),
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    {
      name: 'index.json',
      content: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...put(manifest),
            annotations: {
              'io.containerd.image.name': 'docker.io/library/app:1',
              'org.opencontainers.image.ref.name': '1',
            },
          },
        ],
      }),
    },
  ];
}

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const PLAIN = 'application/vnd.oci.image.layer.v1.tar';

async function refused(entries: RawEntry[], message: RegExp, options: { maxImageBytes?: number } = {}): Promise<void> {
  const tar = await packTar(entries);
  const outcome = await (
    options.maxImageBytes === undefined ? inspectBuffer(tar, 1 << 16) : inspectArchive(Readable.from([tar]), options)
  ).then(
    () => 'accepted',
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(UserError);
  expect((outcome as Error).message).toMatch(message);
  expect((outcome as Error).message).not.toContain('\n');
}

describe('what a blob is, by its bytes', () => {
  it.each([
    ['gzip', gzipSync(Buffer.from('x')), 'gzip'],
    ['a zstd frame', zstdCompressSync(Buffer.from('x')), 'zstd'],
    ['a zstd skippable frame first (pzstd)', Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]), 'zstd'],
    ['a tar header', Buffer.from('etc/\0\0\0'), 'none'],
    ['one gzip byte only', Buffer.from([0x1f]), 'none'],
    ['nothing', Buffer.alloc(0), 'none'],
  ])('%s is %s', (_name, head, expected) => {
    expect(detectLayerCompression(head)).toBe(expected);
  });

  it.each([
    [GZIP, 'gzip'],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
    [ZSTD, 'zstd'],
    ['application/vnd.docker.image.rootfs.diff.tar.zstd', 'zstd'],
    [PLAIN, 'none'],
    ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
    ['application/vnd.oci.image.layer.v1.tar+encrypted', 'unknown'],
    ['application/octet-stream', 'unknown'],
    [undefined, undefined],
  ])('media type %s declares %s', (mediaType, expected) => {
    expect(declaredCompression(mediaType)).toBe(expected);
  });

  it('a layer may always expand to the floor, and beyond it to 200 times its size', () => {
    expect(layerExpansionLimit(1)).toBe(LAYER_EXPANSION_FLOOR);
    expect(layerExpansionLimit(10 * 1024 * 1024 * 1024)).toBe(200 * 10 * 1024 * 1024 * 1024);
  });
});

describe('layers checked against the diff_ids', () => {
  it('accepts gzip layers whose content is the config diff_ids, in every layout', async () => {
    for (const entries of [
      ociLayoutEntries([image], { gzip: true }),
      ociLayoutEntries([image], { gzip: true, docker25: true }),
      ociLayoutEntries([image], { gzip: true, nested: true, attestations: true }),
      layout(
        image.config,
        image.layers.map((layer) => gzipSync(layer)),
        [GZIP, GZIP],
      ),
    ]) {
      const report = await inspectBuffer(await packTar(entries), 1 << 16);
      expect(report.images).toHaveLength(1);
      expect(report.images[0]!.platforms[0]!.diffIds).toEqual(image.layers.map((layer) => sha256(layer)));
    }
  });

  it('accepts zstd layers, several frames and a skippable frame among them', async () => {
    const [first, second] = image.layers as [Buffer, Buffer];
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const frames = Buffer.concat([
      zstdCompressSync(second.subarray(0, 100)),
      skippable,
      zstdCompressSync(second.subarray(100)),
    ]);
    const report = await inspectBuffer(
      await packTar(layout(image.config, [zstdCompressSync(first), frames], [ZSTD, ZSTD])),
      1 << 16,
    );
    expect(report.images).toHaveLength(1);
  });

  it('accepts a legacy docker-archive whose layer.tar is gzip-compressed, as docker load reads it', async () => {
    const entries = dockerArchiveEntries([image]).map((entry) =>
      entry.name.endsWith('/layer.tar') ? { ...entry, content: gzipSync(entry.content as Buffer) } : entry,
    );
    const report = await inspectBuffer(await packTar(entries), 1 << 16);
    expect(report.references).toEqual(['app:1']);
  });

  it("refuses a gzip layer whose blob digest is right but whose content is another image's layer", async () => {
    // What the engine does with it: reuses the layer it already has under that diff_id, the other image's files.
    const swapped = gzipSync(other.layers[0]!);
    await refused(
      layout(image.config, [gzipSync(image.layers[0]!), swapped], [GZIP, GZIP]),
      /Layer `blobs\/sha256\/[0-9a-f]{64}` decompresses \(gzip\) and hashes to sha256:[0-9a-f]{64}, but the image config expects diff_id sha256:[0-9a-f]{64} \(layer 2 of manifest/,
    );
  });

  it('refuses layers listed in another order than the diff_ids', async () => {
    const [first, second] = image.layers.map((layer) => gzipSync(layer)) as [Buffer, Buffer];
    await refused(layout(image.config, [second, first], [GZIP, GZIP]), /layer 1 of manifest .*listed out of order/);
  });

  it('refuses an uncompressed layer that is not its diff_id, in a docker-oci tarball with gzip beside it', async () => {
    const config = makeConfig([image.layers[0]!, other.layers[0]!]);
    await refused(
      layout(config, [gzipSync(image.layers[0]!), image.layers[1]!], [GZIP, PLAIN]),
      /hashes to sha256:[0-9a-f]{64}, but the image config expects diff_id/,
    );
  });

  it('refuses a legacy gzip layer.tar whose content is not its diff_id', async () => {
    const entries = dockerArchiveEntries([image]).map((entry) =>
      entry.name.endsWith('/layer.tar') ? { ...entry, content: gzipSync(other.layers[0]!) } : entry,
    );
    await refused(entries, /decompresses \(gzip\) and hashes to .* \(manifest\.json entry 1 layer 1\)/);
  });

  it.each([
    [
      'says gzip over plain bytes',
      (layer: Buffer) => layer,
      GZIP,
      /says gzip-compressed, but its bytes are an uncompressed tar/,
    ],
    [
      'says plain over gzip bytes',
      (layer: Buffer) => gzipSync(layer),
      PLAIN,
      /says an uncompressed tar, but its bytes are gzip/,
    ],
    [
      'says gzip over zstd bytes',
      (layer: Buffer) => zstdCompressSync(layer),
      GZIP,
      /says gzip-compressed, but its bytes are zstd/,
    ],
    [
      'says zstd over gzip bytes',
      (layer: Buffer) => gzipSync(layer),
      ZSTD,
      /says zstd-compressed, but its bytes are gzip/,
    ],
    [
      'is an encrypted layer',
      (layer: Buffer) => layer,
      'application/vnd.oci.image.layer.v1.tar+encrypted',
      /is not a layer an engine unpacks/,
    ],
  ])('refuses a media type that %s', async (_name, encode, mediaType, message) => {
    const blobs = image.layers.map((layer) => encode(layer));
    await refused(layout(image.config, blobs, [mediaType, mediaType]), message);
  });

  it.each([
    ['zeros, which Go refuses as a header and Node passes over', Buffer.alloc(64)],
    ['garbage', Buffer.from('this is not a gzip member at all')],
  ])('refuses a gzip layer with %s after its last member', async (_name, tail) => {
    const blobs = image.layers.map((layer) => Buffer.concat([gzipSync(layer), tail]));
    await refused(layout(image.config, blobs, [GZIP, GZIP]), /after its last gzip member|is not a whole gzip stream/);
  });

  it('accepts a gzip layer of several members, which Go reads as one stream', async () => {
    const [first, second] = image.layers as [Buffer, Buffer];
    const members = Buffer.concat([gzipSync(second.subarray(0, 700)), gzipSync(second.subarray(700))]);
    const report = await inspectBuffer(
      await packTar(layout(image.config, [gzipSync(first), members], [GZIP, GZIP])),
      1 << 16,
    );
    expect(report.images).toHaveLength(1);
  });

  it('refuses a cut-short gzip layer', async () => {
    const blobs = image.layers.map((layer) => gzipSync(layer));
    blobs[1] = blobs[1]!.subarray(0, blobs[1]!.length - 20);
    await refused(
      layout(image.config, blobs, [GZIP, GZIP]),
      /Layer `blobs\/sha256\/[0-9a-f]{64}` is not a whole gzip stream/,
    );
  });
});

describe('how far a layer may expand', () => {
  /** A zstd stream of `bytes` zeros, made without holding them. */
  async function zstdZeros(bytes: number): Promise<Buffer> {
    const compress = createZstdCompress({ params: { [zlibConstants.ZSTD_c_compressionLevel]: 19 } });
    const chunks: Buffer[] = [];
    compress.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => compress.on('end', resolve));
    const zeros = Buffer.alloc(16 * 1024 * 1024);
    for (let left = bytes; left > 0; left -= zeros.length) {
      if (!compress.write(zeros.subarray(0, Math.min(left, zeros.length)))) {
        await new Promise((resolve) => compress.once('drain', resolve));
      }
    }
    compress.end();
    await ended;
    return Buffer.concat(chunks);
  }

  it('stops a small zstd layer that expands past the floor at once, without decompressing the rest', async () => {
    const bomb = await zstdZeros(LAYER_EXPANSION_FLOOR + 64 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const config = makeConfig([Buffer.alloc(1)]);
    const started = Date.now();
    await refused(
      layout(config, [bomb], [ZSTD]),
      /expands to more than 512\.0 MiB from .* of zstd, more than 200 times its size/,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('refuses an image whose layers together expand past max-image-size, and names the input', async () => {
    const big = await makeImage(['app:1'], { seed: 'x'.repeat(2000), layerCount: 3 });
    const blobs = big.layers.map((layer) => gzipSync(layer));
    const total = big.layers.reduce((sum, layer) => sum + layer.length, 0);
    await refused(
      layout(big.config, blobs, [GZIP, GZIP, GZIP]),
      /expand to more than .* in all, the limit `max-image-size` sets/,
      {
        maxImageBytes: total - 1,
      },
    );
    const tar = await packTar(layout(big.config, blobs, [GZIP, GZIP, GZIP]));
    await expect(inspectArchive(Readable.from([tar]), { maxImageBytes: total })).resolves.toBeDefined();
  });

  it('counts uncompressed layers against max-image-size too', async () => {
    const total = image.layers.reduce((sum, layer) => sum + layer.length, 0);
    await refused(layout(image.config, image.layers, [PLAIN, PLAIN]), /`max-image-size`/, { maxImageBytes: total - 1 });
  });
});

describe('the canonical writer holds the archive back until every layer is checked', () => {
  it('writes no index.json or manifest.json when a layer does not match, so no engine can name an image', async () => {
    const tar = await packTar(
      layout(image.config, [gzipSync(image.layers[0]!), gzipSync(other.layers[0]!)], [GZIP, GZIP]),
    );
    const writer = createCanonicalWriter({ select: () => [] });
    const out: Buffer[] = [];
    writer.stream.on('data', (chunk: Buffer) => out.push(chunk));
    const fed = new Promise<void>((resolve, reject) => {
      writer.stream.on('error', reject);
      writer.stream.on('end', resolve);
    });
    writer.stream.end(tar);
    await expect(fed).rejects.toThrow(/expects diff_id/);
    await expect(writer.result).rejects.toThrow(/expects diff_id/);
    const written = Buffer.concat(out).toString('latin1');
    expect(written).not.toContain('index.json');
    expect(written).not.toContain('manifest.json');
  });
});
