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
