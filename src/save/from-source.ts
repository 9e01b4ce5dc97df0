/**
 * Saving a tarball another tool wrote (`source`: build-push-action's output, docker save, skopeo, podman): verified and
 * written again as the canonical archive, held to the tags asked for and to `platform`; no engine is needed.
 */
import * as core from '@actions/core';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { selectReferences } from '../archive/canonical.ts';
import { openTarball } from '../archive/tarball.ts';
import { shown, tokenList } from '../display.ts';
import { TagsNotFound, UserError, tagsNotFoundLine } from '../errors.ts';
import type { FoundTags } from '../metadata.ts';
import { holdsPlatform } from '../platform.ts';
import { qualify } from '../reference.ts';
import { writeLogged, type SaveRun } from './run.ts';
import { distinct, sourceImages, type Saved } from './saved.ts';
import { missingReport, referencesTable } from './tag-reports.ts';

export async function saveFromSource(run: SaveRun, wanted: FoundTags | undefined, source: string): Promise<Saved> {
  const { inputs, engine, file } = run;
  const sourcePath = path.resolve(process.env.GITHUB_WORKSPACE ?? '.', source);
  if (path.resolve(file) === sourcePath) {
    throw new UserError(
      `The \`source\` tarball and the tarball to write are the same file (${shown(file)}): set \`path\` or \`name\` so they differ.`,
    );
  }
  // Written uncompressed, the tar takes its full size on the disk of `path`.
  const opened = await openTarball(
    sourcePath,
    'The `source` tarball',
    inputs.compression === 'none' ? path.dirname(file) : undefined,
  );
  const tarball = await writeLogged(run, {
    title: `Verify and compress ${shown(sourcePath)} → ${shown(file)}`,
    phase: 'verify + compress',
    source: () => ({ stream: opened.stream, decode: opened.decode, phase: 'read source' }),
    canonical: {
      select: (report) => selectReferences(report, wanted?.tags),
      platform: inputs.platform,
      maxImageBytes: inputs.maxImageBytes,
    },
  });
  try {
    if (inputs.platform && !holdsPlatform(tarball.report.platforms, inputs.platform)) {
      throw new UserError(
        `The \`source\` tarball has no image for \`platform\` ${inputs.platform}: it holds ${tokenList(tarball.report.platforms) || 'no platform'}; ` +
          'nothing was uploaded. Fix `platform`, or build that platform into the tarball.',
      );
    }
    const { tags, warnings } = wanted
      ? tagsPresent(wanted, tarball.report.references, { ifMissing: inputs.ifMissing, where: shown(sourcePath) })
      : { tags: tarball.report.references, warnings: [] };
    // image-id names what this runner's engine would show once the artifact is loaded (README: Outputs).
    const kind = await engine.kind().catch(() => 'docker-containerd' as const);
    const images = sourceImages(tarball.selections, kind);
    return { tarball, tags, imageIds: distinct(images.map((image) => image.imageId)), images, warnings };
  } catch (error) {
    await rm(file, { force: true });
    throw error;
  }
}

/**
 * The tags asked for that the tarball records; those it does not fail the step, or with `if-missing: warn` (and some
 * present) are a warning.
 */
function tagsPresent(
  wanted: FoundTags,
  references: readonly string[],
  policy: { ifMissing: 'error' | 'warn'; where: string },
): { tags: string[]; warnings: string[] } {
  const present = new Set(references.map(qualify));
  const missing = wanted.tags.filter((tag) => !present.has(qualify(tag)));
  const tags = wanted.tags.filter((tag) => present.has(qualify(tag)));
  if (missing.length === 0) return { tags, warnings: [] };
  const table = referencesTable(references, missing);
  const { details, hint } = missingReport(missing, { where: 'the tarball', references, table });
  const found = { missing, total: wanted.tags.length, where: policy.where, hint };
  if (policy.ifMissing === 'error' || tags.length === 0) {
    throw new TagsNotFound(found, 'nothing was uploaded. Its references are listed above.', details);
  }
  const line = tagsNotFoundLine(found);
  core.warning(`${line}; the tarball is uploaded with the references it has.`);
  return { tags, warnings: [line] };
}
