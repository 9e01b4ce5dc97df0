/**
 * Every output, set in one place: the twin of inputs.ts. The names are action.yml's (test/unit/outputs.test.ts
 * holds them to it); lists are one value a line, as the README documents them.
 */
import * as core from '@actions/core';

/** action.yml's outputs, in its order. */
export const OUTPUT_NAMES = [
  'tags',
  'image',
  'image-id',
  'tarball',
  'digest',
  'size',
  'artifact-id',
  'artifact-name',
  'format',
  'platforms',
  'oci-layout',
  'run-id',
] as const;

export type OutputName = (typeof OUTPUT_NAMES)[number];

/** What save and load report: each output's values (several for a `pattern` load), in order. */
export type Outputs = Record<OutputName, ReadonlyArray<string | number>>;

/** Sets every output, each once: values one a line, repeats dropped where a list names things (tags, IDs). */
export function setOutputs(outputs: Outputs): void {
  for (const name of OUTPUT_NAMES) {
    const values = outputs[name].map(String);
    const listed = name === 'tags' || name === 'image-id' || name === 'format' || name === 'platforms';
    core.setOutput(name, (listed ? [...new Set(values)] : values).join('\n'));
  }
}

/** Every output empty: what a mode that reports only some of them (delete) starts from. */
export function noOutputs(): Outputs {
  return Object.fromEntries(OUTPUT_NAMES.map((name) => [name, []])) as unknown as Outputs;
}
