import { describe, expect, it } from 'vitest';
import { compareDigests, normalizeDigest } from '../../src/digest.ts';

const hex = 'ab'.repeat(32);
const other = `sha256:${'cd'.repeat(32)}`;

describe('normalizeDigest', () => {
  it.each([
    [`sha256:${hex}`, `sha256:${hex}`],
    [hex, `sha256:${hex}`],
    [hex.toUpperCase(), `sha256:${hex}`],
    [`  sha256:${hex}\n`, `sha256:${hex}`],
    [`sha512:${hex}`, undefined],
    [hex.slice(1), undefined],
    [`sha256:${hex}0`, undefined],
    ['', undefined],
  ])('%j', (text, expected) => {
    expect(normalizeDigest(text)).toBe(expected);
  });
});

describe('compareDigests', () => {
  const actual = `sha256:${hex}`;
  it.each([
    { recorded: actual, expected: actual, line: `sha256 matches the recorded digest and expected-digest: ${actual}` },
    { recorded: actual, expected: undefined, line: `sha256 matches the recorded digest: ${actual}` },
    { recorded: undefined, expected: actual, line: `sha256 matches expected-digest: ${actual}` },
  ])('matches $recorded / $expected', ({ recorded, expected, line }) => {
    expect(compareDigests({ actual, recorded, expected })).toEqual({ mismatches: [], line });
  });

  it('never says "matches" when there was nothing to compare', () => {
    const { mismatches, line } = compareDigests({ actual, recorded: undefined, expected: undefined });
    expect(mismatches).toEqual([]);
    expect(line).not.toContain('matches');
    expect(line).toBe(
      `sha256 ${actual}, not compared: the artifact service recorded no digest, and \`expected-digest\` is not set`,
    );
  });

  it('names every digest that differs', () => {
    expect(compareDigests({ actual, recorded: other, expected: other }).mismatches).toEqual([
      `the artifact service recorded ${other}`,
      `\`expected-digest\` is ${other}`,
    ]);
    expect(compareDigests({ actual, recorded: actual, expected: other }).mismatches).toEqual([
      `\`expected-digest\` is ${other}`,
    ]);
  });

  it('names what was hashed', () => {
    expect(compareDigests({ actual, recorded: actual, expected: undefined }, 'sha256 of the zip').line).toBe(
      `sha256 of the zip matches the recorded digest: ${actual}`,
    );
  });
});
