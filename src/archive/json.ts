/**
 * JSON from an untrusted tarball, read only where Go's encoding/json (which docker, containerd and the scanners use)
 * would read the same values: a document that one reader would take differently from the other is refused.
 * docs/decisions/json-as-go-reads-it.md lists the rules and where in Go's source each comes from.
 */
import { shown } from '../display.ts';
import { UserError, messageOf } from '../errors.ts';
import { INTEGER_FOLDED, MAP_FOLDED, SCHEMAS, goFold, type Fields, type JsonSchema } from './json-fields.ts';

export { goFold, type JsonSchema } from './json-fields.ts';

export type JsonObject = { [key: string]: unknown };

/** Real manifests and configs nest five or six levels; thousands of levels are an attack on the parser. */
export const MAX_JSON_DEPTH = 64;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why a document is refused, with where in it (`.manifests[0].platform`). */
class Refusal extends Error {}
/** Not JSON at all: JSON.parse says why, in its words. */
class SyntaxRefusal extends Error {}

/**
 * One pass over the text with JSON's grammar, checking what JSON.parse does not: every object's keys against each
 * other and against the fields Go knows, escapes that Go decodes differently, and integer fields written as Go reads
 * them. The values themselves come from JSON.parse afterwards.
 */
class Scanner {
  readonly #text: string;
  readonly #fields: Fields;
  #at = 0;
  readonly #path: string[] = [];

  constructor(text: string, schema: JsonSchema) {
    this.#text = text;
    this.#fields = SCHEMAS[schema];
  }

  run(): void {
    this.#value(0, false);
    this.#space();
    if (this.#at < this.#text.length) this.#syntax();
  }

  #syntax(): never {
    throw new SyntaxRefusal();
  }

