import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { createArchiveInspector, inspectArchive } from '../../src/archive/inspector.ts';
import {
  dockerArchiveEntries,
  forPlatform,
  inspectBuffer,
  makeConfig,
  makeImage,
  ociLayoutEntries,
  packTar,
  sha256,
} from '../support/fixtures.ts';

const app = await makeImage(['ghcr.io/owner/app:1', 'ghcr.io/owner/app:latest'], { seed: 'app' });
const tool = await makeImage(['tool:2'], { seed: 'tool', layerCount: 3 });
const arm = forPlatform(app, { os: 'linux', architecture: 'arm64', variant: 'v8' });

function contentBlobs(...images: (typeof app)[]): string[] {
  return images.flatMap((image) => [sha256(image.config), ...image.layers.map((layer) => sha256(layer))]);
}

describe('inspectArchive', () => {
  it('verifies a legacy docker-archive of two images', async () => {
    const report = await inspectBuffer(await packTar(dockerArchiveEntries([app, tool])));
    expect(report).toMatchObject({
      format: 'docker-archive',
      references: ['ghcr.io/owner/app:1', 'ghcr.io/owner/app:latest', 'tool:2'],
      platforms: ['linux/amd64'],
      loadableByLegacyEngine: true,
      warnings: [],
    });
    expect(report.images.map((image) => image.platforms[0]!.configDigest)).toEqual([
      sha256(app.config),
      sha256(tool.config),
    ]);
    expect(report.blobs.map((blob) => blob.digest).sort()).toEqual(contentBlobs(app, tool).sort());
  });

  it('verifies the Docker 25+ layout and merges its two spellings of each reference', async () => {
    const report = await inspectBuffer(await packTar(ociLayoutEntries([app], { docker25: true })));
    expect(report.format).toBe('docker-oci');
    // manifest.json says `ghcr.io/owner/app:1`, index.json says the same: one reference, not two.
    expect(report.references).toEqual(['ghcr.io/owner/app:1', 'ghcr.io/owner/app:latest']);
    expect(report.images[0]!.platforms[0]!.layers).toEqual(app.layers.map((layer) => sha256(layer)));
    expect(report.warnings).toEqual([]);
    expect(report.loadableByLegacyEngine).toBe(true);
  });

  it('verifies a gzip OCI layout: layers by descriptor, diff_ids not needed', async () => {
    const report = await inspectBuffer(await packTar(ociLayoutEntries([app], { gzip: true })));
    expect(report.format).toBe('oci-layout');
    expect(report.loadableByLegacyEngine).toBe(false);
    expect(report.images).toHaveLength(1);
    expect(report.images[0]!.platforms[0]!.layers).toHaveLength(2);
    expect(report.images[0]!.platforms[0]!.layers[0]).not.toBe(sha256(app.layers[0]!));
  });

  it('walks a nested multi-platform index', async () => {
    const report = await inspectBuffer(await packTar(ociLayoutEntries([app, arm], { gzip: true, nested: true })));
    expect(report.platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(report.references).toEqual(['ghcr.io/owner/app:1', 'ghcr.io/owner/app:latest']);
    expect(report.images.every((image) => image.references.length === 2)).toBe(true);
  });

  it('reads entries in any order: manifests after or before the blobs', async () => {
    const entries = ociLayoutEntries([app, tool], { docker25: true });
    const forward = await inspectBuffer(await packTar(entries));
    const backward = await inspectBuffer(await packTar([...entries].reverse()));
    expect(backward.images).toEqual(forward.images);
    expect(backward.blobs).toHaveLength(forward.blobs.length);
  });

  it('reports bare ref.name values apart from references', async () => {
    const names = (tag: string) => ({ 'org.opencontainers.image.ref.name': tag.slice(tag.lastIndexOf(':') + 1) });
    const report = await inspectBuffer(await packTar(ociLayoutEntries([tool], { names })));
    expect(report.references).toEqual([]);
    expect(report.bareNames).toEqual(['2']);
  });

  it('takes a full ref.name (skopeo and podman write one) as a reference', async () => {
    const names = (tag: string) => ({ 'org.opencontainers.image.ref.name': tag });
    const report = await inspectBuffer(await packTar(ociLayoutEntries([tool], { names })));
    expect(report.references).toEqual(['tool:2']);
    expect(report.bareNames).toEqual([]);
  });

  it('warns about files no image refers to, and about layers stored twice', async () => {
    const layer = tool.layers[0]!;
    const config = makeConfig([layer, layer]);
    const report = await inspectBuffer(
      await packTar([
        { name: `${'a'.repeat(64)}/layer.tar`, content: layer },
        { name: `${'b'.repeat(64)}/layer.tar`, content: layer },
        { name: `${sha256(config).slice(7)}.json`, content: config },
        {
          name: 'manifest.json',
          content: JSON.stringify([
            {
              Config: `${sha256(config).slice(7)}.json`,
              RepoTags: ['twin:1'],
              Layers: [`${'a'.repeat(64)}/layer.tar`, `${'b'.repeat(64)}/layer.tar`],
            },
          ]),
        },
        { name: 'notes.txt', content: 'left behind' },
      ]),
    );
    expect(report.warnings).toEqual([
      '1 file(s) in the tarball are not part of any image: `notes.txt`',
      `\`${'a'.repeat(64)}/layer.tar\` and \`${'b'.repeat(64)}/layer.tar\` have the same content (${sha256(layer)}).`,
    ]);
  });

  it('warns, but accepts, when a multi-platform index lacks one platform (docker save --platform)', async () => {
    const entries = ociLayoutEntries([app, arm], { gzip: true, nested: true });
    const armConfig = sha256(arm.config).slice(7);
    const dropped = entries.filter((entry) => {
      const text = Buffer.isBuffer(entry.content) ? entry.content.toString() : (entry.content ?? '');
      // The arm64 manifest is the one blob that names the arm64 config.
      return !(entry.name.startsWith('blobs/') && text.includes(`"digest":"sha256:${armConfig}"`));
    });
    const report = await inspectBuffer(await packTar(dropped));
    expect(report.platforms).toEqual(['linux/amd64']);
    expect(report.warnings.join('\n')).toMatch(
      /linux\/arm64\/v8 manifest sha256:[0-9a-f]{64} that is not in the tarball/,
    );
  });

  it('counts entries and bytes', async () => {
    const tar = await packTar(dockerArchiveEntries([tool]));
    const report = await inspectBuffer(tar, 999);
    expect(report.bytes).toBe(tar.length);
    expect(report.entries).toBe(dockerArchiveEntries([tool]).length);
  });
});

describe('createArchiveInspector', () => {
  it('rejects, rather than hangs, when the writer ends early', async () => {
    const tar = await packTar(dockerArchiveEntries([tool]));
    const { stream, report } = createArchiveInspector();
    stream.end(tar.subarray(0, 3000));
    await expect(report).rejects.toThrow(/ends after 3000 bytes without the end-of-archive marker/);
  });

  it('rejects when the stream is destroyed midway', async () => {
    const { stream, report } = createArchiveInspector();
    stream.write(Buffer.alloc(512 * 3));
    stream.destroy();
    await expect(report).rejects.toThrow(/stopped after .* bytes, before its end/);
  });

  it('signals backpressure: a write past the high-water mark returns false', async () => {
    const tar = await packTar(dockerArchiveEntries([tool]));
    const { stream, report } = createArchiveInspector();
    stream.cork();
    expect(stream.write(Buffer.alloc(64 * 1024))).toBe(false);
    stream.uncork();
    stream.end(tar.subarray(64 * 1024));
    await expect(report).rejects.toBeInstanceOf(UserError);
  });

  it('caps JSON documents at maxJsonBytes', async () => {
    const { stream, report } = createArchiveInspector({ maxJsonBytes: 100 });
    stream.end(await packTar(dockerArchiveEntries([tool])));
    await expect(report).rejects.toThrow(/JSON documents over 0 MiB are refused/);
  });

  it('accepts an async iterable of chunks', async () => {
    const tar = await packTar(dockerArchiveEntries([tool]));
    async function* chunks() {
      for (let i = 0; i < tar.length; i += 1000) yield tar.subarray(i, i + 1000);
    }
    expect((await inspectArchive(chunks())).format).toBe('docker-archive');
    expect((await inspectArchive(Readable.from([tar]))).images).toHaveLength(1);
  });
});

describe('inspectArchive input failures', () => {
  it('reports the input failing, not a vague early end', async () => {
    async function* failing() {
      yield Buffer.alloc(512 * 4);
      throw new Error('unexpected end of zstd frame');
    }
    await expect(inspectArchive(failing())).rejects.toThrow(/Reading the tarball failed: unexpected end of zstd frame/);
  });
});
