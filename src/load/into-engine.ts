/**
 * One artifact streamed into the engine: verified as it streams (its digest too, when it was not verified before), the
 * engine given nothing it can name before the archive's last entries, which follow the last check; then every expected
 * tag confirmed to name the tarball's image, each image the engine can run made sure to be usable. A load that fails,
 * or is stopped, puts back the tags it moved.
 */
import * as core from '@actions/core';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SummaryImage } from '../action/summary.ts';
import { createCanonicalWriter } from '../archive/canonical.ts';
import type { ArchiveReport } from '../archive/model.ts';
import type { OpenedTarball } from '../archive/tarball.ts';
import type { DownloadedArtifact } from '../artifacts/listing.ts';
import { shown, shownList } from '../display.ts';
import type { ContainerEngine } from '../engine/engine.ts';
import { parseLoadOutput, type InspectResult } from '../engine/output.ts';
import { Stalled, UserError } from '../errors.ts';
import { job } from '../job.ts';
import { holdsPlatform } from '../platform.ts';
import { ProgressMeter, formatBytes, progressText } from '../progress.ts';
import { artifactDigest, artifactSize } from './digests.ts';
import { boundedList, expectedImages, referencesOf, tagVerdict, type ExpectedImage } from './expected.ts';
import { engineReported, loadFailure } from './failures.ts';
import { causeOf, checkDigest, discard, downloadFailure, logVerified, openOrDiscard } from './fetch.ts';
import { selectionOf, type EngineFacts, type LoadRun } from './run.ts';

export interface LoadedArtifact {
  artifact: DownloadedArtifact;
  /** The artifact's digest and size: the file's, or for a zip artifact the zip's. */
  digest: string;
  size: number;
  report: ArchiveReport;
  /** The references now in the engine (or, with load: false, recorded in the tarball). */
  images: SummaryImage[];
}

/** What is loaded: an artifact, verified before (with its digest and expected images) or in the same read. */
export interface ToLoad {
  artifact: DownloadedArtifact;
  digest?: string;
  images?: ExpectedImage[];
}

