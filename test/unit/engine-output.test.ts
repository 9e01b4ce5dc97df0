import { describe, expect, it } from 'vitest';
import { ContainerEngine } from '../../src/engine/engine.ts';
import { isContainerdStore, parseImageList, parseInspectJson, parseLoadOutput } from '../../src/engine/output.ts';

describe('parseLoadOutput', () => {
  it.each([
    ['Loaded image: ghcr.io/o/app:pr-2\n', ['ghcr.io/o/app:pr-2'], []],
    ['Loaded image: a:1\nLoaded image: b:2\n', ['a:1', 'b:2'], []],
    [`Loaded image ID: sha256:${'a'.repeat(64)}\n`, [], [`sha256:${'a'.repeat(64)}`]],
    [
      'Getting image source signatures\nLoaded image(s): localhost/a:1,localhost/b:2\n',
      ['localhost/a:1', 'localhost/b:2'],
      [],
    ],
    ['Loaded image: x:1\r\nnoise\n\n', ['x:1'], []],
    ['', [], []],
  ])('%j', (text, references, ids) => {
    expect(parseLoadOutput(text)).toEqual({ references, ids, errors: [] });
  });

  it('reads the failures Docker prints on stdout while it exits 0 (the containerd image store)', () => {
    // As Docker 28 on the containerd image store prints a layer it cannot unpack (seen with Docker 28.5).
    const text =
      'Loaded image: x:1\n' +
      'Error unpacking image x:1: apply layer error for "docker.io/library/x:1": wrong diff id calculated on extraction "sha256:abc"\n' +
      'Loaded image: y:2\n';
    expect(parseLoadOutput(text)).toEqual({
      references: ['x:1', 'y:2'],
      ids: [],
      errors: [
        'Error unpacking image x:1: apply layer error for "docker.io/library/x:1": wrong diff id calculated on extraction "sha256:abc"',
      ],
    });
  });
});

describe('parseInspectJson', () => {
  it('reads id, tags, platform and size', () => {
    const json = JSON.stringify([
      {
        Id: 'sha256:1',
        RepoTags: ['a:1', 'a:2'],
        Created: '2026-01-01',
        Size: 3,
        Os: 'linux',
        Architecture: 'arm64',
        Variant: 'v8',
        RootFS: { Type: 'layers', Layers: ['sha256:a', 'sha256:b'] },
        Descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: 'sha256:1', size: 855 },
      },
      { Id: 'sha256:2', RepoTags: null, Os: 'linux', Architecture: 'amd64' },
    ]);
    expect(parseInspectJson(json)).toEqual([
      {
        id: 'sha256:1',
        repoTags: ['a:1', 'a:2'],
        created: '2026-01-01',
        size: 3,
        platform: 'linux/arm64/v8',
        layers: ['sha256:a', 'sha256:b'],
        targetType: 'application/vnd.oci.image.index.v1+json',
      },
      {
        id: 'sha256:2',
        repoTags: [],
        created: '',
        size: 0,
        platform: 'linux/amd64',
        layers: [],
        targetType: undefined,
      },
    ]);
  });
  it("shows a platform part that is not a plain name escaped: it is the image config's, and a load puts it there", () => {
    const json = JSON.stringify([
      { Id: 'sha256:1', Os: 'linux', Architecture: 'amd64\n::error::injected', Variant: '##[add-mask]v8' },
      { Id: 'sha256:2', Os: 'linux', Architecture: 7 },
    ]);
    const [hostile, odd] = parseInspectJson(json);
    expect(hostile!.platform).toBe('linux/`amd64\\n::error::injected`/`##<U+005B>add-mask]v8`');
    expect(odd!.platform).toBe('linux');
  });
  it("gives podman's bare hex IDs the sha256: prefix docker uses, and leaves others alone", () => {
    const json = JSON.stringify([
      { Id: 'ac1d3fa7f3a4039a8ac06d30d316f5b6aa7ffd2ac36cf875c8eca2e82fb61da3', RepoTags: ['localhost/app:1'] },
      { Id: 'abc' },
    ]);
    expect(parseInspectJson(json).map((image) => image.id)).toEqual([
      'sha256:ac1d3fa7f3a4039a8ac06d30d316f5b6aa7ffd2ac36cf875c8eca2e82fb61da3',
      'abc',
    ]);
  });
  it.each(['', '[]', 'garbage', '{}'])('yields nothing for %j', (text) => {
    expect(parseInspectJson(text)).toEqual([]);
  });
});

