import { describe, expect, it } from 'vitest';
import { editDistance, suggest } from '../../src/suggest.ts';

const local = [
  'ghcr.io/wikid82/app:pr-2',
  'ghcr.io/wikid82/app:sha-abc1234',
  'docker.io/other/app:pr-2',
  'registry.example.com/team/tool:1.0',
  'alpine:3.20',
];

describe('suggest names the local image the user most likely meant', () => {
  it.each([
    ['ghcr.io/Wikid82/app:pr-2', 'ghcr.io/wikid82/app:pr-2', /letter case/],
    ['ghcr.io/wikid82/app:pr-3', 'ghcr.io/wikid82/app:pr-2', /same repository, tag `pr-2`/],
    ['quay.io/team/tool:1.0', 'registry.example.com/team/tool:1.0', /under registry `registry.example.com`/],
    ['ghcr.io/someone/app:pr-2', 'ghcr.io/wikid82/app:pr-2', /same name and tag/],
    ['quay.io/team/tool:2.0', 'registry.example.com/team/tool:1.0', /same repository path/],
    ['ghcr.io/x/alpine:edge', 'alpine:3.20', /same image name/],
    ['ghcr.io/wikid82/ap:pr-2', 'ghcr.io/wikid82/app:pr-2', /closest spelling/],
  ])('%s → %s', (wanted, reference, why) => {
    const suggestion = suggest(wanted, local);
    expect(suggestion?.reference).toBe(reference);
    expect(suggestion?.why).toMatch(why);
  });

  it('suggests nothing when nothing is close', () => {
    expect(suggest('ghcr.io/acme/completely-different:v9', local)).toBeUndefined();
    expect(suggest('ghcr.io/wikid82/app:pr-2', [])).toBeUndefined();
  });

  it('never suggests the wanted reference itself or an excluded one', () => {
    expect(suggest('alpine:3.20', ['alpine:3.20'])).toBeUndefined();
    expect(suggest('ghcr.io/wikid82/app:pr-9', local, ['ghcr.io/wikid82/app:pr-2'])?.reference).toBe(
      'ghcr.io/wikid82/app:sha-abc1234',
    );
  });

  it('treats docker hub short names as their qualified form', () => {
    expect(suggest('docker.io/library/alpine:3.19', local)?.reference).toBe('alpine:3.20');
  });
});

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', 'abc', 0],
    ['abc', '', 3],
    ['kitten', 'sitting', 3],
    ['ab', 'ba', 2],
  ])('%s ~ %s = %d', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });
});
