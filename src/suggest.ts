/**
 * "Did you mean": for a tag the daemon (or a tarball) lacks, the local reference the user most likely meant.
 * Pure: works on reference strings only.
 */
import { DOCKER_HUB, parseReference } from './reference.ts';

export interface Suggestion {
  reference: string;
  why: string;
}

interface Parts {
  text: string;
  registry: string;
  path: string;
  name: string;
  tag: string;
}

/** Splits loosely (case-folded, invalid references allowed) so that a wrong tag can still be compared. */
function parts(text: string): Parts {
  const folded = text.toLowerCase();
  const parsed = parseReference(folded);
  if (parsed.ok) {
    const registry = parsed.ref.domain ?? DOCKER_HUB;
    const path =
      registry === DOCKER_HUB && !parsed.ref.path.includes('/') ? `library/${parsed.ref.path}` : parsed.ref.path;
    return { text, registry, path, name: path.slice(path.lastIndexOf('/') + 1), tag: parsed.ref.tag ?? 'latest' };
  }
  const colon = folded.lastIndexOf(':');
  const hasTag = colon > folded.lastIndexOf('/');
  const name = hasTag ? folded.slice(0, colon) : folded;
  return {
    text,
    registry: '',
    path: name,
    name: name.slice(name.lastIndexOf('/') + 1),
    tag: hasTag ? folded.slice(colon + 1) : 'latest',
  };
}

/** Levenshtein distance, for the last-resort "closest spelling" rule. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

const RULES: ReadonlyArray<{ why: (want: Parts, have: Parts) => string | undefined }> = [
  {
    why: (w, h) =>
      w.registry === h.registry && w.path === h.path && w.tag === h.tag ? 'differs only in letter case' : undefined,
  },
  { why: (w, h) => (w.registry === h.registry && w.path === h.path ? `same repository, tag \`${h.tag}\`` : undefined) },
  { why: (w, h) => (w.path === h.path && w.tag === h.tag ? `same image under registry \`${h.registry}\`` : undefined) },
  {
    why: (w, h) =>
      w.name === h.name && w.tag === h.tag ? `same name and tag under \`${h.registry}/${h.path}\`` : undefined,
  },
  { why: (w, h) => (w.path === h.path ? `same repository path under \`${h.registry}\`, tag \`${h.tag}\`` : undefined) },
  { why: (w, h) => (w.name === h.name ? `same image name, \`${h.registry}/${h.path}:${h.tag}\`` : undefined) },
];

/**
 * The best candidate among `available` for `wanted`, or undefined when nothing is close.
 * Earlier rules win; within a rule the first candidate wins (callers list the newest images first).
 */
export function suggest(
  wanted: string,
  available: readonly string[],
  exclude: readonly string[] = [],
): Suggestion | undefined {
  const want = parts(wanted);
  const excluded = new Set(exclude);
  const candidates = available.filter((reference) => reference !== wanted && !excluded.has(reference)).map(parts);
  for (const rule of RULES) {
    for (const have of candidates) {
      const why = rule.why(want, have);
      if (why) return { reference: have.text, why };
    }
  }
  const target = `${want.registry}/${want.path}:${want.tag}`;
  let best: { have: Parts; distance: number } | undefined;
  for (const have of candidates) {
    const distance = editDistance(target, `${have.registry}/${have.path}:${have.tag}`);
    if (!best || distance < best.distance) best = { have, distance };
  }
  const limit = Math.max(3, Math.floor(target.length / 5));
  if (best && best.distance <= limit) {
    return { reference: best.have.text, why: `closest spelling (${best.distance} characters apart)` };
  }
  return undefined;
}
