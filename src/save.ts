/**
 * Save mode: the tags metadata-action generated → checked in the engine → one streamed `docker save` through
 * verification, compression and hashing → one raw artifact.
 */
import * as core from '@actions/core';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startUpload, transfersInSeries, uploadFile, type StreamedUpload, type UploadedArtifact } from './artifact.ts';
import { selectReferences, type CanonicalOptions, type Selection } from './archive/canonical.ts';
import type { ArchiveReport } from './archive/inspect.ts';
import { TarballSuffix } from './constants.ts';
import { ContainerEngine, EngineError, type EngineKind, type ImageInfo, type ImageRow } from './docker.ts';
import { Stalled, UserError } from './errors.ts';
import { BOUND_BY_SIZE, boundFor, job } from './job.ts';
import type { Inputs } from './inputs.ts';
import { mostRelevant, moreLine } from './listing.ts';
import {
  adviceForInvalidTags,
  findTags,
  problemsWithSaveTags,
  referencesSeparatedByWhiteSpace,
  type FoundTags,
} from './metadata.ts';
import { PhaseTimer, formatBytes, progressText, type StallLimit } from './progress.ts';
import { idsOf, imageIdOn } from './image.ts';
import { holdsPlatform } from './platform.ts';
import { familiar, qualify } from './reference.ts';
import { suggest } from './suggest.ts';
import { shown, shownList, tokenList } from './display.ts';
import { describeImages, writeSummary } from './summary.ts';
import { openTarball, writeTarball, type TarballSource, type WrittenTarball } from './tarball.ts';

export async function save(inputs: Inputs): Promise<void> {
  const timer = new PhaseTimer();
  const engine = new ContainerEngine(inputs.engine);
  const wanted = await core.group('Image tags', async () => wantedTags(inputs, engine));
  const file = path.resolve(inputs.path, inputs.name + TarballSuffix[inputs.compression]);

  // The upload starts once the tags are known to exist and runs alongside the save, fed the bytes as they are
  // written; the artifact is finalized only after the last check below has passed, and deleted when one fails.
  const uploadOptions = { retentionDays: inputs.retentionDays, overwrite: inputs.overwrite };
  let streamed: StreamedUpload | undefined;
  // How long the upload may wait for the save's first bytes: longer for a large image (engineStall).
  let firstByteMs = job.stallMs;
  let stopUpload: () => void = () => undefined;
  let uploadStarted = 0;
  const beginUpload =
    inputs.upload && !transfersInSeries()
      ? async (patience?: number) => {
          firstByteMs = patience ?? firstByteMs;
          uploadStarted = Date.now();
          streamed = await startUpload(inputs.name, uploadStaging(), { ...uploadOptions, firstByteMs });
          const upload = streamed;
          if (upload) stopUpload = job.onStop('ending the upload without finalizing it', () => upload.abandon());
          return upload && ((partial: string) => upload.follow(partial));
        }
      : undefined;
  let saved: Saved;
  try {
    saved = inputs.source
      ? await saveFromSource(inputs, engine, inputs.source, wanted, file, timer, beginUpload)
      : await saveFromEngine(inputs, engine, wanted!, file, timer, beginUpload);
  } catch (error) {
    await streamed?.abandon();
    throw error;
  }

  let artifact: UploadedArtifact | undefined;
  if (inputs.upload) {
    const upload = streamed;
    artifact = await core.group(`Upload artifact ${inputs.name}`, async () => {
      if (!upload) {
        return timer.time(
          'upload',
          () => uploadFile(saved.tarball.file, inputs.name, { ...uploadOptions, digest: saved.tarball.digest }),
          (up) => up.size,
        );
      }
      // The phase is what the upload adds after the save; the log also says how long it ran in all.
      const ended = Date.now();
      const uploaded = await upload.finish(saved.tarball).finally(stopUpload);
      timer.record('upload, after the save', ended, uploaded.size);
      core.info(
        `The upload ran alongside the save: ${seconds(Date.now() - uploadStarted)} in all, ` +
          `${seconds(Date.now() - ended)} after the save ended.`,
      );
      return uploaded;
    });
    core.info(
      `Uploaded artifact ${artifact.name} (id ${artifact.id}, ${formatBytes(artifact.size)}, ${artifact.digest})`,
    );
  } else {
    core.info(`upload is false: the tarball stays at ${shown(saved.tarball.file)} for you to upload.`);
  }

  const { tarball, tags, imageIds } = saved;
  core.setOutput('tags', tags.join('\n'));
  core.setOutput('image-id', imageIds.join('\n'));
  core.setOutput('tarball', tarball.file);
  core.setOutput('digest', tarball.digest);
  core.setOutput('size', String(tarball.size));
  core.setOutput('artifact-id', artifact ? String(artifact.id) : '');
  core.setOutput('artifact-name', artifact ? artifact.name : '');
  core.setOutput('format', tarball.format);
  core.setOutput('platforms', tarball.report.platforms.join('\n'));

  await writeSummary({
    title: `Saved ${tags.length} image tag${tags.length === 1 ? '' : 's'}`,
    images: saved.images,
    facts: [
      ['artifact', artifact ? `${artifact.name} (id ${artifact.id})` : 'not uploaded (upload: false)'],
      ['file', tarball.file],
      ['digest', tarball.digest],
      [
        'size',
        `${formatBytes(tarball.size)} (${formatBytes(tarball.tarBytes)} before ${inputs.compression} compression)`,
      ],
      ['format', tarball.format],
    ],
    timer,
    warnings: [...saved.warnings, ...tarball.report.warnings],
  });
}

