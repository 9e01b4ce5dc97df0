import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { findTags, problemsWithSaveTags, splitTagList, tagsFromMetadataJson } from '../../src/metadata.ts';

const json = (tags: unknown) => JSON.stringify({ tags, labels: {}, annotations: [] });

describe('splitTagList', () => {
  it.each([
    ['a:1\nb:2', ['a:1', 'b:2']],
    ['a:1,b:2', ['a:1', 'b:2']],
    ['a:1, b:2 ,\n\n c:3\r\n', ['a:1', 'b:2', 'c:3']],
    ['a:1\na:1,a:1', ['a:1']],
    ['  \n , ,\n', []],
    ['', []],
  ])('%j', (text, expected) => {
    expect(splitTagList(text)).toEqual(expected);
  });
});

describe('tagsFromMetadataJson', () => {
  it('reads metadata-action json output', () => {
    expect(tagsFromMetadataJson(json(['ghcr.io/o/a:pr-2', 'ghcr.io/o/a:sha-1']), 'x')).toEqual([
      'ghcr.io/o/a:pr-2',
      'ghcr.io/o/a:sha-1',
    ]);
  });
  it.each([
    ['not json', /is not JSON/],
    ['{"tag-names": []}', /no "tags" list/],
    [json('a:1'), /no "tags" list/],
    [json([1, 2]), /no "tags" list/],
    ['null', /no "tags" list/],
  ])('rejects %j', (text, message) => {
    expect(() => tagsFromMetadataJson(text, 'the `metadata` input')).toThrow(message);
  });
});

describe('findTags looks in the documented order', () => {
  const env = {
    DOCKER_METADATA_OUTPUT_JSON: json(['env/json:1']),
    DOCKER_METADATA_OUTPUT_TAGS: 'env/tags:1',
  };
  it.each([
    [{ tagsInput: 'in/tags:1', metadataInput: json(['in/meta:1']), env }, ['in/tags:1'], 'the `tags` input'],
    [{ tagsInput: '', metadataInput: json(['in/meta:1']), env }, ['in/meta:1'], 'the `metadata` input'],
    [{ tagsInput: ' \n', metadataInput: '', env }, ['env/json:1'], 'DOCKER_METADATA_OUTPUT_JSON'],
    [
      { tagsInput: '', metadataInput: '', env: { DOCKER_METADATA_OUTPUT_TAGS: 'a/b:1,a/b:2' } },
      ['a/b:1', 'a/b:2'],
      'DOCKER_METADATA_OUTPUT_TAGS',
    ],
    [
      {
        tagsInput: '',
        metadataInput: '',
        env: { DOCKER_METADATA_OUTPUT_JSON: '', DOCKER_METADATA_OUTPUT_TAGS: 'a/b:1\na/b:2' },
      },
      ['a/b:1', 'a/b:2'],
      'DOCKER_METADATA_OUTPUT_TAGS',
    ],
  ])('%#', (sources, tags, source) => {
    expect(findTags(sources)).toEqual({ tags, source });
  });

  it('says where it looked and shows the fix when there are no tags anywhere', () => {
    let error: unknown;
    try {
      findTags({ tagsInput: '', metadataInput: '', env: {} });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UserError);
    const userError = error as UserError;
    expect(userError.message).toMatch(/`tags` and `metadata` inputs are empty/);
    expect(userError.message).toMatch(/DOCKER_METADATA_OUTPUT_JSON nor DOCKER_METADATA_OUTPUT_TAGS/);
    expect(userError.details).toHaveLength(2);
    expect(userError.details[1]).toContain('metadata: ${{ steps.meta.outputs.json }}');
  });

  it('explains an empty tag list from metadata-action', () => {
    expect(() => findTags({ tagsInput: '', metadataInput: json([]), env: {} })).toThrow(
      /produced no tag for this event/,
    );
  });
});

describe('findTags bounds the tag list to what a command line can carry', () => {
  const many = (count: number, length = 10) =>
    Array.from({ length: count }, (_, i) => `app:${String(i).padStart(length, '0')}`);

  it.each([
    ['the `tags` input', { tagsInput: many(25_000).join('\n'), metadataInput: '', env: {} }, /25000 tags/],
    [
      'the `metadata` input',
      { tagsInput: '', metadataInput: JSON.stringify({ tags: many(1001) }), env: {} },
      /1001 tags/,
    ],
    [
      'DOCKER_METADATA_OUTPUT_TAGS',
      { tagsInput: '', metadataInput: '', env: { DOCKER_METADATA_OUTPUT_TAGS: many(900, 300).join(',') } },
      /900 tags of 269 KiB/,
    ],
  ])('%s', (source, sources, found) => {
    expect(() => findTags(sources)).toThrow(
      new RegExp(`^Too many tags in ${source.replace(/[`]/g, '.')}: expected at most 1000 tags of at most 256 KiB`),
    );
    expect(() => findTags(sources)).toThrow(found);
  });

  it('takes a thousand tags', () => {
    expect(findTags({ tagsInput: many(1000).join('\n'), metadataInput: '', env: {} }).tags).toHaveLength(1000);
  });
});

describe('problemsWithSaveTags', () => {
  it('accepts name:tag references', () => {
    expect(problemsWithSaveTags(['ghcr.io/o/app:pr-2', 'app:1', 'localhost:5000/x:y'])).toEqual([]);
  });
  it.each([
    ['pr-2', /bare version with no repository.*images/],
    ['ghcr.io/Wikid82/app:pr-2', /repository name must be lowercase: `Wikid82`/],
    ['ghcr.io/o/app', /no tag/],
    [`ghcr.io/o/app:1@sha256:${'0'.repeat(64)}`, /pins a digest/],
    ['--output=/etc/passwd', /cannot start with "-"/],
    ['my app:1', /white space/],
    ['  ::warning::owned', /white space/],
    ['app:1::add-mask::x', /`app:1::add-mask::x`: (repository|tag)/],
  ])('%s', (tag, problem) => {
    const problems = problemsWithSaveTags([tag]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
    expect(problems[0]).toContain(`\`${tag}\``);
  });
});
