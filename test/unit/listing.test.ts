import { describe, expect, it } from 'vitest';
import { LISTING_LIMIT, moreLine, mostRelevant } from '../../src/listing.ts';

const same = (reference: string) => reference;

describe('mostRelevant', () => {
  it.each([
    {
      what: 'a short list whole, in its order',
      items: ['b:1', 'a:1', 'c:1'],
      wanted: ['x:1'],
      limit: 5,
      shown: ['b:1', 'a:1', 'c:1'],
      more: 0,
    },
    {
      what: 'the wanted repository first, capped, counting the rest',
      items: ['b:1', 'b:2', 'ghcr.io/o/app:old', 'c:1', 'ghcr.io/o/app:new'],
      wanted: ['ghcr.io/o/app:pr-1'],
      limit: 3,
      shown: ['ghcr.io/o/app:old', 'ghcr.io/o/app:new', 'b:1'],
      more: 2,
    },
    {
      what: 'repositories compared qualified and case-folded',
      items: ['x:1', 'docker.io/library/alpine:3', 'y:1'],
      wanted: ['Alpine:edge'],
      limit: 2,
      shown: ['docker.io/library/alpine:3', 'x:1'],
      more: 1,
    },
    {
      what: 'several wanted repositories',
      items: ['z:1', 'b:1', 'a:1'],
      wanted: ['a:9', 'b:9'],
      limit: 2,
      shown: ['b:1', 'a:1'],
      more: 1,
    },
  ])('$what', ({ items, wanted, limit, shown, more }) => {
    expect(mostRelevant(items, same, wanted, limit)).toEqual({ shown, more });
  });

  it(`shows ${LISTING_LIMIT} by default`, () => {
    const items = Array.from({ length: 100 }, (_, index) => `r:${index}`);
    expect(mostRelevant(items, same, []).shown).toHaveLength(LISTING_LIMIT);
    expect(mostRelevant(items, same, []).more).toBe(100 - LISTING_LIMIT);
  });
});

describe('moreLine', () => {
  it.each([
    [0, []],
    [7, ['  … and 7 more']],
  ])('%i left out', (more, lines) => {
    expect(moreLine(more)).toEqual(lines);
  });
});
