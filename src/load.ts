/**
 * Load mode: download the image artifact (this run or another), prove its bytes are the ones uploaded, verify
 * every blob, stream it into `docker load`, and confirm each expected tag now names the expected image.
 */
import * as core from '@actions/core';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { downloadFile, listArtifactNames, type ArtifactLocation, type DownloadedArtifact } from './artifact.ts';
import { hashFile } from './archive/hash.ts';
import { createArchiveInspector, type ArchiveReport } from './archive/inspect.ts';
import { legacyManifestFor } from './archive/legacy-manifest.ts';
import { createTarAppender } from './archive/tar.ts';
import { ContainerEngine, parseLoadOutput } from './docker.ts';
import { UserError } from './errors.ts';
import { matchNames } from './glob.ts';
import type { Inputs } from './inputs.ts';
import { splitTagList } from './metadata.ts';
import { PhaseTimer, ProgressMeter, formatBytes } from './progress.ts';
import { qualify } from './reference.ts';
import { suggest } from './suggest.ts';
import { shown, shownList, token } from './display.ts';
import { writeSummary, type SummaryImage } from './summary.ts';
import { inputProblem, openTarball, writeTarball, type OpenedTarball } from './tarball.ts';

/** A reference expected after loading, with every ID its image may have (config digest, or manifest digest on the containerd store). */
interface ExpectedImage extends SummaryImage {
  ids: string[];
}

interface LoadedArtifact {
  artifact: DownloadedArtifact;
  digest: string;
  report: ArchiveReport;
  /** The references now in the engine (or, with load: false, recorded in the tarball). */
  images: SummaryImage[];
}

export async function load(inputs: Inputs): Promise<void> {
  const timer = new PhaseTimer();
  const engine = new ContainerEngine(inputs.engine);
  let engineApi = '';
  if (inputs.load) {
    // Fail before downloading anything when there is no engine to load into.
    const { version, api } = await engine.serverVersion();
    engineApi = api;
    core.info(`${inputs.engine} engine ${version} (API ${api})`);
  }
  const location: ArtifactLocation = { runId: inputs.runId, repository: inputs.repository, token: inputs.githubToken };
  const names = inputs.pattern ? await namesMatching(inputs.pattern, location) : [inputs.name];
  if (inputs.pattern && inputs.expectedDigest && names.length > 1) {
    throw new UserError(
      `\`expected-digest\` pins one artifact, but \`pattern\` ${token(inputs.pattern)} matches ${names.length} (${shownList(names)}): ` +
        'use `name` with `expected-digest`, or drop `expected-digest`.',
    );
  }

  const loaded: LoadedArtifact[] = [];
  for (const name of names) loaded.push(await loadArtifact(name, inputs, engine, engineApi, location, timer));

  const images = loaded.flatMap((item) => item.images);
  const tags = images.map((image) => image.reference).filter((reference) => !reference.startsWith('sha256:'));
  core.setOutput('tags', tags.join('\n'));
  core.setOutput('image', tags[0] ?? '');
  core.setOutput('image-id', [...new Set(images.map((image) => image.imageId))].join('\n'));
  core.setOutput('tarball', loaded.map((item) => item.artifact.file).join('\n'));
  core.setOutput('digest', loaded.map((item) => item.digest).join('\n'));
  core.setOutput('size', loaded.map((item) => String(item.artifact.size)).join('\n'));
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
      ['size', formatBytes(item.artifact.size)],
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
  core.info(`pattern ${token(pattern)} matches: ${shownList(names)}`);
  return names;
}

