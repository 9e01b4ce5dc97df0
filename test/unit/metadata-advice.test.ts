import { describe, expect, it } from 'vitest';
import {
  METADATA_ENV_JSON,
  TAGS_INPUT,
  adviceForInvalidTags,
  problemsWithSaveTags,
  referencesSeparatedByWhiteSpace,
} from '../../src/metadata.ts';

describe('referencesSeparatedByWhiteSpace', () => {
  it.each([
    ['ghcr.io/o/app:pr-1 ghcr.io/o/app:sha-1', ['ghcr.io/o/app:pr-1', 'ghcr.io/o/app:sha-1']],
    ['a:1\tb:2  c:3', ['a:1', 'b:2', 'c:3']],
    ['ghcr.io/o/app:pr-1', undefined],
    // Not references run together: a name with a space in it, or a piece with no tag.
    ['my app:1', undefined],
    ['a:1 Bad:2', undefined],
  ])('%j', (entry, expected) => {
    expect(referencesSeparatedByWhiteSpace(entry)).toEqual(expected);
  });
});

describe('problemsWithSaveTags, white space', () => {
  it('says to separate references run together, not that they hold white space', () => {
    expect(problemsWithSaveTags(['a:1 b:2'])).toEqual([
      '`a:1 b:2`: holds 2 references separated by white space, not one',
    ]);
  });
});

describe('adviceForInvalidTags', () => {
  it.each([
    { invalid: ['Owner/app:1'], source: TAGS_INPUT, advice: /instead of building references by hand/ },
    { invalid: ['pr-42', 'sha-1'], source: METADATA_ENV_JSON, advice: /`images` input is empty: set it/ },
    { invalid: ['pr-42'], source: 'the `metadata` input', advice: /`images` input is empty/ },
    { invalid: ['pr-42', 'Owner/app:1'], source: METADATA_ENV_JSON, advice: /check its `images` and `tags` inputs/ },
    { invalid: ['a:1 b:2'], source: TAGS_INPUT, advice: /leave docker\/metadata-action's `sep-tags` at its default/ },
    { invalid: ['a:1 b:2'], source: 'the `metadata` input', advice: /Separate tags with newlines or commas/ },
  ])('$invalid from $source', ({ invalid, source, advice }) => {
    expect(adviceForInvalidTags(invalid, source)).toMatch(advice);
  });

  it('never tells metadata-action users to stop building references by hand', () => {
    expect(adviceForInvalidTags(['pr-42'], METADATA_ENV_JSON)).not.toContain('by hand');
  });
});