interface Saved {
  tarball: WrittenTarball;
  tags: string[];
  imageIds: string[];
  images: Array<{ reference: string; imageId: string; platform: string }>;
  warnings: string[];
}

/** The tags to save, validated; undefined only when saving a source tarball with no tags named (all of it). */
/**
 * The tags to save, validated before any of them is printed; undefined only when saving a source tarball with no
 * tags named (all of it).
 */
async function wantedTags(inputs: Inputs, engine: ContainerEngine): Promise<FoundTags | undefined> {
  let found: FoundTags;
  try {
    found = findTags({ tagsInput: inputs.tags, metadataInput: inputs.metadata, env: process.env });
  } catch (error) {
    if (inputs.source && error instanceof UserError && error.message.startsWith('No image tags to save')) {
      core.info(`No tags given: saving every reference in ${shown(inputs.source)}.`);
      return undefined;
    }
    throw error;
  }
  if (inputs.source) await rejectInvalid(found.tags, found.source, async () => [], 'the tarball');
  else {
    const available = async () => taggedReferences(await engine.listImages());
    await rejectInvalid(found.tags, found.source, available, engineName(inputs));
  }
  core.info(`From ${found.source}:`);
  for (const tag of found.tags) core.info(`  ${tag}`);
  return found;
}

function engineName(inputs: Inputs): string {
  return `the ${inputs.engine} engine`;
}

/**
 * Fails on invalid references, before anything is saved: every one of them named in the line and explained in the
 * details, with the engine's images, what was probably meant, and advice that fits where the tags came from.
 */
async function rejectInvalid(
  tags: readonly string[],
  source: string,
  available: () => Promise<string[]>,
  where: string,
): Promise<void> {
  const problems = problemsWithSaveTags(tags);
  if (problems.length === 0) return;
  const invalid = tags.filter((tag) => problemsWithSaveTags([tag]).length > 0);
  const references = await available().catch(() => []);
  const hints: string[] = [];
  for (const tag of invalid) {
    // Several references run together are not a misspelling of one of them.
    const hint = referencesSeparatedByWhiteSpace(tag) ? undefined : suggest(tag, references);
    if (hint) hints.push(`${shown(tag)} → did you mean \`${hint.reference}\`? (${hint.why})`);
  }
  const { shown: listed, more } = mostRelevant(references, (reference) => reference, invalid);
  const details = [
    ...problems.map((problem) => `invalid: ${problem}`),
    ...(references.length > 0
      ? [`${where} has:`, ...listed.map((reference) => `  ${reference}`), ...moreLine(more)]
      : []),
    ...hints,
  ];
  const which = invalid.length === 1 ? problems[0] : `${shownList(invalid)} (each explained above)`;
  const first = hints[0] ? `; ${hints[0]}` : '';
  throw new UserError(
    `${invalid.length} of ${tags.length} image reference${tags.length === 1 ? '' : 's'} from ${source} ` +
      `${invalid.length === 1 ? 'is' : 'are'} invalid: ${which}${first}. ${adviceForInvalidTags(invalid, source)}`,
    details,
  );
}

/** The references of the engine's tagged images (untagged ones list as `<none>:<none>`). */
function taggedReferences(rows: readonly ImageRow[]): string[] {
  return rows.map((row) => row.reference).filter((reference) => !reference.includes('<none>'));
}

