/**
 * Where the tags to save come from: the `tags` input, the `metadata` input (docker/metadata-action's `json`
 * output), or the environment variables metadata-action exports. Pure: the caller passes inputs and env.
 */
import { shown, shownList } from './display.ts';
import { UserError } from './errors.ts';
import { parseReference } from './reference.ts';

export const METADATA_ENV_JSON = 'DOCKER_METADATA_OUTPUT_JSON';
export const METADATA_ENV_TAGS = 'DOCKER_METADATA_OUTPUT_TAGS';
/** The `source` of tags typed into this step rather than made by metadata-action. */
export const TAGS_INPUT = 'the `tags` input';
/**
 * Every tag is one argument of `docker save` and `docker image inspect`: 25,000 tags overflowed the kernel's limit on
 * a command line (2 MiB with the environment; spawn E2BIG). metadata-action makes a handful per image.
 */
export const MAX_TAGS = 1000;
export const MAX_TAG_LIST_BYTES = 256 * 1024;

export interface TagSources {
  tagsInput: string;
  metadataInput: string;
  env: Readonly<Record<string, string | undefined>>;
}

export interface FoundTags {
  tags: string[];
  /** Where they were found, for the log: `the tags input`, `DOCKER_METADATA_OUTPUT_JSON`, … */
  source: string;
}

/** Splits a list of references on newlines and/or commas, trimming entries, dropping blanks and repeats. */
export function splitTagList(text: string): string[] {
  const seen = new Set<string>();
  for (const entry of text.split(/[\n\r,]+/)) {
    const tag = entry.trim();
    if (tag) seen.add(tag);
  }
  return [...seen];
}

/** Reads the `tags` array from metadata-action's `json` output. */
export function tagsFromMetadataJson(text: string, where: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UserError(
      `${where} is not JSON: expected docker/metadata-action's \`json\` output ({"tags": [...], ...}), ` +
        `found ${shown(text, 60)}; pass \${{ steps.<meta-step-id>.outputs.json }}`,
    );
  }
  const tags = (parsed as { tags?: unknown } | null)?.tags;
  if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')) {
    throw new UserError(
      `${where} has no "tags" list of strings: expected docker/metadata-action's \`json\` output, found ` +
        `keys ${shownList(Object.keys((parsed as object | null) ?? {})) || 'none'}; pass \${{ steps.<meta-step-id>.outputs.json }}`,
    );
  }
  return splitTagList(tags.join('\n'));
}

const FIX_SNIPPET = ['with:', '  metadata: ${{ steps.meta.outputs.json }}   # id of your docker/metadata-action step'];

/** Finds the tags in the documented order; fails with where it looked when there are none. */
export function findTags({ tagsInput, metadataInput, env }: TagSources): FoundTags {
  if (tagsInput.trim()) return nonEmpty(splitTagList(tagsInput), TAGS_INPUT);
  if (metadataInput.trim())
    return nonEmpty(tagsFromMetadataJson(metadataInput, 'the `metadata` input'), 'the `metadata` input');
  const envJson = env[METADATA_ENV_JSON];
  if (envJson?.trim()) return nonEmpty(tagsFromMetadataJson(envJson, METADATA_ENV_JSON), METADATA_ENV_JSON);
  const envTags = env[METADATA_ENV_TAGS];
  if (envTags?.trim()) return nonEmpty(splitTagList(envTags), METADATA_ENV_TAGS);
  throw new NoTags();
}

/** No tags were given at all: saving from the engine has nothing to save (from a `source`, everything it holds). */
export class NoTags extends UserError {
  constructor() {
    super(
      `No image tags to save: the \`tags\` and \`metadata\` inputs are empty and neither ${METADATA_ENV_JSON} nor ` +
        `${METADATA_ENV_TAGS} is set; pass docker/metadata-action's output as shown above.`,
      FIX_SNIPPET,
    );
    this.name = 'NoTags';
  }
}

