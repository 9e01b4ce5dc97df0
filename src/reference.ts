/**
 * The image reference grammar docker/distribution uses (reference/regexp.go), as pure functions:
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component { "/" path-component }
 *   domain     := host [ ":" port ]          host := domain-name | "[" IPv6 "]"
 *   path-component := [a-z0-9]+ ( ( [_.] | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     := algorithm ":" hex
 *
 * One deliberate difference: docker treats a first component with capital letters as a registry host, so
 * `Wikid82/app` silently means "the registry Wikid82". No user means that; here the first component is a
 * registry only when it contains "." or ":" or is "localhost", and capitals elsewhere are the familiar
 * "repository name must be lowercase" error, naming the offending component.
 */
import { describeCharacter, firstNonAscii, shown } from './display.ts';

export interface ImageReference {
  /** The text as given. */
  readonly original: string;
  /** Registry host[:port], or undefined for Docker Hub. */
  readonly domain: string | undefined;
  /** Repository path below the registry, e.g. `owner/app`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

export type ParseResult = { ok: true; ref: ImageReference } | { ok: false; reason: string };

const MAX_NAME_LENGTH = 255;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
export const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

export const DOCKER_HUB = 'docker.io';
/** Name, tag and a sha512 digest at their longest, with room to spare: anything longer is not a reference. */
const MAX_REFERENCE_LENGTH = 600;

function looksLikeDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function checkDomain(domain: string): string | undefined {
  let host = domain;
  const portAt = domain.lastIndexOf(':');
  if (portAt > domain.lastIndexOf(']')) {
    const port = domain.slice(portAt + 1);
    host = domain.slice(0, portAt);
    if (!PORT.test(port)) return `registry port must be digits, found ${shown(port)}`;
  }
  if (IPV6_HOST.test(host)) return undefined;
  if (host.split('.').every((part) => DOMAIN_COMPONENT.test(part))) return undefined;
  return `registry host ${shown(host)} is not a valid host name`;
}

function checkPathComponent(component: string): string | undefined {
  if (PATH_COMPONENT.test(component)) return undefined;
  if (component === '') return 'repository path has an empty component (a doubled or trailing "/")';
  if (PATH_COMPONENT.test(component.toLowerCase())) return `repository name must be lowercase: ${shown(component)}`;
  return (
    `repository path component ${shown(component)} may only contain lowercase letters, digits and ` +
    'the separators ".", "_", "__" or "-" between them'
  );
}

/** Parses one reference; never throws. */
export function parseReference(text: string): ParseResult {
  const fail = (reason: string): ParseResult => ({ ok: false, reason });
  if (text.length === 0) return fail('the reference is empty');
  if (text.length > MAX_REFERENCE_LENGTH) {
    return fail(`the reference is ${text.length} characters long; a reference is at most ${MAX_REFERENCE_LENGTH}`);
  }
  const foreign = firstNonAscii(text);
  if (foreign) {
    const what = /\s/u.test(foreign.character) ? 'white space' : 'a character outside ASCII';
    return fail(
      `character ${foreign.position} is ${describeCharacter(foreign.character)}: a reference cannot contain ${what} ` +
        '(a look-alike letter pasted in?)',
    );
  }
  if (/\s/.test(text)) return fail('a reference cannot contain white space');
  if (text.startsWith('-')) return fail('a reference cannot start with "-" (it would read as a command option)');

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest.startsWith('sha256:') && !SHA256_DIGEST.test(digest)) {
      return fail(`digest ${shown(digest)} must be "sha256:" followed by 64 lowercase hex digits`);
    }
    if (!DIGEST.test(digest)) return fail(`digest ${shown(digest)} is not of the form algorithm:hex`);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      return fail(
        tag === ''
          ? 'the tag after ":" is empty'
          : `tag ${shown(tag)} must be 1 to 128 of [A-Za-z0-9_.-] and cannot start with "." or "-"`,
      );
    }
  }

  if (rest.length === 0) return fail('the repository name is empty');
  if (rest.length > MAX_NAME_LENGTH) return fail(`the repository name is longer than ${MAX_NAME_LENGTH} characters`);

  const components = rest.split('/');
  let domain: string | undefined;
  if (components.length > 1 && looksLikeDomain(components[0]!)) {
    domain = components.shift()!;
    const problem = checkDomain(domain);
    if (problem) return fail(problem);
  }
  for (const component of components) {
    const problem = checkPathComponent(component);
    if (problem) return fail(problem);
  }
  return { ok: true, ref: { original: text, domain, path: components.join('/'), tag, digest } };
}

/** Docker Hub's old name, which the engine takes for docker.io (distribution/reference: legacyDefaultDomain). */
const LEGACY_DOCKER_HUB = 'index.docker.io';

/** The fully qualified repository name, as the engine compares it: `docker.io/library/alpine`. */
export function qualifiedName(ref: ImageReference): string {
  const domain = ref.domain === undefined || ref.domain === LEGACY_DOCKER_HUB ? DOCKER_HUB : ref.domain;
  const path = domain === DOCKER_HUB && !ref.path.includes('/') ? `library/${ref.path}` : ref.path;
  return `${domain}/${path}`;
}

/**
 * The engine's normal form, `name:tag[@digest]` fully qualified, a missing tag being `latest` (as `docker tag`, `save`
 * and `load` read it): `alpine`, `alpine:latest`, `docker.io/library/alpine` and `index.docker.io/library/alpine:latest`
 * are one reference.
 */
export function qualifiedReference(ref: ImageReference): string {
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  return qualifiedName(ref) + (tag ? `:${tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** Qualifies a reference given as text; unparsable text is returned unchanged so that it never matches. */
export function qualify(text: string): string {
  const parsed = parseReference(text);
  return parsed.ok ? qualifiedReference(parsed.ref) : text;
}

/**
 * A reference as the engine prints it (`docker image ls`, `Loaded image:`; distribution/reference FamiliarString):
 * the normal form without `docker.io/` and `library/`, so `index.docker.io/library/alpine` is `alpine:latest`.
 */
export function familiar(text: string): string {
  const qualified = qualify(text);
  if (qualified === text && !parseReference(text).ok) return text;
  const hub = `${DOCKER_HUB}/`;
  if (!qualified.startsWith(hub)) return qualified;
  const rest = qualified.slice(hub.length);
  return rest.startsWith('library/') && !rest.slice('library/'.length).split(/[:@]/)[0]!.includes('/')
    ? rest.slice('library/'.length)
    : rest;
}
