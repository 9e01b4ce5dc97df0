/**
 * What a delete step did once it has tried: the artifacts gone, and the one line of a step that could not delete them
 * all, with the permission to grant when that is why. Pure.
 */
import type { CallFailed, Deletion, RunArtifact } from '../artifacts/delete.ts';
import type { FindBy } from '../artifacts/listing.ts';
import { shownList } from '../display.ts';
import { described } from './selection.ts';

export interface Tried {
  doomed: readonly RunArtifact[];
  /** What the service answered for each artifact it deleted or found gone, by id. */
  answers: ReadonlyMap<number, Deletion>;
  /** The deletion that failed, after which no other was tried. */
  failure: { artifact: RunArtifact; error: CallFailed } | undefined;
  /**
   * What may still be there: what the last listing still showed of `doomed`, or after a failure, what the round it
   * ended had still to delete.
   */
  still: readonly RunArtifact[];
  /** Rounds of deletion made (a round deletes what the listing before it still showed). */
  rounds: number;
}

/** The artifacts known gone: those the service answered for that are not `still` there. */
export function gone(tried: Tried): RunArtifact[] {
  const still = new Set(tried.still.map((artifact) => artifact.id));
  return tried.doomed.filter((artifact) => tried.answers.has(artifact.id) && !still.has(artifact.id));
}

/** What the listing still shows of `doomed`, matched by id. */
export function stillListed(doomed: readonly RunArtifact[], listing: readonly RunArtifact[]): RunArtifact[] {
  const listed = new Set(listing.map((artifact) => artifact.id));
  return doomed.filter((artifact) => listed.has(artifact.id));
}

/** Where to grant `actions: write`, for another run's artifacts: the token is the job's unless one was given. */
function grant(findBy: FindBy): string {
  return (
    `\`github-token\` needs \`actions: write\` on ${findBy.repositoryOwner}/${findBy.repositoryName}: add ` +
    '`actions: write` to the `permissions:` of this job, or give a token that has it'
  );
}

const names = (artifacts: readonly RunArtifact[]) => shownList(artifacts.map((artifact) => artifact.name));

/** The line of a step that did not delete everything it chose; undefined when it did. */
export function failureLine(tried: Tried, where: { run: string; findBy: FindBy | undefined }): string | undefined {
  const { failure } = tried;
  const { findBy } = where;
  if (failure) {
    const deleted = gone(tried);
    const left = tried.doomed.filter((artifact) => !deleted.includes(artifact));
    const progress =
      deleted.length === 0
        ? 'Nothing was deleted.'
        : `Deleted before it: ${names(deleted)}; not deleted: ${names(left)}.`;
    const doing = `Deleting ${described(failure.artifact)} of ${where.run}`;
    if (failure.error.denied && findBy) {
      return `${doing} was refused (${failure.error.message}): ${grant(findBy)}. ${progress}`;
    }
    const attempts = `${failure.error.attempts} attempt${failure.error.attempts === 1 ? '' : 's'}`;
    return `${doing} failed after ${attempts}: ${failure.error.message}. ${progress} Run the job again.`;
  }
  if (tried.still.length === 0) return undefined;
  const still = `${names(tried.still)} ${tried.still.length === 1 ? 'is' : 'are'} still listed in ${where.run}`;
  const rounds = `after ${tried.rounds} round${tried.rounds === 1 ? '' : 's'} of deletion`;
  if (findBy && tried.still.some((artifact) => tried.answers.get(artifact.id) === 'gone')) {
    // GitHub answers 404 rather than 403 where a token may not even see what it asked to delete.
    return `${still} ${rounds}, though the API answered 404 Not Found, which it also answers a token that may not delete there: ${grant(findBy)}.`;
  }
  return `${still} ${rounds}, though the artifact service answered that it deleted them. Run the job again.`;
}
