/** The names a tarball gives its images: docker's RepoTags and the OCI annotations, each a tag, never a digest. */
import { shown } from '../display.ts';
import { refuse } from '../errors.ts';
import { parseReference, qualifiedName } from '../reference.ts';

export const IMAGE_NAME = 'io.containerd.image.name';
export const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * The annotations an index.json entry names an image by: the full name for containerd, the tag alone for OCI tools
 * (buildx, skopeo); none for a digest reference.
 */
export function nameAnnotations(reference: string): { [IMAGE_NAME]: string; [REF_NAME]: string } | undefined {
  const parsed = parseReference(reference);
  if (!parsed.ok || parsed.ref.digest) return undefined;
  const tag = parsed.ref.tag ?? 'latest';
  return { [IMAGE_NAME]: `${qualifiedName(parsed.ref)}:${tag}`, [REF_NAME]: tag };
}

/** A digest reference is no tag: engines refuse it (graph drivers) or name another manifest by it (containerd). */
export function digestAsTag(text: string, where: string): never {
  refuse(
    `${where} records ${shown(text)}, a digest reference, as a tag: no engine can tag an image with a digest, so the ` +
      'tarball is refused; save it with tags.',
  );
}

/** A RepoTags entry of manifest.json: an image reference with a tag. */
export function checkTag(text: unknown, where: string): string {
  if (typeof text !== 'string') refuse(`${where} has a tag that is not a string.`);
  const parsed = parseReference(text);
  if (!parsed.ok) refuse(`${where} records ${shown(text)}, which is not a valid image reference: ${parsed.reason}.`);
  if (parsed.ref.digest) digestAsTag(text, where);
  return text;
}

/**
 * The references an index.json entry's annotations give: full ones, and bare `org.opencontainers.image.ref.name`
 * values (`latest`) kept only where there is no full one.
 */
export function referencesOf(annotations: Record<string, string>, where: string): { full: string[]; bare: string[] } {
  const full: string[] = [];
  const bare: string[] = [];
  for (const key of [IMAGE_NAME, REF_NAME]) {
    const text = annotations[key];
    if (text === undefined) continue;
    if (key === REF_NAME && !/[:/@]/.test(text)) {
      bare.push(text);
      continue;
    }
    const parsed = parseReference(text);
    if (!parsed.ok)
      refuse(`${where} names the image ${shown(text)} (${key}), which is not a valid reference: ${parsed.reason}.`);
    if (parsed.ref.digest) digestAsTag(text, `${where} (${key})`);
    full.push(text);
  }
  return { full: [...new Set(full)], bare: full.length > 0 ? [] : bare };
}
