/**
 * Load mode: download the image artifact (this run or another), prove its bytes are the ones uploaded, verify
 * every blob, stream it into `docker load`, and confirm each expected tag now names the expected image.
 */
import * as core from '@actions/core';
import { rm, rmdir } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { downloadFile, listArtifactNames, type ArtifactLocation, type DownloadedArtifact } from './artifact.ts';
import { currentRun, loadLocation } from './context.ts';
import { compareDigests } from './digest.ts';
import { HashingStream, hashFile } from './archive/hash.ts';
import { createArchiveInspector, type ArchiveImage, type ArchiveReport } from './archive/inspect.ts';
import { createCanonicalWriter, selectReferences } from './archive/canonical.ts';
import { ContainerEngine, parseLoadOutput, type EngineKind, type InspectResult } from './docker.ts';
import { Stalled, UserError, messageOf } from './errors.ts';
import { BOUND_BY_SIZE, boundFor, job } from './job.ts';
import { lastLine } from './process.ts';
import { matchNames } from './glob.ts';
import { artifactNameProblem, type Inputs } from './inputs.ts';
import { splitTagList } from './metadata.ts';
import { PhaseTimer, ProgressMeter, formatBytes, progressText } from './progress.ts';
import { idsOf, imageIdOn, isSameImage, loadedPlatform } from './image.ts';
import { holdsPlatform } from './platform.ts';
import { familiar, qualify } from './reference.ts';
import { suggest } from './suggest.ts';
import { shown, shownList, token } from './display.ts';
import { describeImages, writeSummary, type SummaryImage } from './summary.ts';
import { inputProblem, openTarball, writeTarball, type OpenedTarball } from './tarball.ts';

/** A reference expected after loading, and the image in the tarball it must name. */
interface ExpectedImage extends SummaryImage {
  image: ArchiveImage;
}

/** What the action knows of the engine it loads into (or, with `load: false`, would). */
interface EngineFacts {
  kind: EngineKind;
  /** `os/architecture` of the engine, which decides the platform an engine without the containerd store loads. */
  platform: string | undefined;
}

/** An artifact downloaded and verified, with the references it is expected to give the engine. */
interface VerifiedArtifact {
  artifact: DownloadedArtifact;
  /** The artifact's digest and size: the file's, or for a zip artifact the zip's. */
  digest: string;
  size: number;
  report: ArchiveReport;
  images: ExpectedImage[];
}

interface LoadedArtifact {
  artifact: DownloadedArtifact;
  /** The artifact's digest and size: the file's, or for a zip artifact the zip's. */
  digest: string;
  size: number;
  report: ArchiveReport;
  /** The references now in the engine (or, with load: false, recorded in the tarball). */
  images: SummaryImage[];
}

