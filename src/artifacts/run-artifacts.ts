/**
 * This run's artifacts after an upload: found by listing, deleted until the listing no longer shows them, and held to
 * the tarball written when an upload's outcome is not known.
 */
import * as core from '@actions/core';
import type { Artifact, DefaultArtifactClient } from '@actions/artifact';
import { shown } from '../display.ts';
import { UserError } from '../errors.ts';
import { job, within } from '../job.ts';
import { firstLine } from './errors.ts';
import { asDigest } from './listing.ts';
import { backoff } from './signed-url.ts';

/** An artifact uploaded: its id, name, size and digest as the service recorded them. */
export interface UploadedArtifact {
  id: number;
  name: string;
  size: number;
  /** `sha256:<hex>` of the bytes uploaded. */
  digest: string;
}

/** This run's artifact named `name`, as the service lists it now; undefined when there is none. */
export async function listed(client: DefaultArtifactClient, name: string): Promise<Artifact | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { artifacts } = await within('Listing the artifacts', job.stallMs, () => client.listArtifacts());
      return artifacts.filter((artifact) => artifact.name === name).sort((a, b) => b.id - a.id)[0];
    } catch (error) {
      if (attempt >= 3 || job.stopped) throw error;
      await backoff(attempt + 1);
    }
  }
}

/** Whether this run already has an artifact of that name (listing first: deleting blindly logs a library warning). */
export async function exists(client: DefaultArtifactClient, name: string): Promise<boolean> {
  return (await listed(client, name)) !== undefined;
}

/**
 * Deletes this run's artifact `name`, retried, and makes sure by listing that it is gone. Undefined when it is (or was
 * never there); else why it is still there.
 */
export async function deleteFully(client: DefaultArtifactClient, name: string): Promise<string | undefined> {
  let last = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) await backoff(attempt).catch(() => undefined);
    try {
      await within('Deleting the artifact', job.stallMs, () => client.deleteArtifact(name));
    } catch (error) {
      last = firstLine(error);
    }
    const still = await listed(client, name).catch((error: unknown) => (last = firstLine(error)));
    if (still === undefined) return undefined;
  }
  return last || 'it is still listed';
}

/**
 * The artifact holds other bytes than the tarball written: it is deleted, and the error says so. `because` is what
 * went wrong between the two.
 */
export async function notTheTarball(
  client: DefaultArtifactClient,
  name: string,
  found: { recorded: string | undefined; written: { file: string; digest: string }; because: string },
): Promise<UserError> {
  const { recorded, written, because } = found;
  const failed = await deleteFully(client, name);
  const deleted =
    failed === undefined ? 'and was deleted' : `and deleting it failed (${failed}): delete it from the run`;
  return new UserError(
    `The artifact service recorded ${recorded ?? 'no digest'} for ${shown(name)}, but the tarball written was ` +
      `${written.digest}: ${because}, ${deleted}. The tarball is still at ${shown(written.file)}; run the job again.`,
  );
}

/**
 * After an upload whose outcome is not known (its last answer lost, or it stalled): what the service holds. The
 * tarball, finalized, is the upload done; anything else under the name is deleted.
 */
export async function reconcile(
  client: DefaultArtifactClient,
  name: string,
  written: { digest: string; size: number },
): Promise<UploadedArtifact | undefined> {
  const found = await listed(client, name).catch(() => undefined);
  if (!found) return undefined;
  const digest = found.digest ? asDigest(found.digest) : undefined;
  if (digest === written.digest) {
    core.info(
      `The upload of ${shown(name)} failed as it ended, yet the artifact service holds it whole (${digest}): it was ` +
        'finalized, and only the answer was lost.',
    );
    return { id: found.id, name, size: found.size || written.size, digest };
  }
  const failed = await deleteFully(client, name);
  if (failed !== undefined) {
    throw new UserError(
      `The upload of ${shown(name)} failed and left an artifact of other bytes (${digest ?? 'no digest'}) that could not ` +
        `be deleted (${failed}): delete it from the run, then run the job again.`,
    );
  }
  return undefined;
}
