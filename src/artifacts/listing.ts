/**
 * Where load mode reads artifacts, and the listing of a run's artifacts through @actions/artifact (this run's, or
 * another's through the REST API with `findBy`), shared by the download and the upload.
 */
import { DefaultArtifactClient, type Artifact, type FindOptions } from '@actions/artifact';
import { shown } from '../display.ts';
import { Stalled, UserError } from '../errors.ts';
import { job, within } from '../job.ts';
import { currentRepository, isRepository } from '../github.ts';
import { ArtifactServiceFailed } from './errors.ts';

export interface ArtifactLocation {
  /** Another workflow run to read from; the current run when absent. */
  runId?: number;
  /** `owner/name` of runId's repository; the current repository when absent. */
  repository?: string;
  /** A token with `actions: read` on that repository, needed with runId. */
  token?: string;
}

export interface DownloadedArtifact {
  id: number;
  name: string;
  file: string;
  /** Bytes of `file`; for a download still under way, the artifact service's figure until it has ended. */
  size: number;
  /**
   * Settles when the library has finished writing `file`. A raw artifact is handed over while it downloads, so that
   * it is verified as it arrives: readers follow the file as it grows (tarball.ts) and end only after this resolves.
   */
  downloaded: Promise<void>;
  /** Whether `file` was handed over before its download ended (then `downloaded` says when it has). */
  arriving: boolean;
  /**
   * `sha256:<hex>` the artifact service recorded at upload, which `file` must hash to. Undefined when the service
   * has none, and for a zip artifact: its digest is the zip's, which downloadFile checks itself.
   */
  recordedDigest: string | undefined;
  /**
   * A zip artifact (actions/upload-artifact's default), whose one file `file` is: the zip as downloaded is the
   * artifact, so its digest (checked here against the recorded one) and size are the artifact's.
   */
  zip: { digest: string; size: number; recordedDigest: string | undefined } | undefined;
  /** Stops a download still under way (what it wrote is the caller's to remove). */
  abort(): void;
}

export type FindBy = NonNullable<FindOptions['findBy']>;

/** The Results service records the hash the library sends (`sha256:<hex>`); the upload result is bare hex. */
export function asDigest(hash: string): string {
  return hash.startsWith('sha256:') ? hash : `sha256:${hash}`;
}

export function findByOf(location: ArtifactLocation): FindBy | undefined {
  if (location.runId === undefined) return undefined;
  const repository = location.repository ?? currentRepository() ?? '';
  const [repositoryOwner = '', repositoryName = ''] = repository.split('/');
  if (!isRepository(repository)) {
    throw new UserError(
      `Reading the artifacts of run ${location.runId} needs a repository as owner/name, found ${shown(repository)}.`,
    );
  }
  if (!location.token) {
    throw new UserError(
      `Reading the artifacts of run ${location.runId} needs a token with \`actions: read\`: set \`github-token\`.`,
    );
  }
  return { workflowRunId: location.runId, repositoryOwner, repositoryName, token: location.token };
}

export function describeRun(findBy: FindBy | undefined): string {
  return findBy ? `run ${findBy.workflowRunId} of ${findBy.repositoryOwner}/${findBy.repositoryName}` : 'this run';
}

export async function listLatest(findBy: FindBy | undefined): Promise<Artifact[]> {
  try {
    // Retried once more after a listing that never answered: the library's requests have no deadline.
    for (let attempt = 1; ; attempt++) {
      try {
        const { artifacts } = await within(`Listing the artifacts of ${describeRun(findBy)}`, job.stallMs, () =>
          new DefaultArtifactClient().listArtifacts({ latest: true, ...(findBy && { findBy }) }),
        );
        return artifacts;
      } catch (error) {
        if (!(error instanceof Stalled) || attempt >= 2) throw error;
      }
    }
  } catch (error) {
    throw new ArtifactServiceFailed(
      `Listing the artifacts of ${describeRun(findBy)}`,
      error,
      findBy
        ? "Check `run-id` and `repository`, and that `github-token` may read that repository's actions (`actions: read`)."
        : 'The artifact service did not answer: re-run the job.',
    );
  }
}

/** Names of the artifacts of the current run, or of `location.runId`. */
export async function listArtifactNames(location: ArtifactLocation): Promise<string[]> {
  const artifacts = await listLatest(findByOf(location));
  return artifacts.map((artifact) => artifact.name).sort();
}

/**
 * HANDOFF_TRANSFERS=serial: upload after the save and read a download once it is complete, as before transfers
 * overlapped the CPU work. For the benchmark, which measures both ways; not an input, as overlapping is never wrong.
 */
export function transfersInSeries(): boolean {
  return process.env.HANDOFF_TRANSFERS === 'serial';
}
