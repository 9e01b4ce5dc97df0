/**
 * Every input, read once and checked once, into one typed object. Nothing else calls core.getInput.
 */
import * as core from '@actions/core';
import * as os from 'node:os';
import {
  CompressionLevels,
  Compressions,
  DEFAULT_ARTIFACT_NAME,
  Engines,
  IfMissingPolicies,
  Modes,
  type Compression,
  type Engine,
  type IfMissing,
  type Mode,
} from '../constants.ts';
import { describeCharacter, shown } from '../display.ts';
import { UserError } from '../errors.ts';
import { normalizeDigest } from '../digest.ts';
import { checkTagCount, splitTagList } from '../metadata.ts';
import { parseReference } from '../reference.ts';
import { artifactNameProblem, isRepository } from '../github.ts';
import { DEFAULT_MAX_IMAGE_BYTES } from '../archive/layers.ts';
import { formatBytes } from '../progress.ts';
import { DEFAULT_STALL_SECONDS } from '../job.ts';
import { ignoredInputs, ignoredInputsWarning } from './ignored-inputs.ts';
import { Conclusions, parseBranch, parseCommit, parseWorkflow, type Conclusion, type Parsed } from '../run-search.ts';

export interface Inputs {
  mode: Mode;
  /** Raw `tags` input: what to save, or (load) the tags expected back. */
  tags: string;
  /** Raw `metadata` input: docker/metadata-action's `json` output. */
  metadata: string;
  /** Save from this tarball instead of the daemon. */
  source: string | undefined;
  name: string;
  /** Load and delete: a glob of artifact names to load or delete, instead of `name`. */
  pattern: string | undefined;
  /** Directory for the tarball. */
  path: string;
  compression: Compression;
  compressionLevel: number | undefined;
  ifMissing: IfMissing;
  upload: boolean;
  retentionDays: number | undefined;
  overwrite: boolean;
  /**
   * Load: another run to read from; in a `workflow_run` workflow the triggering run is found without it. Delete: the
   * run to delete from, this run when undefined.
   */
  runId: number | undefined;
  /** `owner/name` as given; this run's repository when undefined. */
  repository: string | undefined;
  /** Load: find the run by its workflow (file name or ID), and optionally its branch, head SHA and conclusion. */
  workflow: string | undefined;
  branch: string | undefined;
  /** A full head SHA, lowercase. */
  commit: string | undefined;
  conclusion: Conclusion;
  githubToken: string | undefined;
  /** `sha256:<hex>`, however it was written. */
  expectedDigest: string | undefined;
  load: boolean;
  /** Load with load: false: hand on a plain tar (decompressed while verifying) rather than the file as downloaded. */
  decompress: boolean;
  /** Load: a new or empty directory to write the verified images to as an OCI image layout. */
  ociLayout: string | undefined;
  platform: string | undefined;
  engine: Engine;
  /** Every layer of an image, uncompressed, together: a bound on what a tarball may expand to. */
  maxImageBytes: number;
  /** How long a transfer or an engine command may go without progress. */
  stallMs: number;
  /** The whole step's bound; undefined: derived from the size of what it moves. */
  stepTimeoutMs: number | undefined;
}

function choice<T extends string>(input: string, allowed: readonly T[], fallback: T): T {
  const value = core.getInput(input).trim().toLowerCase() || fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UserError(
      `Input \`${input}\` must be one of ${allowed.map((a) => `\`${a}\``).join(', ')}, found ${shown(value)}; fix the \`with:\` block of this step.`,
    );
  }
  return value as T;
}

/** One OCI platform: lowercase os and architecture, optional variant (no lists, no options). */
const PLATFORM = /^[a-z0-9_]+\/[a-z0-9_]+(?:\/[a-z0-9_.]+)?$/;

function bool(input: string, fallback: boolean): boolean {
  const value = core.getInput(input).trim().toLowerCase();
  if (value === '') return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UserError(`Input \`${input}\` must be \`true\` or \`false\`, found ${shown(value)}.`);
}

function integer(input: string, min: number, max: number): number | undefined {
  const value = core.getInput(input).trim();
  if (value === '') return undefined;
  const number = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new UserError(`Input \`${input}\` must be a whole number from ${min} to ${max}, found ${shown(value)}.`);
  }
  return number;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/** A size in bytes, `20GiB`, `500MB`, `64G` (binary, as docker reads it) or a plain number of bytes. */
