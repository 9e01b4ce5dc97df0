import { describe, expect, it } from 'vitest';
import { familiar, parseReference, qualify, qualifiedName } from '../../src/reference.ts';

describe('parseReference accepts what docker/distribution accepts', () => {
  it.each([
    ['alpine', { domain: undefined, path: 'alpine', tag: undefined }],
    ['alpine:3.20', { domain: undefined, path: 'alpine', tag: '3.20' }],
    ['owner/app:pr-2', { domain: undefined, path: 'owner/app', tag: 'pr-2' }],
    ['ghcr.io/wikid82/app:pr-2', { domain: 'ghcr.io', path: 'wikid82/app', tag: 'pr-2' }],
    ['localhost:5000/app:v1', { domain: 'localhost:5000', path: 'app', tag: 'v1' }],
    ['localhost/app', { domain: 'localhost', path: 'app', tag: undefined }],
    ['REGISTRY.Example.com/app:x', { domain: 'REGISTRY.Example.com', path: 'app', tag: 'x' }],
    ['[::1]:5000/app:x', { domain: '[::1]:5000', path: 'app', tag: 'x' }],
    ['a/b/c/d:UPPER_tag.1-2', { domain: undefined, path: 'a/b/c/d', tag: 'UPPER_tag.1-2' }],
    ['my__app/sub.name-x:_t', { domain: undefined, path: 'my__app/sub.name-x', tag: '_t' }],
    ['app---x:1', { domain: undefined, path: 'app---x', tag: '1' }],
    ['registry:5000/app', { domain: 'registry:5000', path: 'app', tag: undefined }],
    [`app:${'t'.repeat(128)}`, { domain: undefined, path: 'app', tag: 't'.repeat(128) }],
  ])('%s', (text, expected) => {
    const parsed = parseReference(text);
    expect(parsed).toMatchObject({ ok: true, ref: { original: text, ...expected } });
  });

  it('splits a digest off', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const parsed = parseReference(`ghcr.io/o/app:1@${digest}`);
    expect(parsed).toMatchObject({ ok: true, ref: { tag: '1', digest } });
  });
});

describe('parseReference rejects with the reason', () => {
  it.each([
    ['', /empty/],
    ['ghcr.io/Wikid82/app:pr-2', /repository name must be lowercase: `Wikid82`/],
    ['Wikid82/app:pr-2', /repository name must be lowercase: `Wikid82`/],
    ['MyApp:1', /lowercase: `MyApp`/],
    ['--output=/etc/passwd', /cannot start with "-"/],
    ['app:my tag', /white space/],
    [' app:1', /white space/],
    ['app:', /tag after ":" is empty/],
    ['app:-bad', /tag `-bad`/],
    ['app:.bad', /tag `.bad`/],
    [`app:${'t'.repeat(129)}`, /1 to 128/],
    ['app:tag$', /tag `tag\$`/],
    ['ghcr.io//app:1', /empty component/],
    ['app/:1', /empty component/],
    ['_app:1', /may only contain/],
    ['app-:1', /may only contain/],
    ['a..b:1', /may only contain/],
    ['a___b:1', /may only contain/],
    ['ghcr.io:abc/app:1', /port must be digits/],
    ['bad_host.io/app:1', /not a valid host name/],
    ['-host.io/app:1', /cannot start with "-"/],
    ['app@sha256:abc', /64 lowercase hex/],
    ['app@md5', /algorithm:hex/],
    [`app@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
    [`${'a'.repeat(256)}:1`, /longer than 255/],
    [':tag', /repository name is empty/],
    ['app:1;rm -rf /', /white space/],
    ['app:$(id)', /tag/],
    [
      '\u0430pp:1',
      /character 1 is U\+0430 \(a Cyrillic letter\): a reference cannot contain a character outside ASCII/,
    ],
    ['ghcr.io/o/\u0430pp:1', /character 11 is U\+0430/],
    ['app:1\u200b', /U\+200B \(an invisible formatting character\)/],
    ['app:\u00a0', /U\+00A0 \(a space\): a reference cannot contain white space/],
    [`app:${'t'.repeat(10_000)}`, /10004 characters long; a reference is at most 600/],
    [`app:${'t'.repeat(300)}`, /tag `t+… \(300 characters\)`|1 to 128/],
  ])('%j', (text, reason) => {
    const parsed = parseReference(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('qualify compares as the engine does', () => {
  it.each([
    ['alpine:3', 'docker.io/library/alpine:3'],
    ['docker.io/library/alpine:3', 'docker.io/library/alpine:3'],
    ['library/alpine:3', 'docker.io/library/alpine:3'],
    ['owner/app:1', 'docker.io/owner/app:1'],
    ['ghcr.io/o/app:1', 'ghcr.io/o/app:1'],
    ['localhost:5000/app:1', 'localhost:5000/app:1'],
    ['Not Valid', 'Not Valid'],
    // distribution/reference: index.docker.io is Docker Hub's legacy name, and a reference without a tag is `latest`.
    ['index.docker.io/library/alpine:3', 'docker.io/library/alpine:3'],
    ['index.docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['alpine', 'docker.io/library/alpine:latest'],
    ['ghcr.io/o/app', 'ghcr.io/o/app:latest'],
    [`alpine@sha256:${'a'.repeat(64)}`, `docker.io/library/alpine@sha256:${'a'.repeat(64)}`],
    // registry-1.docker.io is a registry of its own to the engine, not a spelling of Docker Hub.
    ['registry-1.docker.io/library/alpine:3', 'registry-1.docker.io/library/alpine:3'],
  ])('%s → %s', (text, expected) => {
    expect(qualify(text)).toBe(expected);
  });

  it.each([
    ['alpine', 'alpine:latest'],
    ['docker.io/library/alpine:3', 'alpine:3'],
    ['index.docker.io/library/alpine:3', 'alpine:3'],
    ['docker.io/owner/app:1', 'owner/app:1'],
    ['library/alpine:3', 'alpine:3'],
    ['ghcr.io/o/app:1', 'ghcr.io/o/app:1'],
    ['ghcr.io/library/app', 'ghcr.io/library/app:latest'],
    ['docker.io/library/a/b:1', 'library/a/b:1'],
    ['Not Valid', 'Not Valid'],
  ])('familiar(%s) is %s, as the engine prints it', (text, expected) => {
    expect(familiar(text)).toBe(expected);
  });

  it('qualifiedName keeps a registry path as is', () => {
    const parsed = parseReference('ghcr.io/app');
    expect(parsed.ok && qualifiedName(parsed.ref)).toBe('ghcr.io/app');
  });
});
