import { describe, expect, it } from 'vitest';
import { globToRegExp, matchNames } from '../../src/glob.ts';

describe('artifact name globs', () => {
  it.each([
    ['docker-image-*', 'docker-image-api', true],
    ['docker-image-*', 'docker-image-', true],
    ['docker-image-*', 'docker-images', false],
    ['docker-image-?', 'docker-image-a', true],
    ['docker-image-?', 'docker-image-ab', false],
    ['*', 'anything at all', true],
    ['img.v1', 'img.v1', true],
    ['img.v1', 'imgXv1', false],
    ['a+b(c)[d]{e}^$|', 'a+b(c)[d]{e}^$|', true],
    ['*-amd64', 'api-amd64', true],
    ['*-amd64', 'api-arm64', false],
  ])('%s vs %s → %s', (glob, name, matches) => {
    expect(globToRegExp(glob).test(name)).toBe(matches);
  });

  it('matchNames keeps matches, sorted', () => {
    expect(matchNames('docker-image-*', ['docker-image-web', 'other', 'docker-image-api', 'docker-image'])).toEqual([
      'docker-image-api',
      'docker-image-web',
    ]);
  });
});
