/**
 * Which of a run's artifacts a delete step removes: every artifact named `name`, or every one whose name `pattern`
 * matches, never more than MAX_DELETIONS. Pure: works on the listing.
 */
import type { RunArtifact } from '../artifacts/delete.ts';
import { shown, shownList, token } from '../display.ts';
import { matchNames } from '../glob.ts';

/**
 * Artifacts one step deletes at most. A `pattern` such as `*` can match hundreds of a run's artifacts, reports and logs
 * among them, and more likely by mistake than not: past the bound nothing is deleted (docs/decisions.md).
 */
export const MAX_DELETIONS = 100;

export type Selection =
  | { kind: 'delete'; doomed: RunArtifact[] }
  /** Nothing of that name: after a failed build there may be none, which is no reason to fail a clean-up. */
  | { kind: 'none'; notice: string }
  | { kind: 'refused'; reason: string };

export interface Wanted {
  name: string;
  /** When given, it picks the artifacts instead of `name`. */
  pattern: string | undefined;
}

/** `a` (id 1001), for the log. */
export function described(artifact: RunArtifact): string {
  return `${shown(artifact.name)} (id ${artifact.id})`;
}

/**
 * A name the library would print in a line of its own where the runner reads a workflow command: this run's artifacts
 * are deleted through the library, which logs each name raw.
 */
function commandInName(name: string): boolean {
  return /\p{Cc}/u.test(name) || name.includes('##[');
}

/** `run` is how the log names the run (`this run`); `viaLibrary`: the names reach the library's own log lines. */
export function select(
  listing: readonly RunArtifact[],
  wanted: Wanted,
  where: { run: string; viaLibrary: boolean },
): Selection {
  const { pattern } = wanted;
  const all = [...new Set(listing.map((artifact) => artifact.name))].sort();
  const names = new Set(
    pattern === undefined ? [wanted.name].filter((name) => all.includes(name)) : matchNames(pattern, all),
  );
  const doomed = listing
    .filter((artifact) => names.has(artifact.name))
    .sort((a, b) => (a.name === b.name ? a.id - b.id : a.name < b.name ? -1 : 1));
  const which = pattern === undefined ? `named ${shown(wanted.name)}` : `matching \`pattern\` ${token(pattern)}`;
  if (doomed.length === 0) {
    const has = all.length === 0 ? 'it has no artifacts at all' : `it has ${shownList(all)}`;
    return {
      kind: 'none',
      notice: `No artifact ${which} in ${where.run}: nothing to delete (never uploaded, expired, or deleted already); ${has}.`,
    };
  }
  if (doomed.length > MAX_DELETIONS) {
    return {
      kind: 'refused',
      reason:
        `${doomed.length} artifacts ${which} in ${where.run}, more than the ` +
        `${MAX_DELETIONS} one step deletes: nothing was deleted; narrow \`pattern\`, or split it over several steps.`,
    };
  }
  const unsafe = where.viaLibrary ? doomed.find((artifact) => commandInName(artifact.name)) : undefined;
  if (unsafe) {
    return {
      kind: 'refused',
      reason:
        `The artifact ${shown(unsafe.name)} of ${where.run}, which \`pattern\` ${token(pattern ?? '')} matches, has a ` +
        "name the runner would read as a workflow command in the artifact library's log: nothing was deleted; narrow " +
        '`pattern` to leave it out.',
    };
  }
  return { kind: 'delete', doomed };
}
