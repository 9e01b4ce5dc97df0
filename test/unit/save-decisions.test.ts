/**
 * The decisions of save mode, without an engine: which tags are invalid and the line that says so, the report of a
 * missing tag (save/tag-reports.ts), and what a save produced: each tag's image, a tag that moved meanwhile, tags the
 * engine dropped, a `source` tarball's images (save/saved.ts).
 */
import { describe, expect, it } from 'vitest';
import type { ImageRow } from '../../src/engine/output.ts';
import { UserError } from '../../src/errors.ts';
import { LISTING_LIMIT } from '../../src/listing.ts';
import { distinct, requireReferences, savedImages, sourceImages } from '../../src/save/saved.ts';
import {
  imagesTable,
  invalidTags,
  missingReport,
  referencesTable,
  taggedReferences,
} from '../../src/save/tag-reports.ts';
import { digest, modelImage, modelReport, imageInfo } from '../support/model.ts';

const engine = { where: 'the docker engine', references: ['ghcr.io/owner/app:1', 'ghcr.io/owner/app:2', 'other:1'] };

describe('invalidTags: the one line, and the details, for invalid references', () => {
  it.each([
    ['valid tags: no error', ['ghcr.io/owner/app:1', 'app:latest'], 'DOCKER_METADATA_OUTPUT_JSON', undefined, []],
    [
      "an upper-case repository, with the engine's lowercase twin suggested",
      ['ghcr.io/Owner/app:1', 'ghcr.io/owner/app:2'],
      'DOCKER_METADATA_OUTPUT_JSON',
      /^1 of 2 image references from DOCKER_METADATA_OUTPUT_JSON is invalid: `ghcr\.io\/Owner\/app:1`: repository name must be lowercase: `Owner`; `ghcr\.io\/Owner\/app:1` → did you mean `ghcr\.io\/owner\/app:1`\? \(differs only in letter case\)\. These came from docker\/metadata-action/,
      ['invalid: `ghcr.io/Owner/app:1`: repository name must be lowercase: `Owner`', 'the docker engine has:'],
    ],
    [
      'references run together with white space: no suggestion, the separator advice',
      ['ghcr.io/owner/app:1 ghcr.io/owner/app:2'],
      'DOCKER_METADATA_OUTPUT_TAGS',
      /^1 of 1 image reference from DOCKER_METADATA_OUTPUT_TAGS is invalid: .*holds 2 references separated by white space, not one\. Separate tags with newlines or commas/,
      ['invalid: `ghcr.io/owner/app:1 ghcr.io/owner/app:2`: holds 2 references separated by white space, not one'],
    ],
    [
      'hand-built tags in `tags`: the advice to use metadata-action',
      ['App:1'],
      'the `tags` input',
      /Use docker\/metadata-action's tags \(it lowercases image names\)/,
      [],
    ],
    [
      'bare versions from a metadata-action without `images`',
      ['1.2.3', 'latest'],
      'DOCKER_METADATA_OUTPUT_TAGS',
      /^2 of 2 image references from DOCKER_METADATA_OUTPUT_TAGS are invalid: .* docker\/metadata-action made tags with no repository, as it does when its `images` input is empty/,
      [],
    ],
  ])('%s', (_name, tags, source, message, details) => {
    const error = invalidTags(tags, source, engine);
    if (message === undefined) {
      expect(error).toBeUndefined();
      return;
    }
    expect(error).toBeInstanceOf(UserError);
    expect(error!.message).toMatch(message);
    expect(error!.message).not.toContain('\n');
    for (const line of details) expect(error!.details).toContain(line);
  });

  it('names every invalid tag of many in the line, each explained in the details', () => {
    const error = invalidTags(['A:1', 'B:1', 'c:1'], 'the `tags` input', {
      where: 'the docker engine',
      references: [],
    });
    expect(error!.message).toMatch(
      /^2 of 3 image references from the `tags` input are invalid: `A:1`, `B:1` \(each explained above\)\./,
    );
    expect(error!.details.filter((line) => line.startsWith('invalid: '))).toHaveLength(2);
    expect(error!.details).not.toContain('the docker engine has:');
  });

  it("lists at most LISTING_LIMIT of the engine's references, the related ones first, then how many more", () => {
    const many = [...Array.from({ length: 60 }, (_, i) => `noise${i}:1`), 'ghcr.io/owner/app:1'];
    const error = invalidTags(['ghcr.io/Owner/app:1'], 'the `tags` input', {
      where: 'the docker engine',
      references: many,
    });
    const listed = error!.details.filter((line) => line.startsWith('  '));
    expect(listed[0]).toBe('  ghcr.io/owner/app:1');
    expect(listed).toHaveLength(LISTING_LIMIT + 1);
    expect(listed.at(-1)).toBe(`  … and ${many.length - LISTING_LIMIT} more`);
  });
});

describe('missingReport: what there is, and what was probably meant', () => {
  it.each([
    [
      'a tag of the same repository',
      ['ghcr.io/owner/app:3'],
      engine,
      ' (did you mean `ghcr.io/owner/app:1`?)',
      ['Missing from the docker engine:', '  ghcr.io/owner/app:3', 'the docker engine has:'],
    ],
    [
      'nothing alike, and an engine without tags',
      ['zzz:3'],
      { where: 'the docker engine', references: [] },
      '',
      ['the docker engine has no tagged images at all.', 'nothing in the docker engine resembles `zzz:3`'],
    ],
  ])('%s', (_name, missing, available, hint, lines) => {
    const report = missingReport(missing, { ...available, table: available.references.map((one) => `  ${one}`) });
    expect(report.hint).toBe(hint);
    for (const line of lines) expect(report.details).toContain(line);
  });
});