/** Fails when a tag list is longer than a command line can carry; `source` names where the list came from. */
export function checkTagCount(tags: readonly string[], source: string): void {
  const bytes = tags.reduce((total, tag) => total + Buffer.byteLength(tag) + 1, 0);
  if (tags.length > MAX_TAGS || bytes > MAX_TAG_LIST_BYTES) {
    throw new UserError(
      `Too many tags in ${source}: expected at most ${MAX_TAGS} tags of at most ${MAX_TAG_LIST_BYTES / 1024} KiB ` +
        `together, found ${tags.length} tags of ${Math.ceil(bytes / 1024)} KiB; pass only the tags this image needs ` +
        '(a list that long is usually a variable expanded twice or a file passed by mistake).',
    );
  }
}

function nonEmpty(tags: string[], source: string): FoundTags {
  checkTagCount(tags, source);
  if (tags.length === 0) {
    throw new UserError(
      `No image tags in ${source}: docker/metadata-action produced no tag for this event; ` +
        'add a `tags:` rule that matches it (for example `type=ref,event=pr`) or pass `tags` yourself.',
    );
  }
  return { tags, source };
}

/**
 * Checks each tag is a reference docker save can keep: valid grammar, an explicit tag, no digest.
 * Returns one problem line per bad tag (empty when all are fine).
 */
export function problemsWithSaveTags(tags: readonly string[]): string[] {
  const problems: string[] = [];
  for (const tag of tags) {
    const parsed = parseReference(tag);
    const separated = referencesSeparatedByWhiteSpace(tag);
    if (separated) {
      problems.push(`${shown(tag)}: holds ${separated.length} references separated by white space, not one`);
    } else if (!parsed.ok) {
      problems.push(`${shown(tag)}: ${parsed.reason}`);
    } else if (parsed.ref.digest) {
      problems.push(
        `${shown(tag)}: pins a digest, and docker save drops the tags of a digest reference; give name:tag`,
      );
    } else if (isBareVersion(tag)) {
      problems.push(
        `${shown(tag)}: is a bare version with no repository; give docker/metadata-action an \`images\` input ` +
          '(for example `images: ghcr.io/${{ github.repository }}`)',
      );
    } else if (!parsed.ref.tag) {
      problems.push(
        `${shown(tag)}: has no tag, and docker save would export every tag of the repository; add ":<tag>"`,
      );
    }
  }
  return problems;
}

/**
 * The references in one entry when it is several `name:tag` references separated by white space, as metadata-action
 * writes them with `sep-tags: " "`; undefined for anything else.
 */
export function referencesSeparatedByWhiteSpace(entry: string): string[] | undefined {
  const pieces = entry.split(/\s+/).filter(Boolean);
  if (pieces.length < 2) return undefined;
  const all = pieces.every((piece) => {
    const parsed = parseReference(piece);
    return parsed.ok && parsed.ref.tag !== undefined;
  });
  return all ? pieces : undefined;
}

/** `pr-42`: what metadata-action makes when its `images` input is empty, a tag with no repository. */
function isBareVersion(tag: string): boolean {
  const parsed = parseReference(tag);
  return parsed.ok && !parsed.ref.tag && !parsed.ref.digest && !parsed.ref.path.includes('/') && !parsed.ref.domain;
}

/**
 * What to do about invalid references, for where they came from: typed into `tags`, or made by metadata-action
 * (its `json` output, or the variables it exports), where the fix is in its inputs, not in this step.
 */
export function adviceForInvalidTags(invalid: readonly string[], source: string): string {
  if (invalid.some((tag) => referencesSeparatedByWhiteSpace(tag))) {
    return (
      "Separate tags with newlines or commas: leave docker/metadata-action's `sep-tags` at its default, or pass " +
      'its `json` output as `metadata`, which has no separator to get wrong.'
    );
  }
  if (source === TAGS_INPUT) {
    return "Use docker/metadata-action's tags (it lowercases image names) instead of building references by hand.";
  }
  if (invalid.every(isBareVersion)) {
    return (
      'docker/metadata-action made tags with no repository, as it does when its `images` input is empty: set it, ' +
      'for example `images: ghcr.io/${{ github.repository }}`.'
    );
  }
  return `These came from docker/metadata-action (${source}): check its \`images\` and \`tags\` inputs.`;
}
