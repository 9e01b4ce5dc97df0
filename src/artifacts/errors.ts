/**
 * The artifact service's failures as the action reports them, and what the library's errors say: the library throws
 * plain Errors, so what they are is read here, in one place, from their text.
 */
import { UserError, messageOf } from '../errors.ts';

/** The library's errors can span lines (advice, links); the action prints one line per failure. */
export function firstLine(error: unknown): string {
  // Without its own final period: the messages here go on after it.
  return (messageOf(error).split('\n')[0]?.trim() ?? '').replace(/\.$/, '');
}

/** The service refused to create an artifact because the run has one of that name (Twirp's 409, in the text only). */
export function isNameTaken(error: unknown): boolean {
  return /\(409\)/.test(messageOf(error));
}

/**
 * The HTTP status of a failed call: an Octokit error's `status` (the REST API), or the `(403)` of the library's Twirp
 * errors (`Failed request: (403) Forbidden: …`), which carry it in their text only.
 */
export function statusOf(error: unknown): number | undefined {
  const { status, request, response } = (error ?? {}) as { status?: unknown; request?: unknown; response?: unknown };
  // Octokit gives a request that got no answer (a reset, a refused connection) the status 500 of its own.
  if (request !== undefined && response === undefined) return undefined;
  if (typeof status === 'number' && status > 0) return status;
  const twirp = /Failed request: \((\d{3})\)/.exec(messageOf(error));
  return twirp ? Number(twirp[1]) : undefined;
}

/** Whether asking again may get another answer: none came, a 5xx, a timeout (408) or too many requests (429). */
export function mayChange(status: number | undefined): boolean {
  return status === undefined || status >= 500 || status === 408 || status === 429;
}

/** A call to the artifact service failed: `<doing> failed: <the cause's first line>. <what state it left, what to do>` */
export class ArtifactServiceFailed extends UserError {
  constructor(doing: string, cause: unknown, next: string) {
    super(`${doing} failed: ${firstLine(cause)}. ${next}`);
    this.name = 'ArtifactServiceFailed';
  }
}
