/**
 * Which inputs each mode reads, so that an input set for another mode is named rather than silently ignored.
 */
import type { Mode } from '../constants.ts';

/** Read in every mode. */
const EVERY_MODE: readonly string[] = ['mode', 'name', 'stall-timeout', 'step-timeout'];

/** Read by each mode besides those of EVERY_MODE; a unit test holds this to action.yml's inputs. */
export const MODE_INPUTS: Readonly<Record<Mode, readonly string[]>> = {
  save: [
    'tags',
    'metadata',
    'source',
    'path',
    'compression',
    'compression-level',
    'if-missing',
    'upload',
    'retention-days',
    'overwrite',
    'platform',
    'engine',
    'max-image-size',
  ],
  load: [
    'tags',
    'pattern',
    'path',
    'run-id',
    'repository',
    'workflow',
    'branch',
    'commit',
    'conclusion',
    'github-token',
    'expected-digest',
    'load',
    'decompress',
    'oci-layout',
    'engine',
    'max-image-size',
  ],
  // `workflow` is read to refuse it: delete mode does not search for a run.
  delete: ['pattern', 'run-id', 'repository', 'workflow', 'github-token'],
};

/**
 * action.yml's defaults, which the runner passes whether or not the user wrote the input. `github-token` is left out:
 * its default is the job's token, which cannot be told from one the user gave.
 */
export const INPUT_DEFAULTS: Readonly<Record<string, string>> = {
  mode: 'save',
  name: 'docker-image',
  compression: 'zstd',
  'if-missing': 'error',
  upload: 'true',
  overwrite: 'false',
  conclusion: 'success',
  load: 'true',
  decompress: 'true',
  engine: 'docker',
  'stall-timeout': '60',
  'max-image-size': '16GiB',
};

/** Every input the action reads, in action.yml's order as far as the lists above keep it. */
export const ALL_INPUTS: readonly string[] = [...new Set([...EVERY_MODE, ...Object.values(MODE_INPUTS).flat()])];

/** The inputs that `mode` does not read yet are set to something other than their default. */
export function ignoredInputs(mode: Mode, value: (name: string) => string): string[] {
  const read = new Set([...EVERY_MODE, ...MODE_INPUTS[mode]]);
  return ALL_INPUTS.filter((name) => {
    if (read.has(name) || name === 'github-token') return false;
    const given = value(name).trim();
    return given !== '' && given.toLowerCase() !== (INPUT_DEFAULTS[name] ?? '').toLowerCase();
  });
}

/** One warning line for them, or undefined when there are none. Names only: values are the user's, not printed. */
export function ignoredInputsWarning(mode: Mode, ignored: readonly string[]): string | undefined {
  if (ignored.length === 0) return undefined;
  const listed = ignored.map((name) => `\`${name}\``);
  const names = listed.length === 1 ? listed[0] : `${listed.slice(0, -1).join(', ')} and ${listed.at(-1)}`;
  const readers = (['save', 'load', 'delete'] as const).filter(
    (other) => other !== mode && ignored.some((name) => MODE_INPUTS[other].includes(name)),
  );
  const where = readers.length > 0 ? `, which ${readers.map((m) => `\`mode: ${m}\``).join(' or ')} reads` : '';
  return (
    `${capitalized(mode)} mode ignores ${names}${where}: remove ${ignored.length === 1 ? 'it' : 'them'} from this ` +
    'step, or set the mode this step was meant to have.'
  );
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
