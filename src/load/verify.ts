/**
 * An artifact downloaded and verified in one read, before any engine receives it: its digest, then every blob. With
 * `load: false` the same read writes the canonical plain tar handed on to scanners (Trivy, Grype), kept only when
 * everything verified; with `oci-layout`, the layout's blobs too.
 */
import * as core from '@actions/core';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createCanonicalWriter } from '../archive/canonical.ts';
import { createArchiveInspector } from '../archive/inspector.ts';
import type { LayoutPart } from '../archive/layout.ts';
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
import { selectionOf, type LoadRun } from './run.ts';

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
          const part = await run.layout?.part();
          const verified = copy
            ? await verifyAndCopy(run, opened, { artifact, copy, part })
            : part
              ? await verifyIntoLayout(run, opened, { artifact, part })
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

/**
 * Verifies and writes the canonical plain tar in one read (and the OCI layout's blobs, with `part`); the copy is left
 * behind only when everything verified.
 */
async function verifyAndCopy(
  run: LoadRun,
  opened: HashedTarball,
  { artifact, copy, part }: { artifact: DownloadedArtifact; copy: string; part: LayoutPart | undefined },
): Promise<{ digest: string; report: ArchiveReport }> {
  let digest = '';
  const written = await writeTarball(() => ({ stream: opened.stream, decode: opened.decode, phase: 'verify' }), {
    file: copy,
    compression: 'none',
    after: part && [part.stream],
    canonical: {
      select: (report) => selectionOf(run, report),
      maxImageBytes: run.inputs.maxImageBytes,
      beforeEnd: async (report) => {
        digest = artifactDigest(artifact, opened.hasher.digest());
        checkDigest(artifact, digest, run.inputs.expectedDigest);
        part?.admit(report, selectionOf(run, report));
      },
    },
  });
  core.info(`Written as verified, decompressed: ${shown(copy)}`);
  return { digest, report: written.report };
}

/** Verifies and writes the OCI layout's blobs in one read; only the layout is kept of the canonical archive. */
async function verifyIntoLayout(
  run: LoadRun,
  opened: HashedTarball,
  { artifact, part }: { artifact: DownloadedArtifact; part: LayoutPart },
): Promise<{ digest: string; report: ArchiveReport }> {
  let digest = '';
  const writer = createCanonicalWriter({
    select: (report) => selectionOf(run, report),
    maxImageBytes: run.inputs.maxImageBytes,
    beforeEnd: async (report) => {
      digest = artifactDigest(artifact, opened.hasher.digest());
      checkDigest(artifact, digest, run.inputs.expectedDigest);
      part.admit(report, selectionOf(run, report));
    },
  });
  const nowhere = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  try {
    await pipeline([opened.stream, ...opened.decode, new ProgressMeter('verify'), writer.stream, part.stream, nowhere]);
  } catch (error) {
    throw error instanceof UserError ? error : (inputProblem(error) ?? error);
  }
  return { digest, report: (await writer.result).report };
}
