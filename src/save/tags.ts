/** The tags to save, found and validated before any of them is printed. */
import * as core from '@actions/core';
import type { SaveRun } from './run.ts';
import { shown } from '../display.ts';
import { NoTags, findTags, type FoundTags } from '../metadata.ts';
import { invalidTags, taggedReferences } from './tag-reports.ts';

/** `the docker engine`: where the tags are looked for, in lines. */
export function engineName(run: SaveRun): string {
  return `the ${run.inputs.engine} engine`;
}

/**
 * The tags to save; undefined only when saving a `source` tarball with no tags named (all of it). Invalid ones fail
 * the step before anything is saved, with the engine's images to compare.
 */
export async function wantedTags(run: SaveRun): Promise<FoundTags | undefined> {
  const { inputs } = run;
  let found: FoundTags;
  try {
    found = findTags({ tagsInput: inputs.tags, metadataInput: inputs.metadata, env: process.env });
  } catch (error) {
    if (inputs.source && error instanceof NoTags) {
      core.info(`No tags given: saving every reference in ${shown(inputs.source)}.`);
      return undefined;
    }
    throw error;
  }
  const available = inputs.source
    ? { where: 'the tarball', references: [] }
    : { where: engineName(run), references: await lazyReferences(run, found.tags, found.source) };
  const invalid = invalidTags(found.tags, found.source, available);
  if (invalid) throw invalid;
  core.info(`From ${found.source}:`);
  for (const tag of found.tags) core.info(`  ${tag}`);
  return found;
}

/** The engine's tagged references, asked for only when a tag is invalid (the listing is for the report). */
async function lazyReferences(run: SaveRun, tags: readonly string[], source: string): Promise<string[]> {
  if (!invalidTags(tags, source, { where: '', references: [] })) return [];
  return taggedReferences(await run.engine.listImages().catch(() => []));
}