export function parseSize(text: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function sizeInput(input: string, min: number, fallback: number): number {
  const text = optional(input);
  if (text === undefined) return fallback;
  const bytes = parseSize(text);
  if (bytes === undefined || bytes < min) {
    throw new UserError(
      `Input \`${input}\` must be a size of at least ${formatBytes(min)}, as \`20GiB\`, \`500MB\` or a number of bytes, ` +
        `found ${shown(text)}.`,
    );
  }
  return bytes;
}

function minutesInput(input: string): number | undefined {
  const minutes = integer(input, 1, 24 * 60);
  return minutes === undefined ? undefined : minutes * 60_000;
}

function optional(input: string): string | undefined {
  return core.getInput(input).trim() || undefined;
}

/** PATH_MAX on Linux. */
const MAX_PATH_BYTES = 4096;

/** A path or glob input: one line of printable text, so that it can be named in the log. */
function pathInput(input: string): string | undefined {
  const value = optional(input);
  if (value === undefined) return undefined;
  const control = /\p{Cc}/u.exec(value);
  if (control) {
    throw new UserError(
      `Input \`${input}\` contains ${describeCharacter(control[0])}: expected one path on one line, found ${shown(value)}; ` +
        'fix the `with:` block of this step.',
    );
  }
  const command = /::|##\[/.exec(value);
  if (command) {
    // The library prints paths in lines of its own, where the runner would read these as a workflow command.
    throw new UserError(
      `Input \`${input}\` contains ${shown(command[0])}, which the runner reads as the start of a workflow command: ` +
        `expected a path without it, found ${shown(value)}; fix the \`with:\` block of this step.`,
    );
  }
  if (Buffer.byteLength(value) > MAX_PATH_BYTES) {
    throw new UserError(
      `Input \`${input}\` is ${Buffer.byteLength(value)} bytes long: expected a path of at most ${MAX_PATH_BYTES} bytes, ` +
        `found ${shown(value)}.`,
    );
  }
  return value;
}

/** An input of a run search, as GitHub spells it (run-search.ts), or the line that says what it must be. */
function searchInput(input: string, parse: (text: string) => Parsed): string | undefined {
  const text = optional(input);
  if (text === undefined) return undefined;
  const parsed = parse(text);
  if (!parsed.ok) {
    throw new UserError(
      `Input \`${input}\` ${parsed.problem}, found ${shown(text)}; fix the \`with:\` block of this step.`,
    );
  }
  return parsed.value;
}

export function getInputs(env: NodeJS.ProcessEnv = process.env): Inputs {
  const mode = choice('mode', Modes, 'save');
  const compression = choice('compression', Compressions, 'zstd');
  const levels = compression === 'none' ? undefined : CompressionLevels[compression];
  const compressionLevel = levels ? integer('compression-level', levels.min, levels.max) : undefined;

  const name = core.getInput('name').trim() || DEFAULT_ARTIFACT_NAME;
  const nameProblem = artifactNameProblem(name);
  if (nameProblem) throw new UserError(`Input \`name\` (${shown(name)}) ${nameProblem}; choose another artifact name.`);

  const expectedDigestText = optional('expected-digest');
  const expectedDigest = expectedDigestText === undefined ? undefined : normalizeDigest(expectedDigestText);
  if (expectedDigestText !== undefined && expectedDigest === undefined) {
    throw new UserError(
      `Input \`expected-digest\` must be "sha256:" followed by 64 hex digits, or the 64 digits alone as ` +
        `actions/upload-artifact prints them (the artifact's digest: the save step's \`digest\` output), found ${shown(expectedDigestText)}.`,
    );
  }

  const runIdText = optional('run-id');
  const runId = runIdText === undefined ? undefined : integer('run-id', 1, Number.MAX_SAFE_INTEGER);
  const githubToken = optional('github-token');

  const repository = optional('repository');
  if (repository !== undefined && !isRepository(repository)) {
    throw new UserError(
      `Input \`repository\` must be \`owner/name\`, found ${shown(repository)}: GitHub spells an owner with letters, ` +
        'digits, "_" and "-" (at most 39), a name with letters, digits, ".", "_" and "-" (not "." or ".."); fix it.',
    );
  }

  const workflow = searchInput('workflow', parseWorkflow);
  const branch = searchInput('branch', parseBranch);
  const commit = searchInput('commit', parseCommit);
  if (workflow === undefined && (branch !== undefined || commit !== undefined)) {
    throw new UserError(
      `Input \`${branch !== undefined ? 'branch' : 'commit'}\` narrows the runs of \`workflow\`, which is empty: set ` +
        '`workflow` to the file name of the workflow that saved the image, or use `run-id`.',
    );
  }

  const platform = optional('platform');
  if (platform !== undefined && !PLATFORM.test(platform)) {
    throw new UserError(
      `Input \`platform\` must be one platform as \`os/architecture\` or \`os/architecture/variant\` (e.g. \`linux/arm64\`), found ${shown(platform)}.`,
    );
  }

  const tags = core.getInput('tags');
  checkTagCount(splitTagList(tags), 'the `tags` input');
  if (mode === 'load') {
    // The tags expected back are named in later messages: none is printed unless it is a reference.
    for (const tag of splitTagList(tags)) {
      const parsed = parseReference(tag);
      if (!parsed.ok) {
        throw new UserError(
          `Input \`tags\` holds ${shown(tag)}, which is not an image reference: ${parsed.reason}; ` +
            'list the tags the save step saved (its `tags` output).',
        );
      }
    }
  }

  const ignored = ignoredInputsWarning(
    mode,
    ignoredInputs(mode, (input) => core.getInput(input)),
  );
  if (ignored) core.warning(ignored);

  return {
    mode,
    tags,
    metadata: core.getInput('metadata'),
    source: pathInput('source'),
    name,
    pattern: pathInput('pattern'),
    path: pathInput('path') ?? env.RUNNER_TEMP ?? os.tmpdir(),
    compression,
    compressionLevel,
    ifMissing: choice('if-missing', IfMissingPolicies, 'error'),
    upload: bool('upload', true),
    // Above the repository's own setting the library keeps to the setting, with a warning (docs/decisions.md).
    retentionDays: integer('retention-days', 1, 400),
    overwrite: bool('overwrite', false),
    runId,
    repository,
    workflow,
    branch,
    commit,
    conclusion: choice('conclusion', Conclusions, 'success'),
    githubToken,
    expectedDigest,
    load: bool('load', true),
    decompress: bool('decompress', true),
    ociLayout: pathInput('oci-layout'),
    platform,
    engine: choice('engine', Engines, 'docker'),
    maxImageBytes: sizeInput('max-image-size', 1024 * 1024, DEFAULT_MAX_IMAGE_BYTES),
    stallMs: (integer('stall-timeout', 5, 3600) ?? DEFAULT_STALL_SECONDS) * 1000,
    stepTimeoutMs: minutesInput('step-timeout'),
  };
}
