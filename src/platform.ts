/** Platforms as `os/architecture[/variant]`, and how docker matches a wanted one against what an image has. */
import { shown } from './display.ts';
import { UserError } from './errors.ts';

/**
 * One part of a platform (os, architecture, variant) as Go and the OCI image spec write them: `linux`, `amd64`, `v8`,
 * `10.0.17763.1234`. Nothing else reaches a line or the `platforms` output, which workflows put into shell commands.
 */
const PLATFORM_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The parts of a platform as an engine reports them (os, architecture, variant), joined with `/`, those that are not
 * strings or are empty left out. A part that is not a platform name is the image's own words, shown escaped, and so
 * never matches a platform an engine has.
 */
export function platformOfParts(parts: readonly unknown[]): string {
  return parts
    .filter((part): part is string => typeof part === 'string' && part !== '')
    .map((part) => (PLATFORM_PART.test(part) ? part : shown(part, 64)))
    .join('/');
}

/**
 * `os/architecture[/variant]` of an image config or an index's platform object in a tarball; undefined without an os
 * and an architecture. A part that is not a platform name is refused: the tarball is not what any build tool writes.
 */
export function platformText(value: unknown, where: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { os, architecture, variant } = value as Record<string, unknown>;
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture) return undefined;
  const parts = [os, architecture, ...(typeof variant === 'string' && variant !== '' ? [variant] : [])];
  const odd = parts.find((part) => !PLATFORM_PART.test(part));
  if (odd !== undefined) {
    throw new UserError(
      `${where} gives the platform part ${shown(odd, 64)}, which is not a platform name (letters, digits, ".", "_", "-", ` +
        'as `linux`, `amd64`, `v8`): the tarball is refused.',
    );
  }
  return parts.join('/');
}

/** `linux/arm64` matches `linux/arm64/v8` (a variant left out matches any), as docker's platform matching does. */
export function platformMatches(platform: string | undefined, wanted: string): boolean {
  if (platform === undefined) return false;
  const [os, architecture, variant] = wanted.split('/');
  const [hasOs, hasArchitecture, hasVariant] = platform.split('/');
  return hasOs === os && hasArchitecture === architecture && (!variant || variant === hasVariant);
}

/** Whether any of `platforms` is `wanted` (see platformMatches). */
export function holdsPlatform(platforms: readonly string[], wanted: string): boolean {
  return platforms.some((platform) => platformMatches(platform, wanted));
}
