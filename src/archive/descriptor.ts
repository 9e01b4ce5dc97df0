/** The JSON objects of an image layout: descriptors (digest, size, platform, annotations) as the walk reads them. */
import { shown } from '../display.ts';
import { refuse } from '../errors.ts';
import { platformText } from '../platform.ts';
import { SHA256_DIGEST } from '../reference.ts';
import type { JsonObject } from './json.ts';

/** A descriptor of an index or manifest, its digest and size checked. */
export interface Descriptor {
  mediaType: string | undefined;
  digest: string;
  size: number;
  platform: string | undefined;
  annotations: Record<string, string>;
}

/** `value` as an object, or the tarball refused. */
export function asObject(value: unknown, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    refuse(`${what} is not a JSON object; the tarball is corrupt.`);
  }
  return value as JsonObject;
}

export function descriptor(value: unknown, where: string): Descriptor {
  const object = asObject(value, where);
  const { mediaType, digest, size, platform, annotations } = object;
  if (typeof digest !== 'string' || !SHA256_DIGEST.test(digest)) {
    refuse(`${where} has digest ${shown(String(digest), 100)}; expected "sha256:" and 64 lowercase hex digits.`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    refuse(`${where} has size ${shown(String(JSON.stringify(size)), 40)}; expected a whole number of bytes.`);
  }
  const texts: Record<string, string> = {};
  if (typeof annotations === 'object' && annotations !== null) {
    for (const [key, text] of Object.entries(annotations)) if (typeof text === 'string') texts[key] = text;
  }
  return {
    mediaType: typeof mediaType === 'string' ? mediaType : undefined,
    digest,
    size,
    platform: platformText(platform, where),
    annotations: texts,
  };
}

/** buildx marks its provenance and SBOM manifests so, with the platform `unknown/unknown`. */
export function isAttestation(target: Descriptor): boolean {
  return (
    target.annotations['vnd.docker.reference.type'] === 'attestation-manifest' || target.platform === 'unknown/unknown'
  );
}

/** The config's rootfs.diff_ids, each a sha256 digest; `what` names the config (`The image config \`x\``). */
export function diffIdsOf(config: JsonObject, what: string): string[] {
  const rootfs = config['rootfs'];
  const ids = typeof rootfs === 'object' && rootfs !== null ? (rootfs as JsonObject)['diff_ids'] : undefined;
  if (!Array.isArray(ids)) refuse(`${what} has no rootfs.diff_ids list; the tarball is corrupt.`);
  for (const id of ids) {
    if (typeof id !== 'string' || !SHA256_DIGEST.test(id)) {
      refuse(`${what} lists diff_id ${shown(String(id), 100)}; expected "sha256:" and 64 lowercase hex digits.`);
    }
  }
  return ids as string[];
}
