/**
 * Save mode: the tags metadata-action generated → checked in the engine → one streamed `docker save` through
 * verification, compression and hashing → one raw artifact, uploaded as it is written.
 */
import * as core from '@actions/core';
import * as path from 'node:path';
import type { Inputs } from '../action/inputs.ts';
import { setOutputs } from '../action/outputs.ts';
import { writeSummary } from '../action/summary.ts';
import { TarballSuffix } from '../constants.ts';
import { ContainerEngine } from '../engine/engine.ts';
import { currentRunId } from '../github.ts';
import { PhaseTimer, formatBytes } from '../progress.ts';
import { saveFromEngine } from './from-engine.ts';
import { saveFromSource } from './from-source.ts';
import type { SaveRun } from './run.ts';
import type { Saved } from './saved.ts';
import { wantedTags } from './tags.ts';
import { UploadSession } from './upload-session.ts';

export async function save(inputs: Inputs): Promise<void> {
  const run: SaveRun = {
    inputs,
    engine: new ContainerEngine(inputs.engine),
    timer: new PhaseTimer(),
    file: path.resolve(inputs.path, inputs.name + TarballSuffix[inputs.compression]),
    upload: new UploadSession(inputs),
  };
  const wanted = await core.group('Image tags', () => wantedTags(run));
  let saved: Saved;
  try {
    saved = inputs.source ? await saveFromSource(run, wanted, inputs.source) : await saveFromEngine(run, wanted!);
  } catch (error) {
    await run.upload.abandon();
    throw error;
  }
  const artifact = await run.upload.finish(saved.tarball, run.timer);

  const { tarball, tags } = saved;
  setOutputs({
    tags,
    image: tags.slice(0, 1),
    'image-id': saved.imageIds,
    tarball: [tarball.file],
    digest: [tarball.digest],
    size: [tarball.size],
    'artifact-id': artifact ? [artifact.id] : [],
    'artifact-name': artifact ? [artifact.name] : [],
    format: [tarball.format],
    platforms: tarball.report.platforms,
    'oci-layout': [],
    'run-id': artifact ? [currentRunId() ?? ''] : [],
  });
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
    timer: run.timer,
    warnings: [...saved.warnings, ...tarball.report.warnings],
  });
}