async function loadArtifact(
  name: string,
  inputs: Inputs,
  engine: ContainerEngine,
  engineApi: string,
  location: ArtifactLocation,
  timer: PhaseTimer,
): Promise<LoadedArtifact> {
  const artifact = await core.group(`Download artifact ${name}`, () =>
    timer.time(
      `download ${name}`,
      () => downloadFile(name, inputs.path, location),
      (downloaded) => downloaded.size,
    ),
  );
  core.info(`${shown(artifact.file)} (${formatBytes(artifact.size)})`);

  // With load: false the verification pass also writes the plain tar that scanners read (Trivy, Grype).
  const plainCopy = !inputs.load && inputs.decompress ? `${artifact.file}.tar` : undefined;
  const { digest, report, plain } = await core.group(`Verify ${name}`, () =>
    timer.time(
      `verify ${name}`,
      () => verify(artifact, inputs.expectedDigest, plainCopy),
      () => artifact.size,
    ),
  );

  const expected = expectedImages(report, inputs.tags, name);
  if (!inputs.load) {
    const handedOn = plain ?? artifact.file;
    core.info(`load is false: the verified tarball is handed on as the \`tarball\` output: ${handedOn}`);
    return { artifact: { ...artifact, file: handedOn }, digest, report, images: expected };
  }

  const before = await engine.inspect(expected.map((image) => image.reference).filter((r) => !r.startsWith('sha256:')));
  const output = await core.group(`${inputs.engine} load ${name}`, () =>
    timer.time(
      `load ${name}`,
      () => loadIntoEngine(artifact.file, engine, legacyManifest(report, engineApi, inputs)),
      () => artifact.size,
    ),
  );
  const images = await core.group(`Check what ${inputs.engine} now has`, async () => {
    const loaded = parseLoadOutput(output);
    for (const reference of loaded.references) core.info(`Loaded image: ${reference}`);
    for (const id of loaded.ids) core.info(`Loaded image ID: ${id}`);
    const tagged = expected.filter((image) => !image.reference.startsWith('sha256:'));
    const now = await engine.inspect(tagged.map((image) => image.reference));
    const wrong: string[] = [];
    for (const image of tagged) {
      const actual = now.found.get(image.reference);
      if (!actual) wrong.push(`${image.reference} is not in the engine`);
      else if (!image.ids.includes(actual.id))
        wrong.push(`${image.reference} is ${actual.id}, expected ${image.ids.join(' or ')}`);
      else {
        const previous = before.found.get(image.reference);
        if (previous && previous.id !== actual.id) {
          core.warning(`${image.reference} pointed to ${previous.id} before this load; it now names ${actual.id}.`);
        }
        core.info(`${image.reference}  ${actual.id}  ${actual.platform}`);
      }
    }
    if (wrong.length > 0) {
      throw new UserError(
        `After ${inputs.engine} load, ${wrong.length} of ${tagged.length} tags do not name the image in the tarball: ${wrong.join('; ')}. ` +
          'Another step may have retagged them; load again, or check the engine.',
      );
    }
    return expected.map((image) => ({ ...image, imageId: now.found.get(image.reference)?.id ?? image.imageId }));
  });
  return { artifact, digest, report, images };
}

/**
 * Hashes the downloaded file and checks it against the recorded and the expected digest, then verifies every blob.
 * With `plainCopy`, a compressed tarball is also written there decompressed, in the same pass, and removed again
 * unless every blob verifies; the path of that copy is returned, none when the download is already a plain tar.
 */
async function verify(
  artifact: DownloadedArtifact,
  expectedDigest: string | undefined,
  plainCopy?: string,
): Promise<{ digest: string; report: ArchiveReport; plain: string | undefined }> {
  const { digest } = await hashFile(artifact.file, new ProgressMeter('hash'));
  const mismatches: string[] = [];
  if (artifact.recordedDigest && artifact.recordedDigest !== digest) {
    mismatches.push(`the artifact service recorded ${artifact.recordedDigest}`);
  }
  if (expectedDigest && expectedDigest !== digest) mismatches.push(`\`expected-digest\` is ${expectedDigest}`);
  if (mismatches.length > 0) {
    throw new UserError(
      `The downloaded artifact ${shown(artifact.name)} hashes to ${digest}, but ${mismatches.join(' and ')}: ` +
        'the bytes are not the ones uploaded (corrupted or replaced); nothing was loaded. Run the save job again.',
    );
  }
  core.info(
    `sha256 matches${artifact.recordedDigest ? ' the recorded digest' : ''}${expectedDigest ? ' and expected-digest' : ''}: ${digest}`,
  );

  const opened = await openTarball(
    artifact.file,
    `The artifact ${shown(artifact.name)}`,
    plainCopy === undefined ? undefined : path.dirname(plainCopy),
  );
  const copy = plainCopy && opened.compression !== 'none' ? plainCopy : undefined;
  const report = copy ? await inspectAndCopy(opened, copy) : await inspectOnly(opened);
  core.info(
    `${report.format} (${opened.compression === 'none' ? 'uncompressed' : opened.compression}): ${report.images.length} image(s), ` +
      `${report.blobs.length} blobs verified, references: ${shownList(report.references) || 'none'}`,
  );
  for (const warning of report.warnings) core.warning(warning);
  if (copy) core.info(`Decompressed while verifying: ${shown(copy)}`);
  return { digest, report, plain: copy };
}

