/**
 * The decisions save mode makes about tags, without I/O: which of them are invalid and the line that says so, the
 * report of tags that are missing (what there is, what was probably meant), and how the engine's images are shown.
 */
import { shown, shownList } from '../display.ts';
import type { ImageRow } from '../engine/output.ts';
import { UserError } from '../errors.ts';
import { mostRelevant, moreLine } from '../listing.ts';
import { adviceForInvalidTags, problemsWithSaveTags, referencesSeparatedByWhiteSpace } from '../metadata.ts';
import { suggest } from '../suggest.ts';

/**
 * The error for invalid references among `tags` (from `source`), or undefined when all are fine: every one of them
 * named in the line and explained in the details, with what `where` has, what was probably meant, and advice that fits
 * where the tags came from.
 */
export function invalidTags(
  tags: readonly string[],
  source: string,
  available: { where: string; references: readonly string[] },
): UserError | undefined {
  const problems = problemsWithSaveTags(tags);
  if (problems.length === 0) return undefined;
  const { where, references } = available;
  const invalid = tags.filter((tag) => problemsWithSaveTags([tag]).length > 0);
  const hints: string[] = [];
  for (const tag of invalid) {
    // Several references run together are not a misspelling of one of them.
    const hint = referencesSeparatedByWhiteSpace(tag) ? undefined : suggest(tag, references);
    if (hint) hints.push(`${shown(tag)} → did you mean \`${hint.reference}\`? (${hint.why})`);
  }
  const { shown: listed, more } = mostRelevant(references, (reference) => reference, invalid);
  const details = [
    ...problems.map((problem) => `invalid: ${problem}`),
    ...(references.length > 0
      ? [`${where} has:`, ...listed.map((reference) => `  ${reference}`), ...moreLine(more)]
      : []),
    ...hints,
  ];
  const which = invalid.length === 1 ? problems[0] : `${shownList(invalid)} (each explained above)`;
  const first = hints[0] ? `; ${hints[0]}` : '';
  return new UserError(
    `${invalid.length} of ${tags.length} image reference${tags.length === 1 ? '' : 's'} from ${source} ` +
      `${invalid.length === 1 ? 'is' : 'are'} invalid: ${which}${first}. ${adviceForInvalidTags(invalid, source)}`,
    details,
  );
}

/** The references of the engine's tagged images (untagged ones list as `<none>:<none>`). */
export function taggedReferences(rows: readonly ImageRow[]): string[] {
  return rows.map((row) => row.reference).filter((reference) => !reference.includes('<none>'));
}

/** The engine's images as `docker image ls` shows them, those of the repositories of `wanted` first, capped. */
export function imagesTable(rows: readonly ImageRow[], wanted: readonly string[]): string[] {
  const { shown: listed, more } = mostRelevant(rows, (row) => row.reference, wanted);
  const header: ImageRow = { reference: 'REPOSITORY:TAG', id: 'IMAGE ID', created: 'CREATED', size: 'SIZE' };
  const all = [header, ...listed];
  const width = (key: keyof ImageRow) => Math.max(...all.map((row) => row[key].length));
  const [w1, w2, w3] = [width('reference'), width('id'), width('created')];
  return [
    ...all.map((row) => `  ${row.reference.padEnd(w1)}  ${row.id.padEnd(w2)}  ${row.created.padEnd(w3)}  ${row.size}`),
    ...moreLine(more),
  ];
}

/** The references of a tarball, as a listing: those of the repositories of `wanted` first, capped. */
export function referencesTable(references: readonly string[], wanted: readonly string[]): string[] {
  const { shown: listed, more } = mostRelevant(references, (reference) => reference, wanted);
  return [...listed.map((reference) => `  ${reference}`), ...moreLine(more)];
}

/**
 * What users need when a tag is missing: the missing tags, everything `where` has (`table`), and what was meant. The
 * `hint` is the first suggestion, for the one line.
 */
export function missingReport(
  missing: readonly string[],
  available: { where: string; references: readonly string[]; table: readonly string[] },
): { details: string[]; hint: string } {
  const { where, references, table } = available;
  const hints = missing.map((tag) => ({ tag, hint: suggest(tag, references) }));
  const details = [
    `Missing from ${where}:`,
    ...missing.map((tag) => `  ${tag}`),
    references.length > 0 ? `${where} has:` : `${where} has no tagged images at all.`,
    ...table,
    ...hints.map(({ tag, hint }) =>
      hint
        ? `did you mean \`${hint.reference}\` for \`${tag}\`? (${hint.why})`
        : `nothing in ${where} resembles \`${tag}\``,
    ),
  ];
  const first = hints.find(({ hint }) => hint);
  return { details, hint: first?.hint ? ` (did you mean \`${first.hint.reference}\`?)` : '' };
}
