/**
 * The digest rules of a downloaded artifact, without I/O: its digest is the file's, or for a zip artifact the zip's as
 * downloaded; it must match what the artifact service recorded and `expected-digest`.
 */
import type { DownloadedArtifact } from '../artifacts/listing.ts';
import { compareDigests } from '../digest.ts';
import { shown } from '../display.ts';
import { UserError } from '../errors.ts';

/** The artifact's digest, from the file's: a zip artifact's is the zip's, which `expected-digest` is held to. */
export function artifactDigest(artifact: DownloadedArtifact, fileDigest: string): string {
  return artifact.zip ? artifact.zip.digest : fileDigest;
}

/** The artifact's size: the file's, or for a zip artifact the zip's, as downloaded. */
export function artifactSize(artifact: DownloadedArtifact): number {
  return artifact.zip?.size ?? artifact.size;
}

/** The downloaded bytes are not the artifact the digests name: which digests differ, and what to do. */
export class DigestMismatch extends UserError {
  readonly actual: string;

  constructor(artifact: { name: string; zip: boolean }, actual: string, mismatches: readonly string[]) {
    super(
      `The downloaded artifact ${shown(artifact.name)}${artifact.zip ? ' (a zip)' : ''} hashes to ${actual}, but ${mismatches.join(' and ')}: ` +
        (artifact.zip
          ? "it was replaced since, or `expected-digest` is not this artifact's digest: for a zip it takes the zip's " +
            "digest (upload-artifact's `artifact-digest` output), not the tarball's. Nothing was loaded."
          : 'the bytes are not the ones uploaded (corrupted or replaced); nothing was loaded. Run the save job again.'),
    );
    this.name = 'DigestMismatch';
    this.actual = actual;
  }
}

/**
 * The artifact's digest against the one the artifact service recorded and `expected-digest`: the error when one
 * differs, else the line to log.
 */
export function compareArtifactDigest(
  artifact: DownloadedArtifact,
  digest: string,
  expectedDigest: string | undefined,
): { mismatch: DigestMismatch | undefined; line: string } {
  const { zip } = artifact;
  const recorded = zip ? zip.recordedDigest : artifact.recordedDigest;
  const { mismatches, line } = compareDigests(
    { actual: digest, recorded, expected: expectedDigest },
    zip ? 'sha256 of the zip' : 'sha256',
  );
  if (mismatches.length === 0) return { mismatch: undefined, line };
  return { mismatch: new DigestMismatch({ name: artifact.name, zip: zip !== undefined }, digest, mismatches), line };
}
