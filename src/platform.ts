/** Platforms as `os/architecture[/variant]`, and how docker matches a wanted one against what an image has. */
import { shown } from './display.ts';

/**
 * The parts of a platform as an image names them (os, architecture, variant), joined with `/`, those that are not
 * strings or are empty left out. Each is printable in any line: a part that is not a plain name (letters, digits, `.`,
 * `_`, `-`) is the image's own words, shown escaped, and so never matches a platform an engine has.
 */
export function platformOfParts(parts: readonly unknown[]): string {
  return parts
    .filter((part): part is string => typeof part === 'string' && part !== '')
    .map((part) => (/^[A-Za-z0-9._-]{1,64}$/.test(part) ? part : shown(part, 64)))
    .join('/');
}

/**
 * `os/architecture[/variant]` of an image config or an index's platform object (platformOfParts); undefined without an
 * os and an architecture.
 */
export function platformText(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { os, architecture, variant } = value as Record<string, unknown>;
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture) return undefined;
  return platformOfParts([os, architecture, variant]);
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