async function inspectOnly(opened: OpenedTarball): Promise<ArchiveReport> {
  const inspector = createArchiveInspector();
  try {
    await pipeline([opened.stream, ...opened.decode, new ProgressMeter('verify'), inspector.stream]);
  } catch (error) {
    throw error instanceof UserError ? error : (inputProblem(error) ?? error);
  }
  return inspector.report;
}

/** Inspects and writes the plain tar in one pass; the copy is only left behind when every blob verified. */
async function inspectAndCopy(opened: OpenedTarball, copy: string): Promise<ArchiveReport> {
  const written = await writeTarball(
    () => ({ stream: opened.stream, decode: opened.decode, phase: 'verify' }),
    copy,
    'none',
    undefined,
  );
  return written.report;
}

/** The references expected in the engine after loading, each with the image ID it must have. */
function expectedImages(report: ArchiveReport, tagsInput: string, name: string): ExpectedImage[] {
  const expectation = (reference: string, image: ArchiveReport['images'][number]): ExpectedImage => ({
    reference,
    imageId: image.configDigest,
    platform: image.platform ?? '',
    ids: [image.configDigest, ...(image.manifestDigest ? [image.manifestDigest] : [])],
  });
  const recorded = report.images.flatMap((image) => image.references.map((reference) => expectation(reference, image)));
  const wanted = splitTagList(tagsInput);
  if (wanted.length === 0) {
    if (recorded.length > 0) return recorded;
    return report.images.map((image) => expectation(image.configDigest, image));
  }
  const byName = new Map(recorded.map((image) => [qualify(image.reference), image]));
  const missing = wanted.filter((tag) => !byName.has(qualify(tag)));
  if (missing.length > 0) {
    const available = recorded.map((image) => image.reference);
    const hint = suggest(missing[0]!, available);
    throw new UserError(
      `The artifact ${name} does not hold ${missing.join(', ')}: it records ${available.join(', ') || 'no tags'}` +
        `${hint ? ` (did you mean \`${hint.reference}\`?)` : ''}; fix \`tags\` or leave it empty to load every tag recorded. Nothing was loaded.`,
    );
  }
  return wanted.map((tag) => ({ ...byName.get(qualify(tag))!, reference: tag }));
}

/**
 * Docker engines before 25 (API 1.44) load only tarballs with a manifest.json; for a pure OCI layout the entry
 * they need is written from the verified index and appended to the stream.
 */
function legacyManifest(
  report: ArchiveReport,
  api: string,
  inputs: Inputs,
): { name: string; content: Buffer } | undefined {
  if (report.loadableByLegacyEngine || inputs.engine !== 'docker') return undefined;
  if (ContainerEngine.apiAtLeast(api, 1, 44)) return undefined;
  const entry = legacyManifestFor(report, {});
  core.info(`This engine (API ${api}) needs a manifest.json for an OCI layout: writing one from the verified index.`);
  return entry;
}

/** Streams the tarball, decompressed here (Docker 20.10 cannot read zstd), into the engine's `load`. */
async function loadIntoEngine(
  file: string,
  engine: ContainerEngine,
  extraEntry: { name: string; content: Buffer } | undefined,
): Promise<string> {
  const opened = await openTarball(file, 'The tarball');
  const command = engine.start(['load'], { stdin: true });
  let stdout = '';
  command.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  const appender = extraEntry ? [createTarAppender(async () => extraEntry)] : [];
  const feeding = pipeline([opened.stream, ...opened.decode, ...appender, new ProgressMeter('load'), command.stdin!]);
  const [fed, exited] = await Promise.allSettled([feeding, command.done]);
  if (exited.status === 'rejected') throw exited.reason;
  if (fed.status === 'rejected') throw fed.reason;
  return stdout;
}
