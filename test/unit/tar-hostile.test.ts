/**
 * Tarballs built to get something past the verifier. Each must be refused with a message that says what is
 * wrong, and nothing of them may be trusted: the error must come before a report exists.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { BLOCK } from '../../src/archive/tar.ts';
import { tarEntry, tarHeader } from '../../src/archive/tar-write.ts';
import { pax } from '../support/raw-tar.ts';
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

const image = await makeImage(['app:1'], { seed: 'hostile' });
const layer = image.layers[0]!;
const layerBlob = `blobs/sha256/${hex(sha256(layer))}`;
const END = Buffer.alloc(2 * BLOCK);

/** A header of any type, checksummed, for the shapes tar-stream refuses to write. */
function header(name: string, size: number, type: string): Buffer {
  const block = tarHeader(name, size);
  block.write(type, 156, 'latin1');
  block.write('        ', 148, 'latin1');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return block;
}

function padded(content: Buffer): Buffer {
  return Buffer.concat([content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK)]);
}

function oci(): RawEntry[] {
  return ociLayoutEntries([image]);
}

function replace(entries: RawEntry[], name: string, content: Buffer | string | undefined): RawEntry[] {
  return entries.flatMap((entry) =>
    entry.name !== name ? [entry] : content === undefined ? [] : [{ ...entry, content }],
  );
}

function editIndex(entries: RawEntry[], edit: (descriptor: Record<string, unknown>) => void): RawEntry[] {
  const index = JSON.parse(String(entries.find((entry) => entry.name === 'index.json')!.content)) as {
    manifests: Array<Record<string, unknown>>;
  };
  edit(index.manifests[0]!);
  return replace(entries, 'index.json', JSON.stringify(index));
}

/** An index blob that lists itself: impossible to hash honestly, so it is given a made-up name. */
function cyclicIndex(): RawEntry[] {
  const digest = `sha256:${'c'.repeat(64)}`;
  const mediaType = 'application/vnd.oci.image.index.v1+json';
  let size = 0;
  let content = '';
  for (let i = 0; i < 3; i++) {
    content = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType, digest, size }] });
    size = content.length;
  }
  return [
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    { name: `blobs/sha256/${'c'.repeat(64)}`, content },
    { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType, digest, size }] }) },
  ];
}

function legacyWithTags(tags: string[]): RawEntry[] {
  return dockerArchiveEntries([{ ...image, tags }]);
}

interface Case {
  name: string;
  tar: () => Promise<Buffer> | Buffer;
  error: RegExp;
}

