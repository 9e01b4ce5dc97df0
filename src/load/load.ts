/**
 * Load mode: download the image artifact (this run's or another's), prove its bytes are the ones uploaded, verify
 * every blob, stream it into `docker load`, and confirm each expected tag now names the expected image.
 */
import * as core from '@actions/core';
import { currentRun, loadLocation } from '../action/context.ts';
import type { Inputs } from '../action/inputs.ts';
import { setOutputs } from '../action/outputs.ts';
import { writeSummary } from '../action/summary.ts';
import { openLayout } from '../archive/layout.ts';
import { shownList, token } from '../display.ts';
import { ContainerEngine } from '../engine/engine.ts';
import { currentRunId } from '../github.ts';
import { UserError } from '../errors.ts';
import { splitTagList } from '../metadata.ts';
import { PhaseTimer, formatBytes } from '../progress.ts';
import { download } from './fetch.ts';
import { loadArtifact, type LoadedArtifact } from './into-engine.ts';
import { namesMatching } from './names.ts';
import { engineFacts, likelyEngine, type LoadRun } from './run.ts';
import { findSourceRun } from './source-run.ts';
import { fetchAndVerify, type VerifiedArtifact } from './verify.ts';

export async function load(inputs: Inputs): Promise<void> {
  const engine = new ContainerEngine(inputs.engine);
  // Fail before downloading anything when there is no engine to load into.
  const facts = inputs.load ? await engineFacts(engine) : await likelyEngine(engine);
  const context = currentRun();
  const { location, origin } = loadLocation(inputs, context, await findSourceRun(inputs, context));
  // So is a layout destination that holds something already, or cannot be written.
  const layout = inputs.ociLayout === undefined ? undefined : await openLayout(inputs.ociLayout);
  core.info(`Artifacts of ${origin}`);
  const wanted = splitTagList(inputs.tags);
  const run: LoadRun = { inputs, engine, facts, timer: new PhaseTimer(), location, wanted, layout };
  try {
    await loadAll(run);
  } catch (error) {
    await layout?.discard().catch(() => undefined);
    throw error;
  }
}

async function loadAll(run: LoadRun): Promise<void> {
  const { inputs } = run;
  const names = inputs.pattern ? await namesMatching(inputs.pattern, run.location) : [inputs.name];
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
    loaded.push(await loadArtifact(run, { artifact: await download(run, names[0]!) }));
  } else {
    // Several: every one is downloaded and verified before the engine receives anything.
    const verified: VerifiedArtifact[] = [];
    for (const name of names) verified.push(await fetchAndVerify(run, name));
    for (const item of verified) loaded.push(inputs.load ? await loadArtifact(run, item) : item);
  }
  // Only now, every artifact verified (and loaded), is the layout named and put in place.
  if (run.layout) for (const line of await run.layout.commit()) core.info(line);
  await report(run, loaded);
}

/** The outputs and the job summary of what was loaded (or, with `load: false`, verified and handed on). */
async function report(run: LoadRun, loaded: readonly LoadedArtifact[]): Promise<void> {
  const layout = run.layout?.destination;
  const images = loaded.flatMap((item) => item.images);
  // An image without a tag is loaded under its ID: `tags` lists tags only.
  const tags = [...new Set(images.map((image) => image.reference).filter((ref) => !ref.startsWith('sha256:')))];
  setOutputs({
    tags,
    image: tags.slice(0, 1),
    'image-id': images.map((image) => image.imageId),
    tarball: loaded.map((item) => item.artifact.file),
    digest: loaded.map((item) => item.digest),
    size: loaded.map((item) => item.size),
    'artifact-id': loaded.map((item) => item.artifact.id),
    'artifact-name': loaded.map((item) => item.artifact.name),
    format: loaded.map((item) => item.report.format),
    platforms: loaded.flatMap((item) => item.report.platforms),
    'oci-layout': layout === undefined ? [] : [layout],
    'run-id': [run.location.runId ?? currentRunId() ?? ''],
  });
  await writeSummary({
    title: run.inputs.load
      ? `Loaded ${tags.length} image tag${tags.length === 1 ? '' : 's'}`
      : `Downloaded and verified ${loaded.length} image tarball${loaded.length === 1 ? '' : 's'} (not loaded)`,
    images,
    facts: loaded
      .flatMap((item): Array<[string, string]> => [
        ['artifact', `${item.artifact.name} (id ${item.artifact.id})`],
        ['file', item.artifact.file],
        ['digest', item.digest],
        ['size', formatBytes(item.size)],
        ['format', item.report.format],
      ])
      .concat(layout === undefined ? [] : [['OCI layout', layout]]),
    timer: run.timer,
    warnings: loaded.flatMap((item) => item.report.warnings),
  });
}
