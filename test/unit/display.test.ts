import { describe, expect, it } from 'vitest';
import {
  MAX_SHOWN_CHARACTERS,
  Warnings,
  cappedList,
  codePoint,
  describeCharacter,
  shown,
  shownList,
  token,
} from '../../src/display.ts';

/** What the runner would take for a workflow command: a line starting, after white space, with `::`, or `##[` anywhere. */
function commandLines(printed: string): string[] {
  return printed.split(/\r\n|\r|\n/).filter((line) => /^\s*::/.test(line) || line.includes('##['));
}

describe('shown', () => {
  it.each([
    ['a workflow command', '::warning file=x::owned'],
    ['a command after leading spaces', '   ::add-mask::secret'],
    ['a command after a line feed', 'app:1\n::set-output name=x::y'],
    ['a command after a carriage return', 'app:1\r::error::fake'],
    ['a command after CR LF', 'app:1\r\n::stop-commands::token'],
    ['a legacy command', 'app ##[warning]owned'],
    ['an ANSI escape', '\u001b[2K\u001b[1A::notice::x'],
    ['a line separator', 'a\u2028::warning::x'],
  ])('cannot print %s as a command, alone or in a line', (_name, value) => {
    for (const line of [shown(value), `  ${shown(value)}`, `prefix ${shown(value)} suffix`]) {
      expect(commandLines(line)).toEqual([]);
      expect(line).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
    }
  });

  it('quotes, so that a value never starts a line', () => {
    expect(shown('::warning::x')).toBe('`::warning::x`');
  });

  it('spells control and non-ASCII characters as code points', () => {
    expect(shown('a\u001bb')).toBe('`a<U+001B>b`');
    expect(shown('\u0430pp:1')).toBe('`<U+0430>pp:1`');
    expect(shown('a\nb\tc')).toBe('`a\\nb\\tc`');
  });

  it('shortens long values and says how long they were', () => {
    const printed = shown('t'.repeat(10_000));
    expect(printed.length).toBeLessThan(MAX_SHOWN_CHARACTERS + 40);
    expect(printed).toMatch(/… \(10000 characters\)`$/);
  });

  it('counts characters, not UTF-16 units, when shortening', () => {
    expect(shown('😀'.repeat(5), 3)).toBe('`<U+1F600><U+1F600><U+1F600>… (5 characters)`');
  });
});

describe('token', () => {
  it.each([
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['image-*', 'image-*'],
    ['::warning::x', '`::warning::x`'],
    ['a b', '`a b`'],
    ['##[warning]x', '`##<U+005B>warning]x`'],
    ['x'.repeat(201), `\`${'x'.repeat(201)}\``],
  ])('%j prints as %j', (value, printed) => expect(token(value)).toBe(printed));
});

describe('describeCharacter', () => {
  it.each([
    ['\u0430', 'U+0430 (a Cyrillic letter)'],
    ['\u03bf', 'U+03BF (a Greek letter)'],
    ['\u200b', 'U+200B (an invisible formatting character)'],
    ['\u00a0', 'U+00A0 (a space)'],
    ['\n', 'U+000A (a control character)'],
    ['~', 'U+007E (a printable ASCII character)'],
    ['\u2122', 'U+2122 (not ASCII)'],
  ])('%j is %s', (character, expected) => {
    expect(describeCharacter(character)).toBe(expected);
  });

  it('pads code points to four digits', () => expect(codePoint('\u0007')).toBe('U+0007'));
});

describe('lists and warnings are bounded', () => {
  it('shownList prints at most ten and counts the rest', () => {
    const listed = shownList(Array.from({ length: 60_000 }, (_, i) => `name-${i}`));
    expect(listed).toMatch(/`name-9` … and 59990 more$/);
    expect(listed.length).toBeLessThan(200);
  });

  it('cappedList shows at most max values, then how many more, joined by the separator', () => {
    const values = Array.from({ length: 12 }, (_, i) => `v${i}`);
    expect(cappedList(values, (value) => value.toUpperCase(), { max: 3, separator: '; ' })).toBe(
      'V0; V1; V2 … and 9 more',
    );
    expect(cappedList(values.slice(0, 3), (value) => value, { max: 3 })).toBe('v0, v1, v2');
    expect(cappedList([], (value) => value)).toBe('');
  });

  it('Warnings says each once, at most its cap, and counts the rest', () => {
    const warnings = new Warnings(3);
    for (let i = 0; i < 60_000; i++) warnings.add('the same layer twice');
    for (let i = 0; i < 10; i++) warnings.add(`warning ${i}`);
    expect(warnings.list()).toEqual([
      'the same layer twice',
      'warning 0',
      'warning 1',
      '… and 8 more warnings like these.',
    ]);
  });
});
