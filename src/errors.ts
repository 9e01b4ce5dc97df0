import { shownList } from './display.ts';

/**
 * A failure the user can meet and fix. main() prints its message as one line (no stack trace); the optional
 * details are printed before it, in their own log group, for the context the user needs to fix it.
 */
export class UserError extends Error {
  readonly details: readonly string[];

  constructor(message: string, details: readonly string[] = []) {
    super(message);
    this.name = 'UserError';
    this.details = details;
  }
}

/** The message of anything thrown, for wrapping into a UserError. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Something that had to make progress did not, within its stall timeout: named for what stalled and how long. */
export class Stalled extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'Stalled';
  }
}

/** The tarball is refused: what is wrong with it, in one line built where the problem is found. */
export class ArchiveRefused extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveRefused';
  }
}

/** Refuses the tarball with `message`. */
export function refuse(message: string): never {
  throw new ArchiveRefused(message);
}

/** Tags that are not where they were to be saved from: which, of how many, where, and what to do. */
export class TagsNotFound extends UserError {
  readonly missing: readonly string[];

  constructor(
    found: { missing: readonly string[]; total: number; where: string; hint: string },
    next: string,
    details: readonly string[] = [],
  ) {
    super(`${tagsNotFoundLine(found)}; ${next}`, details);
    this.name = 'TagsNotFound';
    this.missing = found.missing;
  }
}

/** "2 of 3 tags are not in the docker engine: `a`, `b` (did you mean `x`?)": the line, and the warning of `if-missing: warn`. */
export function tagsNotFoundLine(found: {
  missing: readonly string[];
  total: number;
  where: string;
  hint: string;
}): string {
  const { missing, total, where, hint } = found;
  return `${missing.length} of ${total} tags ${missing.length === 1 ? 'is' : 'are'} not in ${where}: ${shownList(missing)}${hint}`;
}
