/**
 * How text from outside (inputs, tags, artifact names, anything read from a tarball) reaches the log. The runner
 * reads every stdout line that starts, after white space, with `::` as a workflow command (`::add-mask::`,
 * `::warning::`, `::stop-commands::`), and `##[` anywhere in a line as a legacy one; a CR or LF inside a value starts
 * such a line, ANSI escapes repaint it, and a 10,000-character value buries it. So such a value is only ever printed
 * through `shown`: quoted (never at the start of a line), one line, bounded, with everything outside printable ASCII
 * spelled as its code point.
 */

/** Longest value printed whole; references (at most 255 + 128 characters of name and tag) fit. */
export const MAX_SHOWN_CHARACTERS = 400;
/** How many items of a list are printed before "… and N more". */
export const MAX_SHOWN_ITEMS = 10;

/** `U+0430`: the code point of a character, as Unicode writes it. */
export function codePoint(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

const SCRIPTS = ['Cyrillic', 'Greek', 'Armenian', 'Cherokee', 'Latin', 'Han', 'Arabic', 'Hebrew'] as const;

/** `U+0430 (a Cyrillic letter)`: enough to see a look-alike letter for what it is, without a names table. */
export function describeCharacter(character: string): string {
  if (/\p{Cc}/u.test(character)) return `${codePoint(character)} (a control character)`;
  if (/\p{Cf}/u.test(character)) return `${codePoint(character)} (an invisible formatting character)`;
  if (/\p{Zs}/u.test(character)) return `${codePoint(character)} (a space)`;
  const script = SCRIPTS.find((name) => new RegExp(`\\p{Script=${name}}`, 'u').test(character));
  if (script && /\p{L}/u.test(character)) return `${codePoint(character)} (a ${script} letter)`;
  if (/\p{Nd}/u.test(character)) return `${codePoint(character)} (a digit)`;
  return `${codePoint(character)} (${/^[\x20-\x7e]$/.test(character) ? 'a printable ASCII character' : 'not ASCII'})`;
}

/** The first character outside printable ASCII, with its position (counted in characters from 1). */
export function firstNonAscii(text: string): { character: string; position: number } | undefined {
  let position = 0;
  for (const character of text) {
    position++;
    const code = character.codePointAt(0)!;
    if (code < 0x20 || code > 0x7e) return { character, position };
  }
  return undefined;
}

/** One value from outside, safe to print anywhere in a line: `` `value` ``, escaped and shortened. */
export function shown(value: string, max = MAX_SHOWN_CHARACTERS): string {
  const characters = [...value];
  const kept = characters.length > max ? characters.slice(0, max) : characters;
  let text = '';
  for (const character of kept) {
    const code = character.codePointAt(0)!;
    if (code >= 0x20 && code <= 0x7e) text += character;
    else if (character === '\n') text += '\\n';
    else if (character === '\r') text += '\\r';
    else if (character === '\t') text += '\\t';
    else text += `<${codePoint(character)}>`;
  }
  // The legacy command syntax is found anywhere in a line.
  text = text.replaceAll('##[', '##<U+005B>');
  const cut = characters.length > max ? `… (${characters.length} characters)` : '';
  return `\`${text}${cut}\``;
}

/** What ends a list cut at its bound: `… and 3 more`. */
export function andMore(count: number): string {
  return `… and ${count} more`;
}

/** At most `max` of `values` on one line, each as `show` prints it, then how many more there are. */
export function cappedList(
  values: readonly string[],
  show: (value: string) => string,
  { max = MAX_SHOWN_ITEMS, separator = ', ' }: { max?: number; separator?: string } = {},
): string {
  const head = values.slice(0, max).map(show).join(separator);
  return values.length > max ? `${head} ${andMore(values.length - max)}` : head;
}

/** A list of values from outside: each `shown`, at most `max` of them, then how many more there are. */
export function shownList(values: readonly string[], max = MAX_SHOWN_ITEMS): string {
  return cappedList(values, (value) => shown(value), { max });
}

/**
 * Warnings about one input: each said once, at most `max` of them, and how many more there were. Without it, a
 * tarball of 60,000 identical layers made one warning of 4.7 million characters.
 */
export class Warnings {
  readonly #max: number;
  readonly #said = new Set<string>();
  #more = 0;

  constructor(max = 20) {
    this.#max = max;
  }

  add(message: string): void {
    if (this.#said.has(message)) return;
    if (this.#said.size >= this.#max) this.#more++;
    else this.#said.add(message);
  }

  list(): string[] {
    const said = [...this.#said];
    return this.#more > 0 ? [...said, `${andMore(this.#more)} warnings like these.`] : said;
  }
}

/**
 * A value from outside printed as it is when it is a plain token (letters, digits, `.`, `_`, `-`, `/`, `*`, `?`, at
 * most 200 of them): nothing in it can form a command or break a line, and a platform or a glob reads better bare.
 * Anything else is `shown`.
 */
export function token(value: string): string {
  return /^[A-Za-z0-9._/*?-]{1,200}$/.test(value) ? value : shown(value);
}

/** A list of values from outside, each a `token`, at most `max` of them, then how many more there are. */
export function tokenList(values: readonly string[], max = MAX_SHOWN_ITEMS): string {
  return cappedList(values, token, { max });
}