/** The engine's images as `docker image ls` shows them, those of the repositories of `wanted` first, capped. */
function imagesTable(rows: readonly ImageRow[], wanted: readonly string[]): string[] {
  const { shown: listed, more } = mostRelevant(rows, (row) => row.reference, wanted);
  const header: ImageRow = { reference: 'REPOSITORY:TAG', id: 'IMAGE ID', created: 'CREATED', size: 'SIZE' };
  const all = [header, ...listed];
  const width = (key: keyof ImageRow) => Math.max(...all.map((row) => row[key].length));
  const [w1, w2, w3] = [width('reference'), width('id'), width('created')];
  return [
    ...all.map((row) => `  ${row.reference.padEnd(w1)}  ${row.id.padEnd(w2)}  ${row.created.padEnd(w3)}  ${row.size}`),
    ...moreLine(more),
  ];
}

/** The debug output users need when a tag is missing: the missing tags, everything there is, and what was meant. */
function missingReport(missing: readonly string[], available: readonly string[], table: string[], where: string) {
  const hints = missing.map((tag) => ({ tag, hint: suggest(tag, available) }));
  const details = [
    `Missing from ${where}:`,
    ...missing.map((tag) => `  ${tag}`),
    available.length > 0 ? `${where} has:` : `${where} has no tagged images at all.`,
    ...table,
    ...hints.map(({ tag, hint }) =>
      hint
        ? `did you mean \`${hint.reference}\` for \`${tag}\`? (${hint.why})`
        : `nothing in ${where} resembles \`${tag}\``,
    ),
  ];
  const firstHint = hints.find(({ hint }) => hint);
  const summary = firstHint?.hint ? ` (did you mean \`${firstHint.hint.reference}\`?)` : '';
  return { details, summary };
}

async function saveFromEngine(
  inputs: Inputs,
  engine: ContainerEngine,
  wanted: FoundTags,
  file: string,
  timer: PhaseTimer,
  beginUpload: BeginUpload | undefined,
): Promise<Saved> {
  const where = engineName(inputs);

  const inspected = await core.group(`Check the tags exist in ${where}`, async () => {
    const result = await engine.inspect(wanted.tags);
    for (const [tag, image] of result.found) {
      core.info(`  ${tag}  ${image.id}  ${image.platform}  ${formatBytes(image.size)}`);
    }
    for (const tag of result.missing) core.info(`  ${tag}  (not in ${where})`);
    return result;
  });
  const warnings: string[] = [];
  if (inspected.missing.length > 0) {
    const rows = await engine.listImages();
    const table = imagesTable(rows, inspected.missing);
    const { details, summary } = missingReport(inspected.missing, taggedReferences(rows), table, where);
    const line =
      `${inspected.missing.length} of ${wanted.tags.length} tags ${inspected.missing.length === 1 ? 'is' : 'are'} not in ${where}: ` +
      `${shownList(inspected.missing)}${summary}`;
    if (inputs.ifMissing === 'error' || inspected.found.size === 0) {
      throw new UserError(
        `${line}; nothing was saved. Its images are listed above: build with \`load: true\` and the same tags` +
          `${inputs.ifMissing === 'warn' ? '' : ', or set `if-missing: warn` to save the tags that exist'}.`,
        details,
      );
    }
    core.startGroup(`${where}: missing tags`);
    for (const detail of details) core.info(detail);
    core.endGroup();
    core.warning(`${line}; saving the ${inspected.found.size} that exist.`);
    warnings.push(line);
  }
  const tags = wanted.tags.filter((tag) => inspected.found.has(tag));

  const platformArgs = await platformArguments(inputs, engine);
  const kind = await engine.kind();
  const imageBytes = [...inspected.found.values()].reduce((sum, image) => sum + image.size, 0);
  if (inputs.stepTimeoutMs === undefined) job.bound(boundFor(imageBytes), BOUND_BY_SIZE);
  const stall = engineStall(`\`${inputs.engine} save\``, imageBytes);
  const tarball = await writeLogged(
    `${inputs.engine} save ${tags.length} tag${tags.length === 1 ? '' : 's'} → ${shown(file)}`,
    'save + verify + compress',
    () => {
      // Each with its tag: `docker save app` would save every tag of app.
      const command = engine.start(['save', ...platformArgs, ...tags.map(familiar)]);
      return {
        stream: command.stdout,
        decode: [],
        finished: command.done,
        stop: command.kill,
        phase: 'save',
        stall,
      };
    },
    {
      select: (report) => selectReferences(report, tags),
      platform: inputs.platform,
      maxImageBytes: inputs.maxImageBytes,
    },
    file,
    inputs,
    timer,
    beginUpload && (() => beginUpload(stall.firstMs)),
  ).catch((error: unknown) => {
    throw inputs.platform ? platformProblem(error, inputs.platform, tags, inspected.found) : error;
  });
  let images: SavedImage[];
  try {
    requireReferences(tarball.report, tags, `the tarball ${inputs.engine} save wrote`);
    // Saved for one platform, the tarball names that platform's manifest, not the index the tag names: whether the tag
    // moved is then asked of the engine again.
    const after = inputs.platform ? (await engine.inspect(tags)).found : undefined;
    images = savedImages(tarball.selections, tags, { before: inspected.found, after }, kind);
  } catch (error) {
    await removeQuietly(tarball.file);
    throw error;
  }
  return { tarball, tags, imageIds: distinct(images.map((image) => image.imageId)), images, warnings };
}

