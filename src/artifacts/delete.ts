/**
 * Deleting a run's artifacts: this run's through the Results service with the runtime token (the library's
 * deleteArtifact, by name), another run's through the REST API by ID, with a token that may write there. Every call
 * has the stall timeout as its deadline and is tried at most twice; one that cannot be made is a CallFailed, which
 * the delete flow turns into its one line.
 */
import * as github from '@actions/github';
import { ArtifactNotFoundError, DefaultArtifactClient } from '@actions/artifact';
import { shown } from '../display.ts';
import { Stalled } from '../errors.ts';
import { job, within } from '../job.ts';
import { ArtifactServiceFailed, firstLine, mayChange, statusOf } from './errors.ts';
import { describeRun, type FindBy } from './listing.ts';
import { backoff } from './signed-url.ts';

/** An artifact of a run, as the listing names it. */
export interface RunArtifact {
  id: number;
  name: string;
}

/** What a delete call found: the artifact deleted, or already gone (the service knows no such artifact). */
export type Deletion = 'deleted' | 'gone';

/** A call tried once more after a failure or a stall; never after a refusal, which trying again does not change. */
const ATTEMPTS = 2;

/** A call the service did not answer as asked: why, in words safe to print, and whether the token lacks permission. */
export class CallFailed extends Error {
  /** 403 for a reason other than a rate limit: the token may not delete there. */
  readonly denied: boolean;
  readonly attempts: number;

  constructor(message: string, found: { denied: boolean; attempts: number }) {
    super(message);
    this.name = 'CallFailed';
    this.denied = found.denied;
    this.attempts = found.attempts;
  }
}

/** GitHub answers 403 (or 429) to a token over its rate limit, too: that passes, a missing permission does not. */
function rateLimited(error: unknown): boolean {
  return /rate limit/i.test(firstLine(error));
}

/** An answer that trying again will not change: a 4xx other than 408, 429 and a rate limit. */
function refusal(error: unknown): number | undefined {
  const status = statusOf(error);
  const final = status !== undefined && status >= 400 && status < 500 && !mayChange(status);
  return final && !rateLimited(error) ? status : undefined;
}

/** What went wrong with a call, to follow "failed: ". The service's words are shown as a value from outside. */
function problemOf(error: unknown): string {
  if (error instanceof Stalled) return `no result within ${Math.round(job.stallMs / 1000)} s`;
  const status = statusOf(error);
  return `${status === undefined ? '' : `${status} `}${shown(firstLine(error))}`;
}

/** `call`, tried again once after a failure that is not a refusal, after a backoff. */
async function attempted<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) await backoff(attempt);
    try {
      return await call();
    } catch (error) {
      job.check();
      const refused = refusal(error);
      if (refused === undefined && attempt < ATTEMPTS) continue;
      throw new CallFailed(problemOf(error), { denied: refused === 403, attempts: attempt });
    }
  }
}

/**
 * Every artifact of the run, not only the newest of each name: a delete leaves none of a name behind. The library
 * lists another run's by pages of 100, up to its bound of 1000. `next` ends the line of a failure.
 */
export async function listRunArtifacts(findBy: FindBy | undefined, next: string): Promise<RunArtifact[]> {
  const doing = `Listing the artifacts of ${describeRun(findBy)}`;
  try {
    const { artifacts } = await attempted(() =>
      within(doing, job.stallMs, () => new DefaultArtifactClient().listArtifacts(findBy ? { findBy } : {})),
    );
    return artifacts.map(({ id, name }) => ({ id, name }));
  } catch (error) {
    if (!(error instanceof CallFailed)) throw error;
    const advice = findBy
      ? " Check `run-id` and `repository`, and that `github-token` may delete that repository's artifacts (`actions: write`)."
      : '';
    throw new ArtifactServiceFailed(doing, error.message, `${next}.${advice}`);
  }
}

/** Deletes one artifact of this run, or of `findBy`'s, and says whether it was there to delete. */
export async function deleteRunArtifact(artifact: RunArtifact, findBy: FindBy | undefined): Promise<Deletion> {
  return attempted(() => (findBy ? deleteById(artifact, findBy) : deleteByName(artifact)));
}

/** This run's, through the Results service: the library lists the name and deletes the newest artifact of it. */
async function deleteByName(artifact: RunArtifact): Promise<Deletion> {
  try {
    await within(`Deleting ${shown(artifact.name)}`, job.stallMs, () =>
      new DefaultArtifactClient().deleteArtifact(artifact.name),
    );
    return 'deleted';
  } catch (error) {
    if (error instanceof ArtifactNotFoundError || statusOf(error) === 404) return 'gone';
    throw error;
  }
}

/**
 * Another run's, through the REST API by the ID the listing gave: exactly that artifact (the library's findBy would
 * look the name up again, and delete the newest of it).
 */
async function deleteById(artifact: RunArtifact, findBy: FindBy): Promise<Deletion> {
  const timeout = AbortSignal.timeout(job.stallMs);
  try {
    await github.getOctokit(findBy.token).rest.actions.deleteArtifact({
      owner: findBy.repositoryOwner,
      repo: findBy.repositoryName,
      artifact_id: artifact.id,
      request: { signal: AbortSignal.any([job.signal, timeout]) },
    });
    return 'deleted';
  } catch (error) {
    job.check();
    if (timeout.aborted) throw new Stalled(`Deleting ${shown(artifact.name)} did not answer`);
    if (statusOf(error) === 404) return 'gone';
    throw error;
  }
}
