/** The canonical archive: what an engine, a scanner or an artifact receives is a tar this action wrote. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createCanonicalWriter, selectReferences, type CanonicalOptions } from '../../src/archive/canonical.ts';
import type { ArchiveReport } from '../../src/archive/model.ts';
import { TarReader, type TarEntry } from '../../src/archive/tar.ts';
import {
  dockerArchiveEntries,
  forPlatform,
  hex,
  inspectBuffer,
  makeImage,
  ociLayoutEntries,
  packTar,
  sha256,
  unpackTar,
  type RawEntry,
} from '../support/fixtures.ts';

const run = promisify(execFile);
const app = await makeImage(['ghcr.io/owner/app:pr-1', 'ghcr.io/owner/app:sha-abc'], { seed: 'app' });
const arm = forPlatform(app, { os: 'linux', architecture: 'arm64' });
const other = await makeImage(['ghcr.io/owner/other:1'], { seed: 'other', layerCount: 1 });
const all = (report: ArchiveReport) => selectReferences(report, undefined);

/** Runs the writer over `input`; resolves with the output bytes, or rejects with the writer's verdict. */
async function canonical(input: Buffer, options: CanonicalOptions = { select: all }) {
  const writer = createCanonicalWriter(options);
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  const piped = pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < input.length; i += 1000) yield input.subarray(i, i + 1000);
      })(),
    ),
    writer.stream,
    sink,
  );
  const [outcome] = await Promise.allSettled([writer.result, piped]);
  return { outcome, output: Buffer.concat(chunks) };
}

async function written(input: Buffer, options?: CanonicalOptions): Promise<Buffer> {
  const { outcome, output } = await canonical(input, options);
  if (outcome.status === 'rejected') throw outcome.reason;
  return output;
}

