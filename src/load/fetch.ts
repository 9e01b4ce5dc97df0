/**
 * An artifact fetched for load mode: downloaded (handed over while it arrives), opened for one read that also hashes
 * it, and, when it cannot be used, removed from the runner so that no later step takes it by mistake.
 */
import * as core from '@actions/core';
import { rm, rmdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { ArchiveReport } from '../archive/model.ts';
import { openTarball, type OpenedTarball } from '../archive/tarball.ts';
import { downloadFile } from '../artifacts/download.ts';
import type { DownloadedArtifact } from '../artifacts/listing.ts';
import { describeImages } from '../action/summary.ts';
import { shown, shownList } from '../display.ts';
import { UserError } from '../errors.ts';
import { HashingStream, hashFile } from '../hash.ts';
import { BOUND_BY_SIZE, boundFor, job } from '../job.ts';
import { formatBytes } from '../progress.ts';
import { artifactDigest, compareArtifactDigest } from './digests.ts';
import type { LoadRun } from './run.ts';

/** Downloads artifact `name` in its own log group; the step's bound follows its size, and a stop removes it. */
export async function download(run: LoadRun, name: string): Promise<DownloadedArtifact> {
  const { inputs, location, timer } = run;
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
export async function failedAlready(artifact: DownloadedArtifact): Promise<unknown> {
  let failure: unknown;
  artifact.downloaded.catch((error: unknown) => (failure = error));
  // Once the promise jobs already due have run, a settled download has said how.
  await new Promise((resolve) => setImmediate(resolve));
  return failure;
}

/** The download's own failure, once it has ended: the cause of whatever failed while it was under way. */
export async function downloadFailure(artifact: DownloadedArtifact): Promise<unknown> {
  return artifact.downloaded.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** A download that failed verification is not left on the runner for a later step to pick up by mistake. */
export async function discard(file: string): Promise<void> {
  await rm(file, { force: true });
  // The directory the download was made in, when nothing else is in it.
  await rmdir(path.dirname(file)).catch(() => undefined);
}

/** A download opened for one read that also hashes it: `hasher` holds the file's digest once the read is over. */
export interface HashedTarball extends OpenedTarball {
  hasher: HashingStream;
}

/** `copy`: the plain tar the read also writes, whose free disk caps the decompression. */
export async function openHashed(artifact: DownloadedArtifact, copy?: string): Promise<HashedTarball> {
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
 * Opens a download for its one read; an artifact that is not an image tarball at all stops its download and leaves
 * nothing on the runner.
 */
export async function openOrDiscard(artifact: DownloadedArtifact, copy?: string): Promise<HashedTarball> {
  try {
    return await openHashed(artifact, copy);
  } catch (error) {
    const failed = await failedAlready(artifact);
    artifact.abort();
    await artifact.downloaded.catch(() => undefined);
    await discard(artifact.file);
    throw failed ?? error;
  }
}

/** Fails when the artifact's digest is not the one recorded or expected; else logs the line that says it matched. */
export function checkDigest(artifact: DownloadedArtifact, digest: string, expectedDigest: string | undefined): void {
  const { mismatch, line } = compareArtifactDigest(artifact, digest, expectedDigest);
  if (mismatch) throw mismatch;
  core.info(line);
}

export function logVerified(report: ArchiveReport, compression: OpenedTarball['compression']): void {
  core.info(
    `${report.format} (${compression === 'none' ? 'uncompressed' : compression}): ${describeImages(report)}, ` +
      `${report.blobs.length} blobs verified, references: ${shownList(report.references) || 'none'}`,
  );
  for (const warning of report.warnings) core.warning(warning);
}

/**
 * The cause of a read that failed: when the file is not the one uploaded, that is the cause, whatever broke first
 * (a layer that no longer matches, a zstd frame that no longer decodes); the digest is only known at the end of a
 * read, so the rest of the file is hashed for it.
 */
export async function causeOf(error: unknown, artifact: DownloadedArtifact, expectedDigest: string | undefined) {
  if (!(error instanceof UserError) || (!artifact.recordedDigest && !expectedDigest)) return error;
  const { digest } = await hashFile(artifact.file).catch(() => ({ digest: undefined }));
  if (digest === undefined) return error;
  return compareArtifactDigest(artifact, artifactDigest(artifact, digest), expectedDigest).mismatch ?? error;
}
