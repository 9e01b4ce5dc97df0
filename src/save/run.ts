/** What one save works with, and the one step every way of saving ends in: writing the tarball, timed and logged. */
import * as core from '@actions/core';
import type { Inputs } from '../action/inputs.ts';
import { describeImages } from '../action/summary.ts';
import type { CanonicalOptions } from '../archive/canonical.ts';
import { writeTarball, type TarballSource, type WrittenTarball } from '../archive/tarball.ts';
import type { ContainerEngine } from '../engine/engine.ts';
import { PhaseTimer, formatBytes } from '../progress.ts';
import type { UploadSession } from './upload-session.ts';

/** One save: its inputs, the engine, the phases' timer, the tarball file to write, and the upload. */
export interface SaveRun {
  inputs: Inputs;
  engine: ContainerEngine;
  timer: PhaseTimer;
  file: string;
  upload: UploadSession;
}

/** One way of producing the tarball: what the log group and phase are called, its source, what it keeps. */
export interface TarballStep {
  title: string;
  phase: string;
  source: () => TarballSource;
  canonical: CanonicalOptions;
  /** How long the upload may wait for the first bytes (an engine that exports layers before it writes). */
  firstByteMs?: number;
}

/** Writes the tarball in its own log group and timed phase, the upload following it, then logs what it holds. */
export function writeLogged(run: SaveRun, step: TarballStep): Promise<WrittenTarball> {
  const { inputs, timer } = run;
  return core.group(step.title, () =>
    timer.time(
      step.phase,
      async () => {
        const onOpen = await run.upload.begin(step.firstByteMs);
        const written = await writeTarball(step.source, {
          file: run.file,
          compression: inputs.compression,
          level: inputs.compressionLevel,
          canonical: step.canonical,
          onOpen,
        });
        const { report } = written;
        core.info(
          `${report.format} tarball: ${describeImages(report)}, ${report.blobs.length} blobs verified; written as ` +
            `${written.format}, ${formatBytes(written.tarBytes)} → ${formatBytes(written.size)} (${inputs.compression}), ${written.digest}`,
        );
        for (const warning of report.warnings) core.warning(warning);
        return written;
      },
      (written) => written.tarBytes,
    ),
  );
}