/** Every header of a tar, as our reader sees it, plus whether any header was not plain ustar. */
function headersOf(tar: Buffer): { names: string[]; plainUstar: boolean } {
  const names: string[] = [];
  const reader = new TarReader({
    entry: (entry: TarEntry) => names.push(entry.name),
    data: () => {},
    entryEnd: () => {},
  });
  reader.write(tar);
  reader.end();
  let plainUstar = true;
  for (let offset = 0; offset + 512 <= tar.length;) {
    const block = tar.subarray(offset, offset + 512);
    if (block.every((byte) => byte === 0)) break;
    const type = String.fromCharCode(block[156]!);
    if (type !== '0' || block.toString('latin1', 257, 263) !== 'ustar\0' || block[345] !== 0) plainUstar = false;
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return { names, plainUstar };
}

const work = await mkdtemp(path.join(tmpdir(), 'handoff-canonical-'));
afterAll(() => rm(work, { recursive: true, force: true }));

describe('the canonical archive of a docker-archive', () => {
  it('holds only the layers, the configs and a manifest.json written last; the images verify the same', async () => {
    const input = await packTar(dockerArchiveEntries([app, other]));
    const output = await written(input);
    const { names, plainUstar } = headersOf(output);
    expect(plainUstar).toBe(true);
    expect(names.at(-1)).toBe('manifest.json');
    expect(names.some((name) => name === 'repositories' || /\/(?:json|VERSION)$/.test(name))).toBe(false);
    const [before, after] = [await inspectBuffer(input), await inspectBuffer(output)];
    expect(after.format).toBe('docker-archive');
    expect(after.images.map((image) => [image.digest, image.references])).toEqual(
      before.images.map((image) => [image.digest, image.references]),
    );
    expect(after.blobs).toEqual(before.blobs);
    expect(after.warnings).toEqual([]);
  });

  it('names only the selected references, and writes no config of an image left out', async () => {
    const input = await packTar(dockerArchiveEntries([app, other]));
    const output = await written(input, { select: (report) => selectReferences(report, ['ghcr.io/owner/app:pr-1']) });
    const files = await unpackTar(output);
    expect(JSON.parse(files.get('manifest.json')!.toString())).toEqual([
      expect.objectContaining({ RepoTags: ['ghcr.io/owner/app:pr-1'], Config: `${hex(sha256(app.config))}.json` }),
    ]);
    expect(files.has(`${hex(sha256(other.config))}.json`)).toBe(false);
  });

  it('is read the same by GNU tar', async () => {
    const file = path.join(work, 'archive.tar');
    await writeFile(file, await written(await packTar(dockerArchiveEntries([app]))));
    const { stdout } = await run('tar', ['-tf', file]);
    expect(stdout.trim().split('\n')).toEqual(
      headersOf(await written(await packTar(dockerArchiveEntries([app])))).names,
    );
  });
});

describe('the canonical archive of an OCI layout', () => {
  it('writes index.json naming each reference, and the blobs of the image, its attestations included', async () => {
    const input = await packTar(ociLayoutEntries([app, arm], { gzip: true, nested: true, attestations: true }));
    const output = await written(input);
    const { names, plainUstar } = headersOf(output);
    expect(plainUstar).toBe(true);
    // A multi-platform image has no manifest.json entry unless the engine's platform is known.
    expect(names.slice(-2)).toEqual(['oci-layout', 'index.json']);
    const files = await unpackTar(output);
    const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: Array<Record<string, unknown>> };
    const report = await inspectBuffer(input);
    expect(index.manifests).toEqual(
      app.tags.map((tag) => ({
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: report.images[0]!.digest,
        size: report.images[0]!.size,
        annotations: {
          'io.containerd.image.name': tag,
          'org.opencontainers.image.ref.name': tag.split(':')[1],
        },
      })),
    );
    const after = await inspectBuffer(output);
    expect(after.format).toBe('oci-layout');
    expect(after.blobs.map((blob) => blob.digest).sort()).toEqual(report.blobs.map((blob) => blob.digest).sort());
    expect(after.images[0]!.attestations).toEqual(report.images[0]!.attestations);
  });

  it('adds a manifest.json for the engine platform, for engines without the containerd image store', async () => {
    const input = await packTar(ociLayoutEntries([app, arm], { gzip: true, nested: true, attestations: true }));
    const output = await written(input, { select: all, platform: 'linux/arm64', requireManifest: true });
    const files = await unpackTar(output);
    expect(JSON.parse(files.get('manifest.json')!.toString())).toEqual([
      expect.objectContaining({ Config: `blobs/sha256/${hex(sha256(arm.config))}`, RepoTags: app.tags }),
    ]);
    expect(headersOf(output).names.at(-1)).toBe('manifest.json');
    await expect(written(input, { select: all, platform: 'linux/s390x', requireManifest: true })).rejects.toThrow(
      /has no linux\/s390x platform \(it has: `linux\/amd64`, `linux\/arm64`\)/,
    );
  });

  it("names only a few of a tarball's platforms when none is the engine's", async () => {
    const others = Array.from({ length: 40 }, (_, n) => forPlatform(app, { os: 'linux', architecture: `arm${n}` }));
    const input = await packTar(ociLayoutEntries([app, ...others], { gzip: true, nested: true }));
    const error = await written(input, { select: all, platform: 'linux/s390x', requireManifest: true }).then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error?.message).toMatch(/has no linux\/s390x platform \(it has: `linux\/amd64`, `linux\/arm0`/);
    expect(error?.message).toContain('… and 31 more');
  });

  it('refuses platform names that are not names, before a line or an output could hold them', async () => {
    const hostile = forPlatform(app, {
      os: 'linux',
      architecture: `arm\n::error::injected ##[set-output name=digest;]x`,
    });
    const input = await packTar(ociLayoutEntries([app, hostile], { gzip: true, nested: true }));
    const error = await written(input, { select: all }).then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error?.message).toMatch(/gives the platform part `arm\\n::error::injected ##<U\+005B>set-output/);
    expect(error?.message).not.toMatch(/\n|##\[/);
  });

  it('keeps the blob digests, so image IDs do not change', async () => {
    const input = await packTar(ociLayoutEntries([app], { docker25: true }));
    const [before, after] = [await inspectBuffer(input), await inspectBuffer(await written(input))];
    expect(after.images.map((image) => [image.digest, image.platforms[0]!.configDigest])).toEqual(
      before.images.map((image) => [image.digest, image.platforms[0]!.configDigest]),
    );
    expect(after.format).toBe('docker-oci');
  });
});

describe('what the canonical archive refuses', () => {
  /** The archive as written so far must not let any reader name an image. */
  function namesNothing(output: Buffer): void {
    const text = output.toString('latin1');
    expect(text).not.toContain('manifest.json');
    expect(text).not.toContain('index.json');
  }

  it('a file no image refers to', async () => {
    const entries: RawEntry[] = [{ name: 'extra.bin', content: Buffer.alloc(2000, 7) }, ...dockerArchiveEntries([app])];
    const { outcome, output } = await canonical(await packTar(entries));
    expect(outcome.status).toBe('rejected');
    expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/1 file that no image refers to \(extra\.bin\)/);
    namesNothing(output);
  });

  it('a layer replaced after it was described: nothing nameable is written', async () => {
    const entries = dockerArchiveEntries([app]).map((entry) =>
      entry.name.endsWith('layer.tar') ? { ...entry, content: Buffer.alloc(2048, 1) } : entry,
    );
    const { outcome, output } = await canonical(await packTar(entries));
    expect(outcome.status).toBe('rejected');
    expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/hashes to .* but the image config expects/);
    namesNothing(output);
  });

  // index.json itself is refused earlier: with it the tarball must be a whole OCI layout.
  it.each(['oci-layout', 'repositories'])(
    'a layer named %s, which an engine would read as the layout',
    async (impostor) => {
      const image = await makeImage(['ghcr.io/owner/app:1'], { seed: 'impostor', layerCount: 1 });
      const index = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      // The config vouches for the "layer" by its hash, so every digest checks out; only its name is wrong.
      const config = JSON.parse(image.config.toString()) as { rootfs: { diff_ids: string[] } };
      config.rootfs.diff_ids = [sha256(index)];
      const configBytes = Buffer.from(JSON.stringify(config));
      const entries: RawEntry[] = [
        { name: impostor, content: index },
        { name: `${hex(sha256(configBytes))}.json`, content: configBytes },
        {
          name: 'manifest.json',
          content: JSON.stringify([
            { Config: `${hex(sha256(configBytes))}.json`, RepoTags: image.tags, Layers: [impostor] },
          ]),
        },
      ];
      const { outcome, output } = await canonical(await packTar(entries));
      expect(String((outcome as PromiseRejectedResult).reason)).toContain(`names "${impostor}" as one of its files`);
      namesNothing(output);
    },
  );

  it('a file under a name no image tarball uses', async () => {
    const entries: RawEntry[] = dockerArchiveEntries([app]).map((entry) =>
      entry.name.endsWith('layer.tar') ? { ...entry, name: entry.name.replace('layer.tar', 'lay er.tar') } : entry,
    );
    const { outcome } = await canonical(await packTar(entries));
    expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/not a name an image tarball uses/);
  });

  it('an input cut short: no end marker, no index', async () => {
    const input = await packTar(ociLayoutEntries([app], { gzip: true }));
    const { outcome, output } = await canonical(input.subarray(0, input.length - 3000));
    expect(outcome.status).toBe('rejected');
    namesNothing(output);
    expect(output.subarray(-1024).equals(Buffer.alloc(1024))).toBe(false);
  });
});