export async function load(inputs: Inputs): Promise<void> {
  const timer = new PhaseTimer();
  const engine = new ContainerEngine(inputs.engine);
  // Fail before downloading anything when there is no engine to load into.
  const facts = inputs.load ? await engineFacts(engine) : await likelyEngine(engine);
  const { location, origin } = loadLocation(inputs, currentRun());
  core.info(`Artifacts of ${origin}`);
  const names = inputs.pattern ? await namesMatching(inputs.pattern, location) : [inputs.name];
  if (inputs.pattern && inputs.expectedDigest && names.length > 1) {
    throw new UserError(
      `\`expected-digest\` pins one artifact, but \`pattern\` ${token(inputs.pattern)} matches ${names.length} (${shownList(names)}): ` +
        'use `name` with `expected-digest`, or drop `expected-digest`.',
    );
  }

  const loaded: LoadedArtifact[] = [];
  if (inputs.load && names.length === 1) {
    // One artifact: read once, from the download into the engine; the engine can name nothing before the end of
    // the stream, and that end is written only after the digest and every blob have been checked.
    const artifact = await download(names[0]!, inputs, location, timer);
    loaded.push(await loadArtifact({ artifact }, inputs, engine, facts, timer));
  } else {
    // Several: every one is downloaded and verified before the engine receives anything.
    const verified: VerifiedArtifact[] = [];
    for (const name of names) verified.push(await fetchAndVerify(name, inputs, facts, location, timer));
    for (const item of verified) {
      loaded.push(inputs.load ? await loadArtifact(item, inputs, engine, facts, timer) : item);
    }
  }

  const images = loaded.flatMap((item) => item.images);
  // Several artifacts of a `pattern` may hold one tag; the output names it once.
  const tags = [
    ...new Set(images.map((image) => image.reference).filter((reference) => !reference.startsWith('sha256:'))),
  ];
  core.setOutput('tags', tags.join('\n'));
  core.setOutput('image', tags[0] ?? '');
  core.setOutput('image-id', [...new Set(images.map((image) => image.imageId))].join('\n'));
  core.setOutput('tarball', loaded.map((item) => item.artifact.file).join('\n'));
  core.setOutput('digest', loaded.map((item) => item.digest).join('\n'));
  core.setOutput('size', loaded.map((item) => String(item.size)).join('\n'));
  core.setOutput('artifact-id', loaded.map((item) => String(item.artifact.id)).join('\n'));
  core.setOutput('artifact-name', loaded.map((item) => item.artifact.name).join('\n'));
  core.setOutput('format', [...new Set(loaded.map((item) => item.report.format))].join('\n'));
  core.setOutput('platforms', [...new Set(loaded.flatMap((item) => item.report.platforms))].join('\n'));

  await writeSummary({
    title: inputs.load
      ? `Loaded ${tags.length} image tag${tags.length === 1 ? '' : 's'}`
      : `Downloaded and verified ${loaded.length} image tarball${loaded.length === 1 ? '' : 's'} (not loaded)`,
    images,
    facts: loaded.flatMap((item) => [
      ['artifact', `${item.artifact.name} (id ${item.artifact.id})`],
      ['file', item.artifact.file],
      ['digest', item.digest],
      ['size', formatBytes(item.size)],
      ['format', item.report.format],
    ]) as Array<[string, string]>,
    timer,
    warnings: loaded.flatMap((item) => item.report.warnings),
  });
}

async function namesMatching(pattern: string, location: ArtifactLocation): Promise<string[]> {
  const all = await listArtifactNames(location);
  const names = matchNames(pattern, all);
  if (names.length === 0) {
    throw new UserError(
      `No artifact matches \`pattern\` ${token(pattern)}: expected at least one, found ${all.length === 0 ? 'no artifacts at all' : shownList(all)} ` +
        `in ${location.runId ? `run ${location.runId}` : 'this run'}; check the save step's \`name\`.`,
    );
  }
  for (const name of names) {
    // Names another uploader chose: the library prints them in lines of its own.
    const problem = artifactNameProblem(name);
    if (problem) {
      throw new UserError(
        `The artifact ${shown(name)}, which \`pattern\` ${token(pattern)} matches, ${problem}; nothing was downloaded: ` +
          'narrow `pattern` to the artifacts the save steps made.',
      );
    }
  }
  core.info(`pattern ${token(pattern)} matches: ${shownList(names)}`);
  return names;
}

async function engineFacts(engine: ContainerEngine): Promise<EngineFacts> {
  const { version, api } = await engine.serverVersion();
  const [kind, platform] = await Promise.all([engine.kind(), engine.platform()]);
  const store = kind === 'docker-containerd' ? 'containerd image store' : kind === 'podman' ? '' : 'graph driver';
  core.info(`${engine.command} engine ${version} (API ${api}${store ? `, ${store}` : ''}, ${platform})`);
  return { kind, platform };
}

/**
 * With `load: false` no engine is needed, but `image-id` still names what this runner's engine would show: the
 * engine is asked when one answers, else the containerd image store is assumed (ubuntu-latest's Docker 29).
 */
async function likelyEngine(engine: ContainerEngine): Promise<EngineFacts> {
  try {
    const [kind, platform] = await Promise.all([engine.kind(), engine.platform()]);
    return { kind, platform };
  } catch {
    return { kind: engine.command === 'podman' ? 'podman' : 'docker-containerd', platform: undefined };
  }
}

async function download(
  name: string,
  inputs: Inputs,
  location: ArtifactLocation,
  timer: PhaseTimer,
): Promise<DownloadedArtifact> {
  const started = Date.now();
  const artifact = await core.group(`Download artifact ${name}`, () => downloadFile(name, inputs.path, location));
  job.onStop('removing the download', () => discard(artifact.file));
  if (inputs.stepTimeoutMs === undefined) job.bound(boundFor(artifact.size), BOUND_BY_SIZE);
  artifact.downloaded.then(
    () => timer.record(`download ${name}`, started, artifact.size),
    () => undefined,
  );
  core.info(
    `${shown(artifact.file)} (${formatBytes(artifact.size)})${artifact.arriving ? ': verified as it arrives' : ''}`,
  );
  return artifact;
}

