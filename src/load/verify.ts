/**
 * An artifact downloaded and verified in one read, before any engine receives it: its digest, then every blob. With
 * `load: false` the same read writes the canonical plain tar handed on to scanners (Trivy, Grype), kept only when
 * everything verified.
 */
import * as core from '@actions/core';
import { pipeline } from 'node:stream/promises';
import { selectReferences } from '../archive/canonical.ts';
import { createArchiveInspector } from '../archive/inspector.ts';
import type { ArchiveReport } from '../archive/model.ts';
import { inputProblem, writeTarball } from '../archive/tarball.ts';
import type { DownloadedArtifact } from '../artifacts/listing.ts';
import { shown } from '../display.ts';
import { UserError } from '../errors.ts';
import { ProgressMeter } from '../progress.ts';
import { artifactDigest, artifactSize } from './digests.ts';
import { expectedImages, type ExpectedImage } from './expected.ts';
import {
  causeOf,
  checkDigest,
  discard,
  download,
  downloadFailure,
  logVerified,
  openOrDiscard,
  type HashedTarball,
} from './fetch.ts';
import type { LoadRun } from './run.ts';

/** An artifact downloaded and verified, with the references it is expected to give the engine. */
export interface VerifiedArtifact {
  artifact: DownloadedArtifact;
  /** The artifact's digest and size: the file's, or for a zip artifact the zip's. */
  digest: string;
  size: number;
  report: ArchiveReport;
  images: ExpectedImage[];
}

export async function fetchAndVerify(run: LoadRun, name: string): Promise<VerifiedArtifact> {
  const { inputs, timer } = run;
  const artifact = await download(run, name);
  const copy = !inputs.load && inputs.decompress ? `${artifact.file}.tar` : undefined;
  const { digest, report } = await core.group(`Verify ${name}`, () =>
    timer.time(
      `verify ${name}`,
      async () => {
        const opened = await openOrDiscard(artifact, copy);
        try {
          const verified = copy
            ? await verifyAndCopy(run, opened, { artifact, copy })
            : await verifyOnly(run, opened, artifact);
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
  const images = expectedImages(report, run.wanted, name, run.facts);
  const size = artifactSize(artifact);
  if (inputs.load) return { artifact, digest, size, report, images };
  const handedOn = copy ?? artifact.file;
  core.info(`load is false: the verified tarball is handed on as the \`tarball\` output: ${handedOn}`);
  return { artifact: { ...artifact, file: handedOn }, digest, size, report, images };
}

async function verifyOnly(
  run: LoadRun,
  opened: HashedTarball,
  artifact: DownloadedArtifact,
): Promise<{ digest: string; report: ArchiveReport }> {
  const inspector = createArchiveInspector({ maxImageBytes: run.inputs.maxImageBytes });
  try {
    await pipeline([opened.stream, ...opened.decode, new ProgressMeter('verify'), inspector.stream]);
  } catch (error) {
    throw error instanceof UserError ? error : (inputProblem(error) ?? error);
  }
  const digest = artifactDigest(artifact, opened.hasher.digest());
  checkDigest(artifact, digest, run.inputs.expectedDigest);
  return { digest, report: await inspector.report };
}

/** Verifies and writes the canonical plain tar in one read; the copy is left behind only when everything verified. */
async function verifyAndCopy(
  run: LoadRun,
  opened: HashedTarball,
  { artifact, copy }: { artifact: DownloadedArtifact; copy: string },
): Promise<{ digest: string; report: ArchiveReport }> {
  let digest = '';
  const written = await writeTarball(() => ({ stream: opened.stream, decode: opened.decode, phase: 'verify' }), {
    file: copy,
    compression: 'none',
    canonical: {
      select: (report) => selectReferences(report, run.wanted.length > 0 ? run.wanted : undefined),
      maxImageBytes: run.inputs.maxImageBytes,
      beforeEnd: async () => {
        digest = artifactDigest(artifact, opened.hasher.digest());
        checkDigest(artifact, digest, run.inputs.expectedDigest);
      },
    },
  });
  core.info(`Written as verified, decompressed: ${shown(copy)}`);
  return { digest, report: written.report };
}