interface SavedImage {
  reference: string;
  imageId: string;
  platform: string;
}

/**
 * Each tag's image as the tarball holds it, whose ID is the `image-id` output. A tag that names another image than
 * the one checked moved between the check and the save (another step retagged it): the tarball is not what was asked.
 */
function savedImages(
  selections: readonly Selection[],
  tags: readonly string[],
  checked: { before: ReadonlyMap<string, ImageInfo>; after: ReadonlyMap<string, ImageInfo> | undefined },
  kind: EngineKind,
): SavedImage[] {
  const moved: string[] = [];
  const images = tags.map((tag) => {
    const selection = selections.find(({ references }) => references.some((one) => qualify(one) === qualify(tag)))!;
    const before = checked.before.get(tag)!;
    const now = checked.after ? checked.after.get(tag)?.id : undefined;
    if (checked.after ? now !== before.id : !idsOf(selection.image).includes(before.id))
      moved.push(`${shown(tag)} was ${before.id}, saved ${now ?? selection.image.digest}`);
    return { reference: tag, imageId: imageIdOn(kind, selection.image), platform: before.platform };
  });
  if (moved.length > 0) {
    throw new UserError(
      `${moved.length} tag${moved.length === 1 ? '' : 's'} named another image when saved than when checked (${moved.slice(0, 5).join('; ')}): ` +
        'another step retagged them meanwhile; nothing was uploaded. Run the job again, or keep other steps from tagging the image while this one runs.',
    );
  }
  return images;
}

/**
 * `docker save --platform` of a platform an image lacks fails with the engine's words ("no suitable export target
 * found for platform …"); the user also needs to hear which platform the image does have.
 */
function platformProblem(
  error: unknown,
  platform: string,
  tags: readonly string[],
  found: ReadonlyMap<string, ImageInfo>,
): unknown {
  if (!(error instanceof EngineError) || !/platform/i.test(error.message)) return error;
  const has = tags.map((tag) => `${tag} is ${found.get(tag)?.platform || 'of an unknown platform'}`).join(', ');
  return new UserError(
    `\`platform\` ${platform} is not in the image: expected a platform the image has (${has}), found ` +
      `${error.message.replace(/\.$/, '')}; nothing was uploaded. Remove \`platform\` to save the whole image, or build ` +
      `${platform} into it.`,
  );
}