describe('parseImageList', () => {
  it('reads docker image ls json lines and skips junk', () => {
    const text = [
      JSON.stringify({
        Repository: 'ghcr.io/o/app',
        Tag: 'pr-2',
        ID: '680e6269d7f1',
        CreatedAt: '2026-11-23 09:36:42 +0000 UTC',
        Size: '3B',
      }),
      'not json',
      JSON.stringify({ Repository: '<none>', Tag: '<none>', ID: 'abc', CreatedSince: '2 days ago', Size: '1MB' }),
      '',
    ].join('\n');
    expect(parseImageList(text)).toEqual([
      { reference: 'ghcr.io/o/app:pr-2', id: '680e6269d7f1', created: '2026-11-23 09:36:42 +0000 UTC', size: '3B' },
      { reference: '<none>:<none>', id: 'abc', created: '2 days ago', size: '1MB' },
    ]);
  });

  it('reads the JSON array podman prints, a row per name', () => {
    const text = JSON.stringify(
      [
        {
          Id: 'ac1d3fa7f3a4039a8ac06d30d316f5b6aa7ffd2ac36cf875c8eca2e82fb61da3',
          Names: ['localhost:5000/pm/app:1', 'localhost:5000/pm/app:latest'],
          Size: 11331,
          CreatedAt: '2026-11-23T11:31:52Z',
        },
        { Id: 'ffff', Names: null, Size: 2500000000, CreatedAt: '2026-11-22T10:00:00Z' },
      ],
      null,
      4,
    );
    expect(parseImageList(text)).toEqual([
      { reference: 'localhost:5000/pm/app:1', id: 'ac1d3fa7f3a4', created: '2026-11-23T11:31:52Z', size: '11.3kB' },
      {
        reference: 'localhost:5000/pm/app:latest',
        id: 'ac1d3fa7f3a4',
        created: '2026-11-23T11:31:52Z',
        size: '11.3kB',
      },
      { reference: '<none>:<none>', id: 'ffff', created: '2026-11-22T10:00:00Z', size: '2.50GB' },
    ]);
  });
  it.each(['[', '{"not": "an array"}', '[1, null]'])('yields nothing useful for %j', (text) => {
    expect(parseImageList(text).filter((row) => row.reference !== '<none>:<none>')).toEqual([]);
  });
});

describe('isContainerdStore', () => {
  it.each([
    ['[["driver-type","io.containerd.snapshotter.v1"]]', true],
    ['[["Backing Filesystem","extfs"],["Supports d_type","true"],["Using metacopy","false"]]', false],
    ['[["Root Dir","/var/lib/docker/vfs"]]', false],
    ['null', false],
    ['', false],
    ['not json', false],
    ['[["driver-type"]]', false],
  ])('%s → %s', (status, expected) => {
    expect(isContainerdStore(status)).toBe(expected);
  });
});

describe('ContainerEngine.apiAtLeast', () => {
  it.each([
    ['1.41', 1, 44, false],
    ['1.44', 1, 44, true],
    ['1.48', 1, 44, true],
    ['1.47', 1, 48, false],
    ['1.51', 1, 48, true],
    ['2.0', 1, 48, true],
    ['4.3.1', 1, 44, true],
    ['0.9', 1, 0, false],
    ['', 1, 44, false],
  ])('%j ≥ %i.%i: %s', (api, major, minor, expected) => {
    expect(ContainerEngine.apiAtLeast(api, major, minor)).toBe(expected);
  });
});