  #refuse(problem: string): never {
    const where = this.#path.length > 0 ? ` at ${this.#path.join('')}` : '';
    throw new Refusal(`${problem}${where}`);
  }

  #space(): void {
    const text = this.#text;
    while (this.#at < text.length) {
      const code = text.charCodeAt(this.#at);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return;
      this.#at++;
    }
  }

  /** `inMap`: the value is a map's (its object keys are compared exactly); `integer`: it must be an integer literal. */
  #value(depth: number, inMap: boolean, integer = false): void {
    this.#space();
    const code = this.#text.charCodeAt(this.#at);
    if (code === 0x7b || code === 0x5b) {
      if (depth >= MAX_JSON_DEPTH) throw new DepthRefusal();
      if (code === 0x7b) this.#object(depth + 1, inMap);
      else this.#array(depth + 1);
    } else if (code === 0x22) {
      this.#string();
    } else {
      this.#literal(integer);
    }
  }

  #object(depth: number, isMap: boolean): void {
    this.#at++;
    const exact = new Set<string>();
    const folded = new Map<string, string>();
    this.#space();
    if (this.#text.charCodeAt(this.#at) === 0x7d) {
      this.#at++;
      return;
    }
    for (;;) {
      this.#space();
      if (this.#text.charCodeAt(this.#at) !== 0x22) this.#syntax();
      const key = this.#string();
      if (exact.has(key)) this.#refuse(`has the key ${shown(key, 60)} twice in one object`);
      exact.add(key);
      const fold = goFold(key);
      if (!isMap) {
        const twin = folded.get(fold);
        if (twin !== undefined) {
          this.#refuse(
            `has the keys ${shown(twin, 60)} and ${shown(key, 60)} in one object, which Go reads as one field ` +
              '(it matches keys without regard to case, the last one winning)',
          );
        }
        folded.set(fold, key);
        const field = this.#fields.folded.get(fold);
        if (field !== undefined && !this.#fields.exact.has(key)) {
          this.#refuse(
            `has the key ${shown(key, 60)}, which Go reads as the field ${shown(field)} and this action would not`,
          );
        }
      }
      this.#space();
      if (this.#text.charCodeAt(this.#at) !== 0x3a) this.#syntax();
      this.#at++;
      this.#path.push(/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key) ? `.${key}` : `[${shown(key, 60)}]`);
      this.#value(depth, !isMap && MAP_FOLDED.has(fold), !isMap && INTEGER_FOLDED.has(fold));
      this.#path.pop();
      this.#space();
      const next = this.#text.charCodeAt(this.#at++);
      if (next === 0x7d) return;
      if (next !== 0x2c) this.#syntax();
    }
  }

  #array(depth: number): void {
    this.#at++;
    this.#space();
    if (this.#text.charCodeAt(this.#at) === 0x5d) {
      this.#at++;
      return;
    }
    for (let index = 0; ; index++) {
      this.#path.push(`[${index}]`);
      this.#value(depth, false);
      this.#path.pop();
      this.#space();
      const next = this.#text.charCodeAt(this.#at++);
      if (next === 0x5d) return;
      if (next !== 0x2c) this.#syntax();
    }
  }

  /** A string at the cursor, decoded; an escaped surrogate that is not half of a pair is refused (Go reads U+FFFD). */
  #string(): string {
    const text = this.#text;
    const start = ++this.#at;
    let escaped = false;
    for (;;) {
      if (this.#at >= text.length) this.#syntax();
      const code = text.charCodeAt(this.#at);
      if (code === 0x22) break;
      if (code < 0x20) this.#syntax();
      if (code !== 0x5c) {
        this.#at++;
        continue;
      }
      escaped = true;
      const kind = text[this.#at + 1];
      if (kind === 'u') {
        const unit = this.#unit(this.#at + 2);
        this.#at += 6;
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const low = text.startsWith('\\u', this.#at) ? this.#unit(this.#at + 2) : -1;
          if (low < 0xdc00 || low > 0xdfff) this.#loneSurrogate();
          this.#at += 6;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
          this.#loneSurrogate();
        }
      } else if (kind !== undefined && '"\\/bfnrt'.includes(kind)) {
        this.#at += 2;
      } else {
        this.#syntax();
      }
    }
    const raw = text.slice(start, this.#at);
    this.#at++;
    return escaped ? (JSON.parse(`"${raw}"`) as string) : raw;
  }

  #unit(at: number): number {
    const hex = this.#text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#syntax();
    return parseInt(hex, 16);
  }

  #loneSurrogate(): never {
    this.#refuse('has an escaped lone surrogate in a string, which Go reads as U+FFFD and JavaScript keeps');
  }

  #literal(integer: boolean): void {
    const rest = this.#text.slice(this.#at, this.#at + 400);
    const word = /^(?:true|false|null)/.exec(rest)?.[0];
    if (word !== undefined) {
      this.#at += word.length;
      return;
    }
    const number = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(rest);
    if (!number) this.#syntax();
    if (integer && (number[1] !== undefined || number[2] !== undefined)) {
      this.#refuse(`has ${shown(number[0])} where Go reads only a whole number written without a fraction or exponent`);
    }
    this.#at += number[0].length;
  }
}

class DepthRefusal extends Error {}

/**
 * Parses `content`, refusing what Go would read otherwise; `what` names the document in errors ("manifest.json",
 * "The image config (…)").
 */
export function parseJson(content: Buffer, what: string, schema: JsonSchema = 'image'): unknown {
  let text: string;
  try {
    text = UTF8.decode(content);
  } catch {
    throw new UserError(
      `${what} is not valid UTF-8, which Go reads with replacement characters where JavaScript would not; the tarball is refused.`,
    );
  }
  let unreadable = false;
  try {
    new Scanner(text, schema).run();
  } catch (error) {
    if (error instanceof DepthRefusal) {
      throw new UserError(
        `${what} nests more than ${MAX_JSON_DEPTH} levels deep; no image document does, so it is refused as hostile.`,
      );
    }
    if (error instanceof Refusal) {
      throw new UserError(
        `${what} ${error.message}: engines read it with Go, whose JSON reader would not see what this action verified, ` +
          'so the tarball is refused; produce it again with a standard tool.',
      );
    }
    if (!(error instanceof SyntaxRefusal)) throw error;
    unreadable = true;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${what} is not valid JSON (${messageOf(error)}); the tarball is corrupt.`);
  }
  // JSON.parse is the more lenient of the two: what the scanner could not read is refused even when it parses.
  if (unreadable) throw new UserError(`${what} is not JSON as the standard defines it; the tarball is refused.`);
  return value;
}
