/**
 * Every output is set in one place (src/action/outputs.ts), typed against action.yml: the names are action.yml's, in
 * its order, and each is written once to GITHUB_OUTPUT, lists one value a line.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OUTPUT_NAMES, setOutputs, type Outputs } from '../../src/action/outputs.ts';

const root = path.resolve(import.meta.dirname, '../..');
const action = parse(readFileSync(path.join(root, 'action.yml'), 'utf8')) as { outputs: Record<string, unknown> };

/** What GITHUB_OUTPUT holds, name → value, as the runner reads its `name<<delimiter` blocks. */
function written(file: string): Map<string, string[]> {
  const lines = readFileSync(file, 'utf8').split('\n');
  const values = new Map<string, string[]>();
  for (let i = 0; i < lines.length; i++) {
    const opening = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!opening) continue;
    const [, name, delimiter] = opening;
    const body: string[] = [];
    for (i++; lines[i] !== delimiter; i++) body.push(lines[i]!);
    values.set(name!, [...(values.get(name!) ?? []), body.join('\n')]);
  }
  return values;
}

const empty = (): Outputs => Object.fromEntries(OUTPUT_NAMES.map((name) => [name, []])) as unknown as Outputs;

describe('outputs', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'outputs-'));
    file = path.join(dir, 'output');
    writeFileSync(file, '');
    process.env.GITHUB_OUTPUT = file;
  });
  afterEach(() => {
    delete process.env.GITHUB_OUTPUT;
    rmSync(dir, { recursive: true, force: true });
  });

  it("are action.yml's, in its order", () => {
    expect([...OUTPUT_NAMES]).toEqual(Object.keys(action.outputs));
  });

  it('are each written once, even when empty', () => {
    setOutputs(empty());
    const values = written(file);
    expect([...values.keys()]).toEqual([...OUTPUT_NAMES]);
    for (const name of OUTPUT_NAMES) expect(values.get(name)).toEqual(['']);
  });

  it.each([
    ['tags', ['a:1', 'b:1', 'a:1'], 'a:1\nb:1'],
    ['image-id', ['sha256:1', 'sha256:1'], 'sha256:1'],
    ['format', ['docker-oci', 'docker-oci', 'oci-layout'], 'docker-oci\noci-layout'],
    ['platforms', ['linux/amd64', 'linux/arm64', 'linux/amd64'], 'linux/amd64\nlinux/arm64'],
    // One line per artifact, repeats kept: they line up with artifact-name.
    ['digest', ['sha256:1', 'sha256:1'], 'sha256:1\nsha256:1'],
    ['size', [10, 10], '10\n10'],
    ['artifact-id', [7], '7'],
  ] as const)('%s: one value a line (%j)', (name, values, text) => {
    setOutputs({ ...empty(), [name]: values });
    expect(written(file).get(name)).toEqual([text]);
  });
});