const cases: Case[] = [
  {
    name: 'a ".." component',
    tar: () => packTar([{ name: 'blobs/../../etc/passwd', content: 'x' }]),
    error: /`blobs\/\.\.\/\.\.\/etc\/passwd` has a "\.\." component/,
  },
  {
    name: 'an absolute path',
    tar: () => packTar([{ name: '/etc/cron.d/evil', content: 'x' }]),
    error: /`\/etc\/cron\.d\/evil` has an absolute path/,
  },
  {
    name: 'a symlink out of the archive',
    tar: () => packTar([{ name: 'manifest.json', type: 'symlink', linkname: '/etc/passwd' }]),
    error: /symbolic link `manifest\.json` -> `\/etc\/passwd`/,
  },
  {
    name: 'a layer.tar symlink climbing out',
    tar: () => packTar([{ name: `${'a'.repeat(64)}/layer.tar`, type: 'symlink', linkname: '../../../etc/shadow' }]),
    error: /symbolic link `a{64}\/layer\.tar` -> `\.\.\/\.\.\/\.\.\/etc\/shadow`/,
  },
  {
    name: 'a layer.tar symlink to a file that is not there',
    tar: async () =>
      packTar([
        ...replace(legacyWithTags(['app:1']), `${hex(sha256(`v1 ${sha256(layer)}`))}/layer.tar`, undefined),
        {
          name: `${hex(sha256(`v1 ${sha256(layer)}`))}/layer.tar`,
          type: 'symlink',
          linkname: `../${'e'.repeat(64)}/layer.tar`,
        },
      ]),
    error: /link `[0-9a-f]{64}\/layer\.tar` points at `e{64}\/layer\.tar`, which is not a file in the tarball/,
  },
  {
    name: 'a hard link',
    tar: () => packTar([{ name: 'index.json', type: 'link', linkname: 'blobs/sha256/x' }]),
    error: /hard link `index\.json` -> `blobs\/sha256\/x`/,
  },
  {
    name: 'a character device',
    tar: () => packTar([{ name: 'dev/null', type: 'character-device' }]),
    error: /holds a character device `dev\/null`/,
  },
  {
    name: 'a block device',
    tar: () => packTar([{ name: 'dev/sda', type: 'block-device' }]),
    error: /holds a block device `dev\/sda`/,
  },
  { name: 'a FIFO', tar: () => packTar([{ name: 'pipe', type: 'fifo' }]), error: /holds a fifo `pipe`/ },
  {
    name: 'a second manifest.json shadowing the first',
    tar: () => packTar([...legacyWithTags(['app:1']), { name: './manifest.json', content: '[]' }]),
    error: /two entries named `manifest\.json` .* could replace one already verified/,
  },
  {
    name: 'a blob given twice, the second one different',
    tar: () => packTar([...oci(), { name: layerBlob, content: randomBytes(layer.length) }]),
    error: /two entries named `blobs\/sha256\/[0-9a-f]{64}`/,
  },
  {
    name: 'a 2 MiB PAX header',
    tar: () => Buffer.concat([header('PaxHeader', 2 * 1024 * 1024, 'x'), Buffer.alloc(4 * BLOCK)]),
    error: /PAX header at byte 0 is 2097152 bytes; at most 65536/,
  },
  {
    name: 'a 2 MiB GNU long name',
    tar: () => Buffer.concat([header('././@LongLink', 2 * 1024 * 1024, 'L'), Buffer.alloc(4 * BLOCK)]),
    error: /GNU long-name header at byte 0 is 2097152 bytes/,
  },
  {
    name: 'an entry name of 5000 bytes',
    tar: () => Buffer.concat([pax([['path', `${'a/'.repeat(2499)}aa`]]), tarEntry('x', Buffer.from('x')), END]),
    error: /has a name of 5000 bytes; at most 4096/,
  },
  {
    name: 'a malformed PAX record',
    tar: () => {
      const pax = Buffer.from('99 path=x\n');
      return Buffer.concat([header('PaxHeader', pax.length, 'x'), padded(pax), tarEntry('a', Buffer.from('a')), END]);
    },
    error: /PAX header at byte 0 has a malformed record/,
  },
  {
    name: 'a 100 MB manifest.json',
    tar: () => Buffer.concat([tarHeader('manifest.json', 100 * 1024 * 1024), Buffer.alloc(BLOCK * 8)]),
    error: /manifest\.json is 100\.0 MiB; JSON documents over 8 MiB are refused/,
  },
  {
    name: 'a JSON nesting bomb',
    tar: () => packTar([{ name: 'manifest.json', content: '['.repeat(100_000) + ']'.repeat(100_000) }]),
    error: /manifest\.json nests more than 64 levels deep/,
  },
  {
    name: 'a manifest.json that is not JSON',
    tar: () => packTar([{ name: 'manifest.json', content: '[{"Config": ' }]),
    error: /manifest\.json is not valid JSON/,
  },
  {
    name: 'a digest that is not sha256 and 64 hex digits',
    tar: async () => packTar(editIndex(oci(), (d) => (d['digest'] = 'sha256:ABC'))),
    error: /index\.json manifest 1 has digest `sha256:ABC`; expected "sha256:" and 64 lowercase hex digits/,
  },
  {
    name: 'a sha512 digest',
    tar: async () => packTar(editIndex(oci(), (d) => (d['digest'] = `sha512:${'a'.repeat(128)}`))),
    error: /has digest `sha512:a+… \(135 characters\)`; expected "sha256:"/,
  },
  {
    name: 'a missing layer blob',
    tar: () => packTar(replace(oci(), layerBlob, undefined)),
    error: /layer 1 of manifest sha256:[0-9a-f]{64} refers to blob sha256:[0-9a-f]{64}, which is not in the tarball/,
  },
  {
    name: 'a descriptor with the wrong size',
    tar: async () => packTar(editIndex(oci(), (d) => (d['size'] = (d['size'] as number) + 1))),
    error: /Blob sha256:[0-9a-f]{64} \(index\.json manifest 1\) is \d+ bytes, but its descriptor says \d+/,
  },
  {
    name: 'a zero-byte blob claiming content (a lazily filled cache)',
    tar: () => packTar(replace(oci(), layerBlob, Buffer.alloc(0))),
    error: /is empty \(0 bytes\) but should be \d+ bytes: a blob that was never filled in/,
  },
  {
    name: 'a layer blob whose content was swapped',
    tar: () => packTar(replace(oci(), layerBlob, randomBytes(layer.length))),
    error:
      /Blob sha256:[0-9a-f]{64} \(layer 1 of manifest .*\) hashes to sha256:[0-9a-f]{64}: it is corrupt or was replaced/,
  },
  {
    name: 'a legacy layer.tar that does not match its diff_id',
    tar: () =>
      packTar(replace(legacyWithTags(['app:1']), `${hex(sha256(`v1 ${sha256(layer)}`))}/layer.tar`, randomBytes(100))),
    error: /Layer `[0-9a-f]{64}\/layer\.tar` hashes to sha256:[0-9a-f]{64}, but the image config expects diff_id/,
  },
  {
    name: 'a legacy layer.tar left empty',
    tar: () =>
      packTar(replace(legacyWithTags(['app:1']), `${hex(sha256(`v1 ${sha256(layer)}`))}/layer.tar`, Buffer.alloc(0))),
    error: /Layer `[0-9a-f]{64}\/layer\.tar` is empty \(0 bytes\) but the image config expects diff_id/,
  },
  {
    name: 'a legacy config that does not hash to its name',
    tar: () => {
      const name = `${hex(sha256(image.config))}.json`;
      return packTar(replace(legacyWithTags(['app:1']), name, image.config.toString().replace('PATH', 'HOME')));
    },
    error: /[0-9a-f]{64}\.json hashes to sha256:[0-9a-f]{64}, not to the digest in its name/,
  },
  {
    name: 'a config with fewer diff_ids than layers',
    tar: () => {
      const config = makeConfig([layer]);
      return packTar(dockerArchiveEntries([{ ...image, config }]));
    },
    error: /manifest\.json entry 1 lists 2 layers but its config `[0-9a-f]{64}\.json` has 1 diff_ids/,
  },
  {
    name: 'a diff_id written as workflow commands',
    tar: () => {
      const config = JSON.parse(image.config.toString()) as { rootfs: { diff_ids: string[] } };
      config.rootfs.diff_ids[0] = '##[set-output name=digest;]x\n::error::owned';
      return packTar(ociLayoutEntries([{ ...image, config: Buffer.from(JSON.stringify(config)) }]));
    },
    error: /lists diff_id `##<U\+005B>set-output name=digest;\]x\\n::error::owned`; expected "sha256:"/,
  },
  {
    name: 'an invalid tag in RepoTags',
    tar: () => packTar(legacyWithTags(['Owner/App:1'])),
    error:
      /manifest\.json entry 1 records `Owner\/App:1`, which is not a valid image reference: repository name must be lowercase/,
  },
  {
    name: 'a tag that reads as a command option',
    tar: () => packTar(legacyWithTags(['--privileged'])),
    error: /records `--privileged`, which is not a valid image reference: a reference cannot start with "-"/,
  },
  {
    name: 'an invalid io.containerd.image.name',
    tar: () => packTar(ociLayoutEntries([image], { names: () => ({ 'io.containerd.image.name': 'app:bad tag' }) })),
    error:
      /names the image `app:bad tag` \(io\.containerd\.image\.name\), which is not a valid reference: a reference cannot contain white space/,
  },
  {
    name: 'an index that contains itself',
    tar: () => packTar(cyclicIndex()),
    error: /refers back to index sha256:c{64}, which contains it: the indexes form a cycle/,
  },
  {
    name: 'index.json without oci-layout',
    tar: () => packTar(replace(oci(), 'oci-layout', undefined)),
    error: /has index\.json but no oci-layout file/,
  },
  {
    name: 'a cut tarball',
    tar: async () => (await packTar(oci())).subarray(0, 2000),
    error: /ends after 2000 bytes without the end-of-archive marker: it was cut short/,
  },
  {
    name: 'a header with a bad checksum',
    tar: async () => {
      const tar = await packTar(oci());
      tar[10] = tar[10]! ^ 0x20;
      return tar;
    },
    error: /tar header at byte 0 fails its checksum/,
  },
  { name: 'random bytes', tar: () => randomBytes(64 * 1024), error: /fails its checksum: this is not a tar archive/ },
  {
    name: 'a tarball still gzip-compressed',
    tar: async () => gzipSync(await packTar(oci())),
    error: /fails its checksum: .*still compressed/,
  },
  { name: 'no bytes at all', tar: () => Buffer.alloc(0), error: /The tarball is empty \(0 bytes\)/ },
  {
    name: 'a tar that holds no image',
    tar: () => packTar([{ name: 'README', content: 'hi' }]),
    error: /not an image tarball: .*found `README`/,
  },
  {
    name: 'a GNU sparse file',
    tar: () => Buffer.concat([header('sparse', 0, 'S'), END]),
    error: /is a GNU sparse file; image tarballs never hold one/,
  },
  {
    name: 'data after a lone zero block',
    tar: () =>
      Buffer.concat([tarEntry('a', Buffer.from('a')), Buffer.alloc(BLOCK), tarEntry('b', Buffer.from('b')), END]),
    error: /lone zero block at byte 1024 followed by more data/,
  },
];

