/**
 * How much of a long list of references to show a user: an engine may hold thousands of images, and the ones worth
 * reading are those of the repositories the user asked for. Pure: works on reference strings only.
 */
import { andMore } from './display.ts';
import { parseReference, qualifiedName } from './reference.ts';

/** Rows of a listing shown before "… and N more". */
export const LISTING_LIMIT = 15;

/** The repository of a reference, case-folded, qualified when it parses, so `app` and `docker.io/library/app` meet. */
function repositoryOf(reference: string): string {
  const folded = reference.toLowerCase();
  const parsed = parseReference(folded);
  if (parsed.ok) return qualifiedName(parsed.ref);
  const colon = folded.lastIndexOf(':');
  return colon > folded.lastIndexOf('/') ? folded.slice(0, colon) : folded;
}

/**
 * At most `limit` of `items`: those in a repository of `wanted` first, then the rest, each group in its given
 * order (the engine lists the newest first); `more` is how many were left out.
 */
export function mostRelevant<T>(
  items: readonly T[],
  referenceOf: (item: T) => string,
  wanted: readonly string[],
  limit = LISTING_LIMIT,
): { shown: T[]; more: number } {
  const repositories = new Set(wanted.map(repositoryOf));
  const related = items.filter((item) => repositories.has(repositoryOf(referenceOf(item))));
  const others = items.filter((item) => !repositories.has(repositoryOf(referenceOf(item))));
  const shown = [...related, ...others].slice(0, limit);
  return { shown, more: items.length - shown.length };
}

/** The line that ends a capped listing, or nothing when it was shown whole. */
export function moreLine(more: number): string[] {
  return more > 0 ? [`  ${andMore(more)}`] : [];
}