describe("the engine's images as listings", () => {
  const rows: ImageRow[] = [
    { reference: 'other:1', id: 'abc', created: '1 day ago', size: '10MB' },
    { reference: '<none>:<none>', id: 'def', created: '3 days ago', size: '5MB' },
    { reference: 'app:1', id: 'abcdef', created: '2 days ago', size: '1kB' },
  ];
  it('taggedReferences leaves out untagged images', () => {
    expect(taggedReferences(rows)).toEqual(['other:1', 'app:1']);
  });
  it('imagesTable aligns the columns, the repositories wanted first', () => {
    expect(imagesTable(rows, ['app:9'])).toEqual([
      '  REPOSITORY:TAG  IMAGE ID  CREATED     SIZE',
      '  app:1           abcdef    2 days ago  1kB',
      '  other:1         abc       1 day ago   10MB',
      '  <none>:<none>   def       3 days ago  5MB',
    ]);
  });
  it("referencesTable caps a tarball's references", () => {
    const references = Array.from({ length: 55 }, (_, i) => `r:${i}`);
    const table = referencesTable(references, []);
    expect(table).toHaveLength(LISTING_LIMIT + 1);
    expect(table.at(-1)).toBe(`  … and ${55 - LISTING_LIMIT} more`);
  });
});

describe('savedImages: each tag as the tarball holds it, or the tag that moved meanwhile', () => {
  const index = modelImage(['app:1', 'docker.io/library/app:2'], { index: true });
  const selections = [{ image: index, references: index.references }];
  const info = imageInfo;
  it.each([
    [
      'containerd: the index digest',
      'docker-containerd',
      new Map([
        ['app:1', info(digest('9'))],
        ['app:2', info(digest('9'))],
      ]),
      undefined,
      digest('9'),
    ],
    [
      'graph driver: the config digest',
      'docker-graphdriver',
      new Map([
        ['app:1', info(digest('c'))],
        ['app:2', info(digest('c'))],
      ]),
      undefined,
      digest('c'),
    ],
    [
      'one platform, the engine asked again',
      'docker-containerd',
      new Map([
        ['app:1', info(digest('9'))],
        ['app:2', info(digest('9'))],
      ]),
      new Map([
        ['app:1', info(digest('9'))],
        ['app:2', info(digest('9'))],
      ]),
      digest('9'),
    ],
  ] as const)('%s', (_name, kind, before, after, id) => {
    const images = savedImages(selections, ['app:1', 'app:2'], { before, after }, kind);
    expect(images.map((one) => [one.reference, one.imageId])).toEqual([
      ['app:1', id],
      ['app:2', id],
    ]);
  });

  it.each([
    [
      "a tag that named another image than the tarball's",
      new Map([
        ['app:1', info(digest('7'))],
        ['app:2', info(digest('9'))],
      ]),
      undefined,
      /^1 tag named another image when saved than when checked \(`app:1` was sha256:7{64}, saved sha256:9{64}\): another step retagged them/,
    ],
    [
      'a tag the engine moved between the check and the second look',
      new Map([
        ['app:1', info(digest('9'))],
        ['app:2', info(digest('9'))],
      ]),
      new Map([
        ['app:1', info(digest('7'))],
        ['app:2', info(digest('7'))],
      ]),
      /^2 tags named another image/,
    ],
  ])('%s is refused', (_name, before, after, message) => {
    expect(() => savedImages(selections, ['app:1', 'app:2'], { before, after }, 'docker-containerd')).toThrow(message);
  });
});

describe('requireReferences: the tarball names every tag saved', () => {
  const report = modelReport([modelImage(['docker.io/library/app:1'])]);
  it('passes when each tag is recorded, however spelled', () => {
    expect(() => requireReferences(report, ['app:1', 'app'.concat(':1')], 'The tarball')).not.toThrow();
  });
  it('names the tags the engine dropped', () => {
    expect(() => requireReferences(report, ['app:1', 'app:2'], 'The tarball')).toThrow(
      /^The tarball does not record `app:2` \(it records `docker\.io\/library\/app:1`\): the engine dropped tags/,
    );
  });
});

describe("sourceImages: a `source` tarball's images as the engine would name them", () => {
  it.each([
    [
      'docker-containerd',
      [
        ['app:1', digest('9'), 'linux/amd64, linux/arm64'],
        ['<untagged>', digest('1'), 'linux/amd64'],
      ],
    ],
    [
      'docker-graphdriver',
      [
        ['app:1', digest('c'), 'linux/amd64, linux/arm64'],
        ['<untagged>', digest('c'), 'linux/amd64'],
      ],
    ],
  ] as const)('%s', (kind, rows) => {
    const tagged = modelImage(['app:1'], { index: true });
    const untagged = modelImage([]);
    const images = sourceImages(
      [
        { image: tagged, references: ['app:1'] },
        { image: untagged, references: [] },
      ],
      kind,
    );
    expect(images.map((one) => [one.reference, one.imageId, one.platform])).toEqual(rows);
  });
});

describe('distinct', () => {
  it('keeps the first of each, in order', () => expect(distinct(['b', 'a', 'b', 'c', 'a'])).toEqual(['b', 'a', 'c']));
});