describe('hostile tarballs', () => {
  it('has at least 25 cases', () => expect(cases.length).toBeGreaterThanOrEqual(25));

  it.each(cases)('refuses $name', async ({ tar, error }) => {
    const data = await tar();
    const outcome = await inspectBuffer(data, 1000).then(
      (report) => ({ report }),
      (thrown: unknown) => ({ thrown }),
    );
    expect('thrown' in outcome, 'the tarball was accepted').toBe(true);
    const thrown = (outcome as { thrown: unknown }).thrown;
    expect(thrown).toBeInstanceOf(UserError);
    expect((thrown as Error).message).toMatch(error);
    expect((thrown as Error).message).not.toContain('\n');
  });
});

describe('work and messages grow at most linearly with the tarball', () => {
  /** index.json naming one index on top of `levels`, each level an index listing every blob of the level below. */
  function indexTree(levels: number[], variants = 1): RawEntry[] {
    const entries = oci();
    const indexJson = JSON.parse(String(entries.find((entry) => entry.name === 'index.json')!.content)) as {
      manifests: Array<Record<string, unknown>>;
    };
    const manifest = indexJson.manifests[0]!;
    const blobs: RawEntry[] = [];
    let below: Array<Record<string, unknown>> = [{ ...manifest, annotations: undefined }];
    for (const [level, width] of levels.entries()) {
      const made: Array<Record<string, unknown>> = [];
      // Each index of a level differs by an annotation, so the same children are listed by distinct blobs.
      for (let variant = 0; variant < (level === levels.length - 1 ? 1 : variants); variant++) {
        const content = JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          annotations: { variant: String(variant) },
          manifests: Array.from({ length: width }, (_, i) => below[i % below.length]),
        });
        const digest = sha256(content);
        blobs.push({ name: `blobs/sha256/${hex(digest)}`, content });
        made.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: Buffer.byteLength(content) });
      }
      below = made;
    }
    const top = { ...below[0], annotations: manifest['annotations'] };
    return [...replace(entries, 'index.json', JSON.stringify({ schemaVersion: 2, manifests: [top] })), ...blobs];
  }

  it('an index that lists the same child twice is refused: containerd walks it once for each listing', async () => {
    const tar = await packTar(indexTree([2]));
    await expect(inspectBuffer(tar, 1 << 20)).rejects.toThrow(
      /Index sha256:[0-9a-f]{64} lists sha256:[0-9a-f]{64} twice \(manifests 1 and 2\)/,
    );
  });

  it('a thousand listings of one child on each of three levels is refused at once, not walked', async () => {
    const tar = await packTar(indexTree([1000, 1000, 1000]));
    const started = Date.now();
    await expect(inspectBuffer(tar, 1 << 20)).rejects.toThrow(/lists sha256:[0-9a-f]{64} twice/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('distinct indexes that share their children are counted along every path, as the engine walks them', async () => {
    // 30 indexes, each listing the same 30 (distinct) indexes, each of those the one manifest: no index lists a blob
    // twice, yet the engine would visit the manifest, its config and its layers 900 times.
    const entries = oci();
    const indexJson = JSON.parse(String(entries.find((entry) => entry.name === 'index.json')!.content)) as {
      manifests: Array<Record<string, unknown>>;
    };
    const manifest = { ...indexJson.manifests[0]!, annotations: undefined };
    const level1 = Array.from({ length: 30 }, (_, variant) =>
      JSON.stringify({ schemaVersion: 2, annotations: { variant: String(variant) }, manifests: [manifest] }),
    );
    const descriptor = (content: string) => ({
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: sha256(content),
      size: Buffer.byteLength(content),
    });
    const level2 = Array.from({ length: 30 }, (_, variant) =>
      JSON.stringify({ schemaVersion: 2, annotations: { top: String(variant) }, manifests: level1.map(descriptor) }),
    );
    const top = JSON.stringify({ schemaVersion: 2, manifests: level2.map(descriptor) });
    const blobs = [...level1, ...level2, top].map((content) => ({
      name: `blobs/sha256/${hex(sha256(content))}`,
      content,
    }));
    const index = {
      schemaVersion: 2,
      manifests: [{ ...descriptor(top), annotations: indexJson.manifests[0]!['annotations'] }],
    };
    const tar = await packTar([...replace(entries, 'index.json', JSON.stringify(index)), ...blobs]);
    await expect(inspectBuffer(tar, 1 << 20)).rejects.toThrow(
      /leads to more than 2000 descriptors counted along every path/,
    );
  });

  it('an image shared by a few distinct indexes, as real multi-platform images are, is accepted', async () => {
    const tar = await packTar(indexTree([1, 1, 1], 3));
    const report = await inspectBuffer(tar, 1 << 20);
    expect(report.images).toHaveLength(1);
    expect(report.references).toEqual(['app:1']);
  });

  it('thousands of descriptors are capped', async () => {
    const entries = oci();
    // Platform manifests left out of the tarball are a gap the walk passes over, so only the cap stops it: each index
    // is under the per-image bound, all of them together over the bound on descriptors read.
    const lists = Array.from({ length: 60 }, (_, which) => {
      const content = JSON.stringify({
        schemaVersion: 2,
        manifests: Array.from({ length: 1_800 }, (_, i) => ({
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha256(`${which} ${i}`).slice(7)}`,
          size: 1,
        })),
      });
      return { name: `blobs/sha256/${hex(sha256(content))}`, content, digest: sha256(content) };
    });
    const index = {
      schemaVersion: 2,
      manifests: lists.map((list) => ({
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: list.digest,
        size: Buffer.byteLength(list.content),
      })),
    };
    const tar = await packTar([
      ...replace(entries, 'index.json', JSON.stringify(index)),
      ...lists.map(({ name, content }) => ({ name, content })),
    ]);
    await expect(inspectBuffer(tar, 1 << 20)).rejects.toThrow(/list more than 100000 descriptors/);
  });

  it('5,000 identical layers make a few short warnings, not one of millions of characters', async () => {
    const count = 5000;
    const config = makeConfig(Array.from({ length: count }, () => layer));
    const configName = `${hex(sha256(config))}.json`;
    const names = Array.from({ length: count }, (_, i) => `layers/${i}.tar`);
    const tar = await packTar([
      ...names.map((name) => ({ name, content: layer })),
      { name: configName, content: config },
      { name: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: ['app:1'], Layers: names }]) },
    ]);
    const report = await inspectBuffer(tar, 1 << 20);
    expect(report.warnings.length).toBeLessThanOrEqual(21);
    expect(report.warnings.join('\n').length).toBeLessThan(2000);
    expect(report.warnings.join('\n')).toMatch(
      /`layers\/0\.tar`, `layers\/1\.tar`, `layers\/2\.tar` … and 4997 more have the same content/,
    );
  });
});
