import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  ALL_INPUTS,
  INPUT_DEFAULTS,
  MODE_INPUTS,
  ignoredInputs,
  ignoredInputsWarning,
} from '../../src/action/ignored-inputs.ts';
import type { Mode } from '../../src/constants.ts';
import { ROOT } from '../../scripts/lint-workflows.ts';

const action = parse(readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string }>;
};

const given =
  (inputs: Record<string, string>) =>
  (name: string): string =>
    inputs[name] ?? '';

describe('the table of inputs per mode', () => {
  it("names exactly action.yml's inputs", () => {
    expect([...ALL_INPUTS].sort()).toEqual(Object.keys(action.inputs).sort());
  });

  it("holds action.yml's defaults, except the job's token", () => {
    const defaults = Object.entries(action.inputs)
      .filter(([name, input]) => input.default !== undefined && input.default !== '' && name !== 'github-token')
      .map(([name, input]) => [name, String(input.default)]);
    expect(Object.fromEntries(defaults)).toEqual(INPUT_DEFAULTS);
  });

  // A description that starts a sentence with "Save:", "Load:", "Delete:" or "Load and delete:" says which modes read it.
  const labelled = Object.entries(action.inputs).flatMap(([name, input]) => {
    const found = [...input.description.matchAll(/(?:^|\.\s+)(Save|Load|Delete)(?: and (delete))?\b/g)];
    const modes = found.flatMap((match) => [match[1]!.toLowerCase(), ...(match[2] ? [match[2]] : [])]);
    return modes.length > 0 ? [[name, [...new Set(modes)].sort()] as const] : [];
  });

  it('has inputs whose descriptions name their modes, so the check below checks something', () => {
    expect(labelled.length).toBeGreaterThan(20);
  });

  it.each(labelled)('gives `%s` to the modes its description names', (name, modes) => {
    const reading = (['save', 'load', 'delete'] as const).filter((mode) => MODE_INPUTS[mode].includes(name));
    // Delete mode reads `workflow` only to refuse it, so the description does not name it.
    const expected = name === 'workflow' ? [...modes, 'delete'].sort() : modes;
    expect([...reading].sort()).toEqual(expected);
  });
});

describe('ignoredInputs', () => {
  it.each<[string, Mode, Record<string, string>, string[]]>([
    ['nothing given', 'save', {}, []],
    [
      "each mode's own inputs",
      'save',
      { tags: 'a:1', compression: 'gzip', 'retention-days': '5', platform: 'linux/arm64' },
      [],
    ],
    [
      'load inputs in load mode',
      'load',
      { 'run-id': '7', workflow: 'ci.yml', commit: 'a'.repeat(40), load: 'false' },
      [],
    ],
    ['delete inputs in delete mode', 'delete', { pattern: 'img-*', 'run-id': '7', repository: 'o/r' }, []],
    ['load inputs in save mode', 'save', { 'run-id': '7', 'oci-layout': 'dir' }, ['run-id', 'oci-layout']],
    [
      'save inputs in load mode',
      'load',
      { compression: 'gzip', 'retention-days': '3', source: 'x.tar' },
      ['source', 'compression', 'retention-days'],
    ],
    [
      'save and load inputs in delete mode',
      'delete',
      { tags: 'a:1', path: '/tmp', 'expected-digest': 'sha256:x' },
      ['tags', 'path', 'expected-digest'],
    ],
    [
      'defaults passed by the runner',
      'load',
      { compression: 'zstd', 'if-missing': 'error', upload: 'true', overwrite: 'false' },
      [],
    ],
    [
      'defaults spelled otherwise',
      'delete',
      { load: 'TRUE', decompress: ' true ', 'max-image-size': '16gib', engine: 'docker' },
      [],
    ],
    ['a default changed', 'delete', { load: 'false', engine: 'podman' }, ['engine', 'load']],
    ['blank values', 'save', { 'run-id': '  ', workflow: '' }, []],
    ["the job's token, the default of github-token", 'save', { 'github-token': 'ghs_x' }, []],
    ['inputs every mode reads', 'delete', { name: 'n', 'stall-timeout': '30', 'step-timeout': '5' }, []],
  ])('%s', (_, mode, inputs, expected) => {
    expect(ignoredInputs(mode, given(inputs))).toEqual(expected);
  });
});

describe('ignoredInputsWarning', () => {
  it('says nothing when nothing is ignored', () => {
    expect(ignoredInputsWarning('save', [])).toBeUndefined();
  });

  it('names one input, the mode that reads it and what to do', () => {
    expect(ignoredInputsWarning('save', ['oci-layout'])).toBe(
      'Save mode ignores `oci-layout`, which `mode: load` reads: remove it from this step, or set the mode this step ' +
        'was meant to have.',
    );
  });

  it('names several inputs and every mode that reads one of them', () => {
    expect(ignoredInputsWarning('save', ['run-id', 'workflow', 'expected-digest'])).toBe(
      'Save mode ignores `run-id`, `workflow` and `expected-digest`, which `mode: load` or `mode: delete` reads: ' +
        'remove them from this step, or set the mode this step was meant to have.',
    );
  });

  it('prints input names only, never their values', () => {
    const line = ignoredInputsWarning('delete', ignoredInputs('delete', given({ tags: '::error::x', path: '##[x]' })));
    expect(line).toContain('`tags` and `path`');
    expect(line).not.toMatch(/::|##\[/);
  });
});
