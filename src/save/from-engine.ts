/**
 * Saving from the engine: every tag checked to exist (the engine's images listed, and what was meant, when one does
 * not), then one `docker save` of them all, watched for progress, and the tarball held to what was checked.
 */
import * as core from '@actions/core';
import { rm } from 'node:fs/promises';
import { selectReferences } from '../archive/canonical.ts';
import { shown } from '../display.ts';
import { ContainerEngine, EngineError } from '../engine/engine.ts';
import type { ImageInfo, InspectResult } from '../engine/output.ts';
import { Stalled, TagsNotFound, UserError, tagsNotFoundLine } from '../errors.ts';
import { BOUND_BY_SIZE, boundFor, job } from '../job.ts';
import type { FoundTags } from '../metadata.ts';
import { formatBytes, formatSeconds, progressText, type StallLimit } from '../progress.ts';
import { familiar } from '../reference.ts';
import type { SaveRun } from './run.ts';
import { writeLogged } from './run.ts';
import { distinct, requireReferences, savedImages, type Saved } from './saved.ts';
import { imagesTable, missingReport, taggedReferences } from './tag-reports.ts';
import { engineName } from './tags.ts';

export async function saveFromEngine(run: SaveRun, wanted: FoundTags): Promise<Saved> {
  const { inputs, engine } = run;
  const inspected = await checkTags(run, wanted.tags);
  const tags = wanted.tags.filter((tag) => inspected.found.has(tag));
  const warnings = await missingTags(run, wanted.tags, inspected);

  const platformArgs = await platformArguments(run);
  const kind = await engine.kind();
  const imageBytes = [...inspected.found.values()].reduce((sum, image) => sum + image.size, 0);
  if (inputs.stepTimeoutMs === undefined) job.bound(boundFor(imageBytes), BOUND_BY_SIZE);
  const stall = engineStall(`\`${inputs.engine} save\``, imageBytes);
  const tarball = await writeLogged(run, {
    title: `${inputs.engine} save ${tags.length} tag${tags.length === 1 ? '' : 's'} → ${shown(run.file)}`,
    phase: 'save + verify + compress',
    source: () => {
      // Each with its tag: `docker save app` would save every tag of app.
      const command = engine.start(['save', ...platformArgs, ...tags.map(familiar)]);
      return { stream: command.stdout, decode: [], finished: command.done, stop: command.kill, phase: 'save', stall };
    },
    canonical: {
      select: (report) => selectReferences(report, tags),
      platform: inputs.platform,
      maxImageBytes: inputs.maxImageBytes,
    },
    firstByteMs: stall.firstMs,
  }).catch((error: unknown) => {
    throw inputs.platform ? platformProblem(error, { platform: inputs.platform, tags, found: inspected.found }) : error;
  });
  try {
    requireReferences(tarball.report, tags, `the tarball ${inputs.engine} save wrote`);
    // Saved for one platform, the tarball names that platform's manifest, not the index the tag names: whether the tag
    // moved is then asked of the engine again.
    const after = inputs.platform ? (await engine.inspect(tags)).found : undefined;
    const images = savedImages(tarball.selections, tags, { before: inspected.found, after }, kind);
    return { tarball, tags, imageIds: distinct(images.map((image) => image.imageId)), images, warnings };
  } catch (error) {
    await rm(tarball.file, { force: true });
    throw error;
  }
}

/** Every tag, asked of the engine in its own log group. */
async function checkTags(run: SaveRun, tags: readonly string[]): Promise<InspectResult> {
  const where = engineName(run);
  return core.group(`Check the tags exist in ${where}`, async () => {
    const result = await run.engine.inspect(tags);
    for (const [tag, image] of result.found) {
      core.info(`  ${tag}  ${image.id}  ${image.platform}  ${formatBytes(image.size)}`);
    }
    for (const tag of result.missing) core.info(`  ${tag}  (not in ${where})`);
    return result;
  });
}

/**
 * Tags the engine does not have: the step fails with the engine's images and what was meant, or, with
 * `if-missing: warn` and some found, warns; returns the warnings for the summary.
 */
async function missingTags(run: SaveRun, tags: readonly string[], inspected: InspectResult): Promise<string[]> {
  const { missing } = inspected;
  if (missing.length === 0) return [];
  const where = engineName(run);
  const rows = await run.engine.listImages();
  const references = taggedReferences(rows);
  const { details, hint } = missingReport(missing, { where, references, table: imagesTable(rows, missing) });
  const found = { missing, total: tags.length, where, hint };
  if (run.inputs.ifMissing === 'error' || inspected.found.size === 0) {
    throw new TagsNotFound(
      found,
      'nothing was saved. Its images are listed above: build with `load: true` and the same tags' +
        `${run.inputs.ifMissing === 'warn' ? '' : ', or set `if-missing: warn` to save the tags that exist'}.`,
      details,
    );
  }
  core.startGroup(`${where}: missing tags`);
  for (const detail of details) core.info(detail);
  core.endGroup();
  const line = tagsNotFoundLine(found);
  core.warning(`${line}; saving the ${inspected.found.size} that exist.`);
  return [line];
}

/**
 * `docker save --platform` of a platform an image lacks fails with the engine's words ("no suitable export target
 * found for platform …"); the user also needs to hear which platform the image does have.
 */
export function platformProblem(
  error: unknown,
  asked: { platform: string; tags: readonly string[]; found: ReadonlyMap<string, ImageInfo> },
): unknown {
  if (!(error instanceof EngineError) || !/platform/i.test(error.message)) return error;
  const { platform, tags, found } = asked;
  const has = tags.map((tag) => `${tag} is ${found.get(tag)?.platform || 'of an unknown platform'}`).join(', ');
  return new UserError(
    `\`platform\` ${platform} is not in the image: expected a platform the image has (${has}), found ` +
      `${error.message.replace(/\.$/, '')}; nothing was uploaded. Remove \`platform\` to save the whole image, or build ` +
      `${platform} into it.`,
  );
}

async function platformArguments(run: SaveRun): Promise<string[]> {
  const { inputs, engine } = run;
  if (!inputs.platform) return [];
  if (inputs.engine === 'podman') {
    throw new UserError(
      '`platform` needs a `save --platform`, which podman does not have: expected no `platform` with `engine: podman`, ' +
        `found ${inputs.platform}. Remove it, or build the one platform you want with \`podman build --platform\`.`,
    );
  }
  const { version, api } = await engine.serverVersion();
  if (!ContainerEngine.apiAtLeast(api, 1, 48)) {
    throw new UserError(
      `Input \`platform\` needs \`docker save --platform\`, which Docker engines with API 1.48+ (Docker 28+) have; ` +
        `this engine is Docker ${version} (API ${api}). Remove \`platform\` (a single-platform image is saved whole) or upgrade the engine.`,
    );
  }
  return ['--platform', inputs.platform];
}

/**
 * How long `docker save` may go without writing a byte: the stall timeout, and before its first byte also the time an
 * engine takes to export layers before it writes anything (Docker 20.10 does that first), at 50 MB/s of image.
 */
function engineStall(what: string, imageBytes: number): StallLimit {
  return {
    ms: job.stallMs,
    firstMs: job.stallMs + Math.ceil(imageBytes / 50e6) * 1000,
    stalled: (waited, bytes) =>
      new Stalled(
        `${what} wrote nothing for ${formatSeconds(waited)} ${progressText(bytes)}: the engine is stuck; nothing was uploaded. ` +
          'Check the engine (`docker info`, its log), then re-run the job; `stall-timeout` sets how long to wait.',
      ),
  };
}