export async function loadArtifact(run: LoadRun, item: ToLoad): Promise<LoadedArtifact> {
  const { inputs, engine, facts, wanted } = run;
  const { artifact } = item;
  const opened = await openOrDiscard(artifact);
  // An artifact verified before wrote its share of the layout then; one read here writes it now.
  const part = item.images ? undefined : await run.layout?.part();
  let expected = item.images ?? [];
  // What the expected tags named before the engine could name anything: taken just before the archive's end.
  let before: InspectResult | undefined;
  let digest = '';
  const writer = createCanonicalWriter({
    select: (report) => selectionOf(run, report),
    maxImageBytes: inputs.maxImageBytes,
    platform: facts.platform,
    requireManifest: facts.kind === 'docker-graphdriver',
    beforeEnd: async (report) => {
      digest = artifactDigest(artifact, opened.hasher.digest());
      if (!item.images) {
        checkDigest(artifact, digest, inputs.expectedDigest);
        logVerified(report, opened.compression);
        expected = expectedImages(report, wanted, artifact.name, facts);
        part?.admit(report, selectionOf(run, report));
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
      return await run.timer.time(
        `${item.images ? 'load' : 'verify + load'} ${artifact.name}`,
        () => loadIntoEngine(opened, engine, writer, part?.stream),
        () => artifact.size,
      );
    } catch (error) {
      const rejected = await writer.result.then(
        () => false,
        () => true,
      );
      // The download's own failure is the cause when there is one; the digest is blamed only when it completed.
      const failedDownload = await downloadFailure(artifact);
      let cause = failedDownload ?? error;
      if (rejected && !item.images) {
        if (failedDownload === undefined) cause = await causeOf(error, artifact, inputs.expectedDigest);
        await discard(artifact.file);
      }
      // Before the archive's end the engine could name nothing: there is nothing to put back.
      throw before ? await afterFailedLoad(cause, engine, { references: referencesOf(expected), before }) : cause;
    }
  });
  const { report } = await writer.result;
  const images = await core
    .group(`Check what ${inputs.engine} now has`, () => checkLoaded(run, { output, expected, before: before! }))
    .finally(putBackOnStop);
  return { artifact, digest: item.digest ?? digest, size: artifactSize(artifact), report, images };
}

/** What `docker load` may print before the rest is dropped: a line per tag, for thousands of tags. */
const MAX_LOAD_OUTPUT = 16 * 1024 * 1024;
/** How fast an engine imports what it was given, at the least, once its input has ended (10 MB/s: slow disks). */
const IMPORT_BYTES_PER_SECOND = 10e6;

/**
 * Streams the tarball (decompressed here: Docker 20.10 cannot read zstd) through the canonical writer (and the OCI
 * layout's `tee`) into the engine's `load`, and returns what the engine printed. The engine must keep taking bytes,
 * and finish within a time for its size once it has them all.
 */
async function loadIntoEngine(
  opened: OpenedTarball,
  engine: ContainerEngine,
  writer: ReturnType<typeof createCanonicalWriter>,
  tee: Transform | undefined,
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
  const feeding = pipeline([
    opened.stream,
    ...opened.decode,
    writer.stream,
    ...(tee ? [tee] : []),
    meter,
    command.stdin!,
  ]);
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
  const failure = loadFailure({ late, written, fed, exited, what, stderr: command.stderr() });
  if (failure !== undefined) throw failure;
  const reported = engineReported(what, parseLoadOutput(stdout).errors);
  if (reported) throw reported;
  return stdout;
}

/** Every expected tag must name the image of the tarball, and be usable; when one is not, the tags are put back. */
async function checkLoaded(
  run: LoadRun,
  loaded: { output: string; expected: readonly ExpectedImage[]; before: InspectResult },
): Promise<SummaryImage[]> {
  const { engine, facts, inputs } = run;
  const { expected, before } = loaded;
  const printed = parseLoadOutput(loaded.output);
  for (const reference of printed.references) core.info(`Loaded image: ${reference}`);
  for (const id of printed.ids) core.info(`Loaded image ID: ${id}`);
  const references = referencesOf(expected);
  const now = await engine.inspect(references);
  const verdict = tagVerdict(expected, { now: now.found, before: before.found }, facts);
  for (const line of verdict.moved) core.warning(line);
  for (const row of verdict.rows)
    if (now.found.has(row.reference)) core.info(`${row.reference}  ${row.imageId}  ${row.platform}`);
  if (verdict.wrong.length > 0) {
    const restored = await engine.restoreTags(references, before.found);
    throw new UserError(
      `After ${inputs.engine} load, ${verdict.wrong.length} of ${references.length} tags do not name the image in the tarball: ` +
        `${boundedList(verdict.wrong)}. ${restored} Another step may have retagged them; load again, or check the engine.`,
    );
  }
  const unusable = facts.kind === 'docker-containerd' ? await unusableImages(engine, expected, facts) : [];
  if (unusable.length > 0) {
    const restored = await engine.restoreTags(references, before.found);
    throw new UserError(
      `After ${inputs.engine} load, the engine cannot use ${boundedList(unusable)}, though every check of the tarball ` +
        `passed. ${restored} Check the engine (its disk, its log), then load again.`,
    );
  }
  return verdict.rows;
}

/**
 * The images of the engine's platform that it cannot make a container of, with its reason. The containerd image store
 * unpacks an image's layers as it loads it and reports a failure only as a line of output: a container made and
 * removed at once is the proof that it did.
 */
async function unusableImages(
  engine: ContainerEngine,
  expected: readonly ExpectedImage[],
  facts: EngineFacts,
): Promise<string[]> {
  const probed = new Set<string>();
  const unusable: string[] = [];
  for (const image of expected) {
    if (image.reference.startsWith('sha256:')) continue;
    const runsHere = image.image.platforms.some((one) => holdsPlatform([one.platform ?? ''], facts.platform ?? ''));
    if (!runsHere || probed.has(image.image.digest)) continue;
    probed.add(image.image.digest);
    const problem = await engine.usable(image.reference);
    if (problem) unusable.push(`${image.reference} (${shown(problem)})`);
  }
  return unusable;
}

/** A load that failed half way: says exactly which of the expected tags it moved, after putting them back. */
async function afterFailedLoad(
  error: unknown,
  engine: ContainerEngine,
  moved: { references: readonly string[]; before: InspectResult },
): Promise<unknown> {
  if (job.stopped || moved.references.length === 0) return error;
  const outcome = await putBack(engine, moved.references, moved.before);
  if (!(error instanceof UserError) || outcome === undefined) return error;
  return new UserError(
    `${/[.!?]$/.test(error.message) ? error.message : `${error.message}.`} ${outcome}`,
    error.details,
  );
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
