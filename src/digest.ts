/**
 * The digest of an artifact, as users and other actions write it, and the verdict of comparing one. An artifact's
 * digest is the sha256 of what was uploaded: the tarball this action uploads as it is, or the zip
 * actions/upload-artifact makes (its `artifact-digest` output, bare hex). Pure.
 */

const SHA256 = /^(?:sha256:)?([0-9a-f]{64})$/i;

/** `sha256:<hex>` for `sha256:<hex>` or the bare hex, in either case; undefined for anything else. */
export function normalizeDigest(text: string): string | undefined {
  const hex = SHA256.exec(text.trim())?.[1];
  return hex === undefined ? undefined : `sha256:${hex.toLowerCase()}`;
}

export interface DigestCheck {
  /** sha256 of the artifact as downloaded. */
  actual: string;
  /** What the artifact service recorded at upload, when it recorded anything. */
  recorded: string | undefined;
  /** The `expected-digest` input. */
  expected: string | undefined;
}

/**
 * What differs, one phrase per digest that does not match, and the line to log when nothing does. The line says
 * "matches" only when something was compared.
 */
export function compareDigests(check: DigestCheck, subject = 'sha256'): { mismatches: string[]; line: string } {
  const mismatches: string[] = [];
  if (check.recorded && check.recorded !== check.actual) {
    mismatches.push(`the artifact service recorded ${check.recorded}`);
  }
  if (check.expected && check.expected !== check.actual) mismatches.push(`\`expected-digest\` is ${check.expected}`);
  const compared = [check.recorded && 'the recorded digest', check.expected && 'expected-digest'].filter(Boolean);
  const line =
    compared.length > 0
      ? `${subject} matches ${compared.join(' and ')}: ${check.actual}`
      : `${subject} ${check.actual}, not compared: the artifact service recorded no digest, and \`expected-digest\` is not set`;
  return { mismatches, line };
}