async function platformArguments(inputs: Inputs, engine: ContainerEngine): Promise<string[]> {
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

async function saveFromSource(
  inputs: Inputs,
  engine: ContainerEngine,
  source: string,
  wanted: FoundTags | undefined,
  file: string,
  timer: PhaseTimer,
  beginUpload: BeginUpload | undefined,
): Promise<Saved> {
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
  const tarball = await writeLogged(
    `Verify and compress ${shown(sourcePath)} → ${shown(file)}`,
    'verify + compress',
    () => ({ stream: opened.stream, decode: opened.decode, phase: 'read source' }),
    {
      select: (report) => selectReferences(report, wanted?.tags),
      platform: inputs.platform,
      maxImageBytes: inputs.maxImageBytes,
    },
    file,
    inputs,
    timer,
    beginUpload,
  );
  if (inputs.platform && !holdsPlatform(tarball.report.platforms, inputs.platform)) {
    await removeQuietly(file);
    throw new UserError(
      `The \`source\` tarball has no image for \`platform\` ${inputs.platform}: it holds ${tokenList(tarball.report.platforms) || 'no platform'}; ` +
        'nothing was uploaded. Fix `platform`, or build that platform into the tarball.',
    );
  }
  const references = tarball.report.references;
  let tags = references;
  const warnings: string[] = [];
  if (wanted) {
    const present = new Set(references.map(qualify));
    const missing = wanted.tags.filter((tag) => !present.has(qualify(tag)));
    if (missing.length > 0) {
      const { shown: listed, more } = mostRelevant(references, (reference) => reference, missing);
      const table = [...listed.map((reference) => `  ${reference}`), ...moreLine(more)];
      const { details, summary } = missingReport(missing, references, table, 'the tarball');
      const line = `${missing.length} of ${wanted.tags.length} tags ${missing.length === 1 ? 'is' : 'are'} not in ${shown(sourcePath)}: ${shownList(missing)}${summary}`;
      if (inputs.ifMissing === 'error' || missing.length === wanted.tags.length) {
        await removeQuietly(file);
        throw new UserError(`${line}; nothing was uploaded. Its references are listed above.`, details);
      }
      core.warning(`${line}; the tarball is uploaded with the references it has.`);
      warnings.push(line);
    }
    tags = wanted.tags.filter((tag) => present.has(qualify(tag)));
  }
  // image-id names what this runner's engine would show once the artifact is loaded (README: Outputs).
  const kind = await engine.kind().catch(() => 'docker-containerd' as const);
  const images = tarball.selections.flatMap(({ image, references }) =>
    (references.length > 0 ? references : ['<untagged>']).map((reference) => ({
      reference,
      imageId: imageIdOn(kind, image),
      platform: image.platforms.map((one) => one.platform ?? '').join(', '),
    })),
  );
  return {
    tarball,
    tags,
    imageIds: distinct(tarball.selections.map(({ image }) => imageIdOn(kind, image))),
    images,
    warnings,
  };
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
        `${what} wrote nothing for ${seconds(waited)} ${progressText(bytes)}: the engine is stuck; nothing was uploaded. ` +
          'Check the engine (`docker info`, its log), then re-run the job; `stall-timeout` sets how long to wait.',
      ),
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Starts the artifact upload that follows the tarball as it is written, and returns what tells it the file to follow;
 * undefined when it cannot stream (it is then uploaded after the save).
 */
type BeginUpload = (firstByteMs?: number) => Promise<((partial: string) => void) | undefined>;

/** Where the upload's private staging directory lives: the runner's temporary directory, private to the job. */
function uploadStaging(): string {
  return process.env.RUNNER_TEMP || tmpdir();
}

async function removeQuietly(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** Writes the tarball in its own log group and timed phase, then logs what it holds. */
function writeLogged(
  title: string,
  phase: string,
  start: () => TarballSource,
  canonical: CanonicalOptions,
  file: string,
  inputs: Inputs,
  timer: PhaseTimer,
  beginUpload: BeginUpload | undefined,
): Promise<WrittenTarball> {
  return core.group(title, () =>
    timer.time(
      phase,
      async () => {
        const follow = await beginUpload?.();
        const written = await writeTarball(start, file, inputs.compression, inputs.compressionLevel, canonical, follow);
        logTarball(written, inputs);
        return written;
      },
      (written) => written.tarBytes,
    ),
  );
}

function logTarball(written: WrittenTarball, inputs: Inputs): void {
  const { report } = written;
  core.info(
    `${report.format} tarball: ${describeImages(report)}, ${report.blobs.length} blobs verified; written as ` +
      `${written.format}, ${formatBytes(written.tarBytes)} → ${formatBytes(written.size)} (${inputs.compression}), ${written.digest}`,
  );
  for (const warning of report.warnings) core.warning(warning);
}

/** The tarball must name every tag saved: proof the engine wrote what was asked. */
function requireReferences(report: ArchiveReport, tags: readonly string[], what: string): void {
  const present = new Set(report.references.map(qualify));
  const absent = tags.filter((tag) => !present.has(qualify(tag)));
  if (absent.length > 0) {
    throw new UserError(
      `${what} does not record ${shownList(absent)} (it records ${shownList(report.references) || 'no tags'}): ` +
        'the engine dropped tags; report this with the engine version.',
    );
  }
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}
