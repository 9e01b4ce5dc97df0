/** JSON from an untrusted tarball: nesting is bounded before JSON.parse sees it, and every failure is one line. */
import { UserError, messageOf } from '../errors.ts';

export type JsonObject = { [key: string]: unknown };

/** Real manifests and configs nest five or six levels; thousands of levels are an attack on the parser. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

function depthExceeds(content: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < content.length; i++) {
    const byte = content[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** Parses `content`; `what` names the document in errors ("manifest.json", "The image config (…)"). */
export function parseJson(content: Buffer, what: string): unknown {
  if (depthExceeds(content, MAX_JSON_DEPTH)) {
    throw new UserError(
      `${what} nests more than ${MAX_JSON_DEPTH} levels deep; no image document does, so it is refused as hostile.`,
    );
  }
  try {
    return JSON.parse(content.toString('utf8'));
  } catch (error) {
    throw new UserError(`${what} is not valid JSON (${messageOf(error)}); the tarball is corrupt.`);
  }
}