/** The download's own failure when it has already failed, without waiting for one still under way. */
async function failedAlready(artifact: DownloadedArtifact): Promise<unknown> {
  let failure: unknown;
  artifact.downloaded.catch((error: unknown) => (failure = error));
  // Once the promise jobs already due have run, a settled download has said how.
  await new Promise((resolve) => setImmediate(resolve));
  return failure;
}

/** The download's own failure, once it has ended: the cause of whatever failed while it was under way. */
async function downloadFailure(artifact: DownloadedArtifact): Promise<unknown> {
  return artifact.downloaded.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * Downloads an artifact and verifies it in one read: its digest, then every blob. With `load: false` the same read
 * writes the canonical plain tar handed on to scanners (Trivy, Grype), kept only when everything verified.
 */
async function fetchAndVerify(
  name: string,
  inputs: Inputs,
  facts: EngineFacts,
  location: ArtifactLocation,
  timer: PhaseTimer,
): Promise<VerifiedArtifact> {
  const artifact = await download(name, inputs, location, timer);
  const copy = !inputs.load && inputs.decompress ? `${artifact.file}.tar` : undefined;
  const wanted = splitTagList(inputs.tags);
  const { digest, report } = await core.group(`Verify ${name}`, () =>
    timer.time(
      `verify ${name}`,
      async () => {
        try {
          const opened = await openHashed(artifact, copy);
          const verified = copy
            ? await verifyAndCopy(opened, copy, artifact, { ...inputs, tags: wanted })
            : await verifyOnly(opened, artifact, inputs);
          logVerified(verified.report, opened.compression);
          return verified;
        } catch (error) {
          const cause = (await downloadFailure(artifact)) ?? (await causeOf(error, artifact, inputs.expectedDigest));
          await discard(artifact.file);
          throw cause;
        }
      },
      () => artifact.size,
    ),
  );
  const images = expectedImages(report, wanted, name, facts);
  const size = artifactSize(artifact);
  if (inputs.load) return { artifact, digest, size, report, images };
  const handedOn = copy ?? artifact.file;
  core.info(`load is false: the verified tarball is handed on as the \`tarball\` output: ${handedOn}`);
  return { artifact: { ...artifact, file: handedOn }, digest, size, report, images };
}

/** A download opened for one read that also hashes it: `hasher` holds the file's digest once the read is over. */
interface HashedTarball extends OpenedTarball {
  hasher: HashingStream;
}

/** `copy`: the plain tar the read also writes, whose free disk caps the decompression. */
async function openHashed(artifact: DownloadedArtifact, copy?: string): Promise<HashedTarball> {
  const opened = await openTarball(
    artifact.file,
    `The artifact ${shown(artifact.name)}`,
    copy === undefined ? undefined : path.dirname(copy),
    artifact.arriving ? { complete: artifact.downloaded, expectedSize: artifact.size } : undefined,
  );
  const hasher = new HashingStream();
  return { ...opened, decode: [hasher, ...opened.decode], hasher };
}

/**
 * The artifact's digest, from the file's: a zip artifact's digest is the zip's, taken as it downloaded, and
 * `expected-digest` is held to it, not to the tarball extracted from it.
 */
function artifactDigest(artifact: DownloadedArtifact, fileDigest: string): string {
  return artifact.zip ? artifact.zip.digest : fileDigest;
}

/** The artifact's size: the file's, or for a zip artifact the zip's, as downloaded. */
function artifactSize(artifact: DownloadedArtifact): number {
  return artifact.zip?.size ?? artifact.size;
}

/**
 * The artifact's digest against the one the artifact service recorded and `expected-digest`: the error when one
 * differs, else the line to log.
 */
function compareArtifactDigest(
  artifact: DownloadedArtifact,
  digest: string,
  expectedDigest: string | undefined,
): { mismatch: UserError | undefined; line: string } {
  const { zip } = artifact;
  const recorded = zip ? zip.recordedDigest : artifact.recordedDigest;
  const { mismatches, line } = compareDigests(
    { actual: digest, recorded, expected: expectedDigest },
    zip ? 'sha256 of the zip' : 'sha256',
  );
  if (mismatches.length === 0) return { mismatch: undefined, line };
  const mismatch = new UserError(
    `The downloaded artifact ${shown(artifact.name)}${zip ? ' (a zip)' : ''} hashes to ${digest}, but ${mismatches.join(' and ')}: ` +
      (zip
        ? "it was replaced since, or `expected-digest` is not this artifact's digest: for a zip it takes the zip's " +
          "digest (upload-artifact's `artifact-digest` output), not the tarball's. Nothing was loaded."
        : 'the bytes are not the ones uploaded (corrupted or replaced); nothing was loaded. Run the save job again.'),
  );
  return { mismatch, line };
}

function checkDigest(artifact: DownloadedArtifact, digest: string, expectedDigest: string | undefined): void {
  const { mismatch, line } = compareArtifactDigest(artifact, digest, expectedDigest);
  if (mismatch) throw mismatch;
  core.info(line);
}

function logVerified(report: ArchiveReport, compression: OpenedTarball['compression']): void {
  core.info(
    `${report.format} (${compression === 'none' ? 'uncompressed' : compression}): ${describeImages(report)}, ` +
      `${report.blobs.length} blobs verified, references: ${shownList(report.references) || 'none'}`,
  );
  for (const warning of report.warnings) core.warning(warning);
}

/** What a verification holds an artifact to, from the inputs. */
interface Checks {
  expectedDigest: string | undefined;
  maxImageBytes: number;
}

async function verifyOnly(
  opened: HashedTarball,
  artifact: DownloadedArtifact,
  { expectedDigest, maxImageBytes }: Checks,
): Promise<{ digest: string; report: ArchiveReport }> {
  const inspector = createArchiveInspector({ maxImageBytes });
  try {
    await pipeline([opened.stream, ...opened.decode, new ProgressMeter('verify'), inspector.stream]);
  } catch (error) {
    throw error instanceof UserError ? error : (inputProblem(error) ?? error);
  }
  const digest = artifactDigest(artifact, opened.hasher.digest());
  checkDigest(artifact, digest, expectedDigest);
  return { digest, report: await inspector.report };
}

/** Verifies and writes the canonical plain tar in one read; the copy is left behind only when everything verified. */
async function verifyAndCopy(
  opened: HashedTarball,
  copy: string,
  artifact: DownloadedArtifact,
  { tags, expectedDigest, maxImageBytes }: Checks & { tags: readonly string[] },
): Promise<{ digest: string; report: ArchiveReport }> {
  let digest = '';
  const written = await writeTarball(
    () => ({ stream: opened.stream, decode: opened.decode, phase: 'verify' }),
    copy,
    'none',
    undefined,
    {
      select: (report) => selectReferences(report, tags.length > 0 ? tags : undefined),
      maxImageBytes,
      beforeEnd: async () => {
        digest = artifactDigest(artifact, opened.hasher.digest());
        checkDigest(artifact, digest, expectedDigest);
      },
    },
  );
  core.info(`Written as verified, decompressed: ${shown(copy)}`);
  return { digest, report: written.report };
}

/**
 * The cause of a read that failed: when the file is not the one uploaded, that is the cause, whatever broke first
 * (a layer that no longer matches, a zstd frame that no longer decodes); the digest is only known at the end of a
 * read, so the rest of the file is hashed for it.
 */
async function causeOf(error: unknown, artifact: DownloadedArtifact, expectedDigest: string | undefined) {
  if (!(error instanceof UserError) || (!artifact.recordedDigest && !expectedDigest)) return error;
  const { digest } = await hashFile(artifact.file).catch(() => ({ digest: undefined }));
  if (digest === undefined) return error;
  return compareArtifactDigest(artifact, artifactDigest(artifact, digest), expectedDigest).mismatch ?? error;
}

/** A download that failed verification is not left on the runner for a later step to pick up by mistake. */
async function discard(file: string): Promise<void> {
  await rm(file, { force: true });
  // The directory the download was made in, when nothing else is in it.
  await rmdir(path.dirname(file)).catch(() => undefined);
}

/**
 * Streams the canonical archive of an artifact into the engine, then confirms every expected tag names the image the
 * tarball holds. The archive is verified as it streams, the digest too when `item` was not verified before (one
 * artifact: one read); the engine can name no image before the last byte, which follows the last check. When the
 * load fails, or the check after it, the tags it moved are put back.
 */
async function loadArtifact(
  item: { artifact: DownloadedArtifact; digest?: string; images?: ExpectedImage[] },
  inputs: Inputs,
  engine: ContainerEngine,
  facts: EngineFacts,
  timer: PhaseTimer,
): Promise<LoadedArtifact> {
  const { artifact } = item;
  const wanted = splitTagList(inputs.tags);
  let opened: HashedTarball;
  try {
    opened = await openHashed(artifact);
  } catch (error) {
    // Not an image tarball at all: the rest is not worth downloading, and nothing of it stays on the runner.
    const failed = await failedAlready(artifact);
    artifact.abort();
    await artifact.downloaded.catch(() => undefined);
    await discard(artifact.file);
    throw failed ?? error;
  }
  let expected = item.images ?? [];
  // What the expected tags named before the engine could name anything: taken just before the archive's end.
  let before: InspectResult | undefined;
  let digest = '';
  const writer = createCanonicalWriter({
    select: (report) => selectReferences(report, wanted.length > 0 ? wanted : undefined),
    maxImageBytes: inputs.maxImageBytes,
    platform: facts.platform,
    requireManifest: facts.kind === 'docker-graphdriver',
    beforeEnd: async (report) => {
      digest = artifactDigest(artifact, opened.hasher.digest());
      if (!item.images) {
        checkDigest(artifact, digest, inputs.expectedDigest);
        logVerified(report, opened.compression);
        expected = expectedImages(report, wanted, artifact.name, facts);
      }
      before = await engine.inspect(referencesOf(expected));
    },
  });
  // Registered before `docker load` starts, so that a stop stops the engine's load first, then puts the tags back.
  const putBackOnStop = job.onStop('putting back the tags the load had moved', () =>
    before ? putBack(engine, referencesOf(expected), before) : undefined,
  );
  const output = await core.group(`${inputs.engine} load ${artifact.name}`, async () => {
    try {
      return await timer.time(
        `${item.images ? 'load' : 'verify + load'} ${artifact.name}`,
        () => loadIntoEngine(opened, engine, writer),
        () => artifact.size,
      );
    } catch (error) {
      const rejected = await writer.result.then(
        () => false,
        () => true,
      );
      let cause = (await downloadFailure(artifact)) ?? error;
      if (rejected && !item.images) {
        if (cause === error) cause = await causeOf(error, artifact, inputs.expectedDigest);
        await discard(artifact.file);
      }
      // Before the archive's end the engine could name nothing: there is nothing to put back.
      throw before ? await afterFailedLoad(cause, engine, referencesOf(expected), before) : cause;
    }
  });
  const { report } = await writer.result;
  const images = await core
    .group(`Check what ${inputs.engine} now has`, () => checkLoaded(output, expected, before!, engine, facts, inputs))
    .finally(putBackOnStop);
  return { artifact, digest: item.digest ?? digest, size: artifactSize(artifact), report, images };
}

function referencesOf(expected: readonly ExpectedImage[]): string[] {
  return expected.map((image) => image.reference).filter((reference) => !reference.startsWith('sha256:'));
}

/** Every expected tag must name the image of the tarball; when one does not, the tags are put back. */
async function checkLoaded(
  output: string,
  expected: readonly ExpectedImage[],
  before: InspectResult,
  engine: ContainerEngine,
  facts: EngineFacts,
  inputs: Inputs,
): Promise<SummaryImage[]> {
  const loaded = parseLoadOutput(output);
  for (const reference of loaded.references) core.info(`Loaded image: ${reference}`);
  for (const id of loaded.ids) core.info(`Loaded image ID: ${id}`);
  const tagged = expected.filter((image) => !image.reference.startsWith('sha256:'));
  const references = tagged.map((image) => image.reference);
  const now = await engine.inspect(references);
  const wrong: string[] = [];
  for (const image of tagged) {
    const actual = now.found.get(image.reference);
    if (!actual) wrong.push(`${image.reference} is not in the engine`);
    else if (!isSameImage(image.image, actual, facts.kind))
      wrong.push(`${image.reference} is ${actual.id}, expected ${idsOf(image.image).join(' or ')}`);
    else {
      const previous = before.found.get(image.reference);
      if (previous && previous.id !== actual.id) {
        core.warning(`${image.reference} pointed to ${previous.id} before this load; it now names ${actual.id}.`);
      }
      core.info(`${image.reference}  ${actual.id}  ${actual.platform}`);
    }
  }
  if (wrong.length > 0) {
    const restored = await engine.restoreTags(references, before.found);
    throw new UserError(
      `After ${inputs.engine} load, ${wrong.length} of ${tagged.length} tags do not name the image in the tarball: ` +
        `${boundedList(wrong)}. ${restored} Another step may have retagged them; load again, or check the engine.`,
    );
  }
  const unusable = facts.kind === 'docker-containerd' ? await unusableImages(tagged, engine, facts) : [];
  if (unusable.length > 0) {
    const restored = await engine.restoreTags(references, before.found);
    throw new UserError(
      `After ${inputs.engine} load, the engine cannot use ${boundedList(unusable)}, though every check of the tarball ` +
        `passed. ${restored} Check the engine (its disk, its log), then load again.`,
    );
  }
  return expected.map((image) => {
    const actual = now.found.get(image.reference);
    return actual ? { ...image, imageId: actual.id, platform: actual.platform || image.platform } : image;
  });
}

/**
 * The images of the engine's platform that it cannot make a container of, with its reason. The containerd image store
 * unpacks an image's layers as it loads it and reports a failure only as a line of output: a container made and
 * removed at once is the proof that it did.
 */
async function unusableImages(
  tagged: readonly ExpectedImage[],
  engine: ContainerEngine,
  facts: EngineFacts,
): Promise<string[]> {
  const probed = new Set<string>();
  const unusable: string[] = [];
  for (const image of tagged) {
    const runsHere = image.image.platforms.some((one) => holdsPlatform([one.platform ?? ''], facts.platform ?? ''));
    if (!runsHere || probed.has(image.image.digest)) continue;
    probed.add(image.image.digest);
    const problem = await engine.usable(image.reference);
    if (problem) unusable.push(`${image.reference} (${shown(problem)})`);
  }
  return unusable;
}

/** At most a few of `items`, then how many more. */
function boundedList(items: readonly string[], max = 5): string {
  return items.length > max ? `${items.slice(0, max).join('; ')} … and ${items.length - max} more` : items.join('; ');
}

/** A load that failed half way: says exactly which of the expected tags it moved, after putting them back. */
async function afterFailedLoad(
  error: unknown,
  engine: ContainerEngine,
  references: readonly string[],
  before: InspectResult,
): Promise<unknown> {
  if (job.stopped || references.length === 0) return error;
  const outcome = await putBack(engine, references, before);
  if (!(error instanceof UserError) || outcome === undefined) return error;
  return new UserError(`${error.message} ${outcome}`, error.details);
}

/**
 * Puts back the tags a load moved, as `before` had them; the sentence that says what it did, or undefined when the
 * engine could not be asked.
 */
async function putBack(
  engine: ContainerEngine,
  references: readonly string[],
  before: InspectResult,
): Promise<string | undefined> {
  if (references.length === 0) return "The engine's tags are as they were before.";
  const now = await engine.inspect(references).catch(() => undefined);
  if (!now) return undefined;
  const moved = references.filter((reference) => now.found.get(reference)?.id !== before.found.get(reference)?.id);
  if (moved.length === 0) return "The engine's tags are as they were before.";
  return `It had changed ${shownList(moved)}: ${await engine.restoreTags(moved, before.found)}`;
}

/** The references expected in the engine after loading, each with the image it must name there. */
function expectedImages(
  report: ArchiveReport,
  wanted: readonly string[],
  name: string,
  facts: EngineFacts,
): ExpectedImage[] {
  const expectation = (reference: string, image: ArchiveImage): ExpectedImage => {
    const loaded = facts.kind === 'docker-containerd' ? undefined : loadedPlatform(image, facts.platform);
    const platforms = loaded ? [loaded] : image.platforms;
    return {
      reference,
      image,
      imageId: imageIdOn(facts.kind, image, facts.platform),
      platform: platforms.map((one) => one.platform ?? '').join(', '),
    };
  };
  // Named as the engine names them: the tarball may spell a tag another way (`index.docker.io/library/app`).
  const recorded = report.images.flatMap((image) =>
    image.references.map((reference) => expectation(familiar(reference), image)),
  );
  if (wanted.length === 0) {
    const untagged = report.images.filter((image) => image.references.length === 0);
    return [...recorded, ...untagged.map((image) => expectation(imageIdOn(facts.kind, image, facts.platform), image))];
  }
  const byName = new Map(recorded.map((image) => [qualify(image.reference), image]));
  const missing = wanted.filter((tag) => !byName.has(qualify(tag)));
  if (missing.length > 0) {
    const available = recorded.map((image) => image.reference);
    const hint = suggest(missing[0]!, available);
    throw new UserError(
      `The artifact ${name} does not hold ${shownList(missing)}: it records ${shownList(available) || 'no tags'}` +
        `${hint ? ` (did you mean \`${hint.reference}\`?)` : ''}; fix \`tags\` or leave it empty to load every tag recorded. Nothing was loaded.`,
    );
  }
  return [...new Set(wanted.map(familiar))].map((tag) => ({ ...byName.get(qualify(tag))!, reference: tag }));
}

/** What `docker load` may print before the rest is dropped: a line per tag, for thousands of tags. */
const MAX_LOAD_OUTPUT = 16 * 1024 * 1024;
/** How fast an engine imports what it was given, at the least, once its input has ended (10 MB/s: slow disks). */
const IMPORT_BYTES_PER_SECOND = 10e6;

/**
 * Streams the tarball (decompressed here: Docker 20.10 cannot read zstd) through the canonical writer into the
 * engine's `load`, and returns what the engine printed. The engine must keep taking bytes, and finish within a time
 * for its size once it has them all.
 */
async function loadIntoEngine(
  opened: OpenedTarball,
  engine: ContainerEngine,
  writer: ReturnType<typeof createCanonicalWriter>,
): Promise<string> {
  const command = engine.start(['load'], { stdin: true });
  let stdout = '';
  command.stdout.setEncoding('utf8').on('data', (text: string) => {
    if (stdout.length < MAX_LOAD_OUTPUT) stdout += text;
  });
  const what = `\`${engine.command} load\``;
  // A stalled download is named by the download itself first: its own watchdog has the same timeout.
  const meter = new ProgressMeter('load', {
    stall: {
      ms: job.stallMs + 15_000,
      stalled: (waited, bytes) =>
        new Stalled(
          `${what} took no byte for ${Math.round(waited / 1000)} s ${progressText(bytes)}: the engine is stuck; nothing ` +
            'was loaded. Check the engine (`docker info`, its log), then re-run the job; `stall-timeout` sets how long to wait.',
        ),
    },
  });
  const feeding = pipeline([opened.stream, ...opened.decode, writer.stream, meter, command.stdin!]);
  let late: Stalled | undefined;
  const importing = feeding.then(() => {
    const ms = job.stallMs + Math.ceil(meter.bytes / IMPORT_BYTES_PER_SECOND) * 1000;
    const timer = setTimeout(() => {
      late = new Stalled(
        `${what} did not finish within ${Math.round(ms / 1000)} s of reading the whole tarball (${formatBytes(meter.bytes)}): ` +
          'the engine is stuck; it was stopped and the tags put back. Check the engine, then re-run the job.',
      );
      command.kill();
    }, ms);
    timer.unref();
    return command.done.finally(() => clearTimeout(timer));
  });
  importing.catch(() => undefined);
  const [fed, exited, written] = await Promise.allSettled([feeding, importing, writer.result]);
  if (late) throw late;
  // The canonical writer's refusal first: the engine's complaint is then only its result. Anything else that stopped
  // the writer (a broken pipe to a dying engine) is a failure of the engine, named by the engine.
  if (written.status === 'rejected' && written.reason instanceof UserError) throw written.reason;
  if (fed.status === 'rejected' && fed.reason instanceof Stalled) throw fed.reason;
  if (exited.status === 'rejected' && exited.reason instanceof UserError) throw exited.reason;
  const failure = fed.status === 'rejected' ? fed.reason : written.status === 'rejected' ? written.reason : undefined;
  if (failure !== undefined) throw inputProblem(failure) ?? engineStopped(what, failure, command.stderr());
  // The engine's own verdict, whatever its exit code.
  const { errors } = parseLoadOutput(stdout);
  if (errors.length > 0) {
    throw new UserError(
      `${what} reported ${shownList(errors, 3)}: the engine could not use what it was given, though ` +
        'every check of the tarball passed; check the engine (its disk, its log), then load again.',
    );
  }
  return stdout;
}

/** The engine stopped reading what it was given (a broken pipe): its own last words, when it said any. */
function engineStopped(what: string, error: unknown, stderr: string): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  const said = lastLine(stderr);
  return new UserError(
    `${what} stopped reading the tarball (${code ?? messageOf(error)})${said ? `: ${shown(said, 300)}` : ''}; the engine ` +
      'failed or was stopped. Check the engine (`docker info`, its log), then re-run the job.',
  );
}
