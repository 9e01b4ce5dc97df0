/** Platforms as `os/architecture[/variant]`, and how docker matches a wanted one against what an image has. */

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
