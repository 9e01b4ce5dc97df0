import { holdsPlatform, platformText } from '../../src/platform.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { artifactNameProblem, getInputs } from '../../src/inputs.ts';

const set: string[] = [];
function withInputs(inputs: Record<string, string>) {
  for (const [name, value] of Object.entries(inputs)) {
    const key = `INPUT_${name.toUpperCase()}`;
    process.env[key] = value;
    set.push(key);
  }
}
afterEach(() => {
  for (const key of set.splice(0)) delete process.env[key];
});

describe('getInputs', () => {
  it('applies the defaults', () => {
    const inputs = getInputs({ RUNNER_TEMP: '/runner/temp', GITHUB_REPOSITORY: 'o/r' });
    expect(inputs).toMatchObject({
      mode: 'save',
      name: 'docker-image',
      path: '/runner/temp',
      compression: 'zstd',
      compressionLevel: undefined,
      ifMissing: 'error',
      upload: true,
      overwrite: false,
      load: true,
      engine: 'docker',
      repository: undefined,
      runId: undefined,
      expectedDigest: undefined,
      source: undefined,
      pattern: undefined,
    });
  });

  it('reads every input', () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    withInputs({
      mode: 'LOAD',
      name: 'docker-image-api',
      path: '/tmp/x',
      compression: 'gzip',
      'compression-level': '9',
      'if-missing': 'warn',
      upload: 'false',
      'retention-days': '3',
      overwrite: 'true',
      'run-id': '12345',
      'github-token': 'token',
      repository: 'acme/app',
      'expected-digest': digest,
      load: 'false',
      platform: 'linux/arm64',
      engine: 'podman',
      pattern: 'docker-image-*',
      source: 'image.tar',
    });
    expect(getInputs({})).toMatchObject({
      mode: 'load',
      name: 'docker-image-api',
      path: '/tmp/x',
      compression: 'gzip',
      compressionLevel: 9,
      ifMissing: 'warn',
      upload: false,
      retentionDays: 3,
      overwrite: true,
      runId: 12345,
      githubToken: 'token',
      repository: 'acme/app',
      expectedDigest: digest,
      load: false,
      platform: 'linux/arm64',
      engine: 'podman',
      pattern: 'docker-image-*',
      source: 'image.tar',
    });
  });

  it.each([
    [{ mode: 'push' }, /`mode` must be one of `save`, `load`, found `push`/],
    [{ compression: 'brotli' }, /`compression` must be one of `zstd`, `gzip`, `none`/],
    [{ 'compression-level': '22' }, /`compression-level` must be a whole number from 1 to 19, found `22`/],
    [{ compression: 'gzip', 'compression-level': '10' }, /from 1 to 9/],
    [{ 'compression-level': '3.5' }, /whole number/],
    [{ 'if-missing': 'ignore' }, /`if-missing` must be one of `error`, `warn`/],
    [{ upload: 'yes' }, /`upload` must be `true` or `false`, found `yes`/],
    [{ 'retention-days': '0' }, /from 1 to 90/],
    [{ 'retention-days': '91' }, /from 1 to 90/],
    [{ name: 'a/b' }, /`name` \(`a\/b`\) contains one of the characters/],
    [{ name: 'a:b' }, /contains one of the characters/],
    [{ 'expected-digest': 'abc' }, /`expected-digest` must be "sha256:"/],
    [{ 'expected-digest': `sha512:${'a'.repeat(64)}` }, /`expected-digest` must be "sha256:"/],
    [{ 'run-id': 'abc', 'github-token': 't' }, /`run-id` must be a whole number/],
    [
      { 'run-id': '5', 'github-token': 't', repository: 'noslash' },
      /`repository` must be `owner\/name`, found `noslash`/,
    ],
    [{ engine: 'containerd' }, /`engine` must be one of `docker`, `podman`/],
    [{ platform: '--output=/etc/passwd' }, /`platform` must be one platform as `os\/architecture`/],
    [{ platform: 'linux/amd64,linux/arm64' }, /must be one platform.*found `linux\/amd64,linux\/arm64`/],
    [{ platform: 'linux' }, /must be one platform/],
    [{ platform: 'Linux/AMD64' }, /must be one platform/],
    [{ name: '..' }, /`name` \(`\.\.`\) is only dots, which names a directory/],
    [{ name: '.' }, /is only dots/],
    [{ name: 'a\u001bb' }, /contains a control character/],
    [{ name: 'n'.repeat(201) }, /longer than 200 bytes/],
    [
      { path: '/tmp/x\n::warning::owned' },
      /`path` contains U\+000A \(a control character\).*found `\/tmp\/x\\n::warning::owned`/,
    ],
    [{ source: 'a\rb' }, /`source` contains U\+000D/],
    [{ pattern: 'img-*\u001b[2K' }, /`pattern` contains U\+001B/],
    [{ path: `/${'p'.repeat(5000)}` }, /`path` is 5001 bytes long: expected a path of at most 4096 bytes/],
    [
      { tags: Array.from({ length: 25_000 }, (_, i) => `app:${i}`).join('\n') },
      /Too many tags in the `tags` input: expected at most 1000 tags .* found 25000 tags/,
    ],
    [{ mode: 'load', tags: 'app:1\n  ::add-mask::x' }, /`tags` holds `::add-mask::x`, which is not an image reference/],
    [{ upload: '::warning::x'.repeat(100) }, /found `(::warning::x)+::wa… \(1200 characters\)`\.$/],
  ])('rejects %j', (inputs, message) => {
    withInputs(inputs);
    expect(() => getInputs({ GITHUB_REPOSITORY: 'o/r' })).toThrow(UserError);
    expect(() => getInputs({ GITHUB_REPOSITORY: 'o/r' })).toThrow(message);
  });

  it.each(['linux/amd64', 'linux/arm64/v8', 'windows/amd64', 'linux/arm/v7'])('accepts platform %s', (platform) => {
    withInputs({ platform });
    expect(getInputs({}).platform).toBe(platform);
  });

  it('ignores compression-level when compression is none', () => {
    withInputs({ compression: 'none', 'compression-level': '99' });
    expect(getInputs({}).compressionLevel).toBeUndefined();
  });
});

describe('artifactNameProblem', () => {
  it.each(['docker-image', 'docker-image-api.amd64', 'Image_1'])('accepts %s', (name) => {
    expect(artifactNameProblem(name)).toBeUndefined();
  });
  it.each(['', 'a"b', 'a<b', 'a>b', 'a|b', 'a*b', 'a?b', 'a\\b', 'a/b', 'a:b', 'a\nb'])('rejects %j', (name) => {
    expect(artifactNameProblem(name)).toBeDefined();
  });
});

describe('holdsPlatform', () => {
  it.each([
    [['linux/amd64'], 'linux/amd64', true],
    [['linux/amd64', 'linux/arm64/v8'], 'linux/arm64', true],
    [['linux/arm64/v8'], 'linux/arm64/v8', true],
    [['linux/arm64/v8'], 'linux/arm64/v7', false],
    [['linux/arm64'], 'linux/arm64/v8', false],
    [['linux/amd64'], 'linux/arm64', false],
    [['windows/amd64'], 'linux/amd64', false],
    [[], 'linux/amd64', false],
  ])('%j holds %s: %s', (platforms, wanted, expected) => {
    expect(holdsPlatform(platforms, wanted)).toBe(expected);
  });
});

describe('platformText', () => {
  it('joins os, architecture and a variant, and needs the first two', () => {
    expect(platformText({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe('linux/arm64/v8');
    expect(platformText({ os: 'linux', architecture: 'amd64', variant: '' })).toBe('linux/amd64');
    expect(platformText({ os: 'linux' })).toBeUndefined();
    expect(platformText({ os: 'linux', architecture: 1 })).toBeUndefined();
    expect(platformText(null)).toBeUndefined();
    expect(platformText('linux/amd64')).toBeUndefined();
  });
  it("shows a part that is not a plain name escaped, so it prints safely and matches no engine's platform", () => {
    const hostile = platformText({ os: 'linux', architecture: 'amd64\r\n::set-output name=digest::x' });
    expect(hostile).toBe('linux/`amd64\\r\\n::set-output name=digest::x`');
    expect(holdsPlatform([hostile!], 'linux/amd64')).toBe(false);
    expect(platformText({ os: 'linux', architecture: 'a'.repeat(65) })).toBe(
      `linux/\`${'a'.repeat(64)}… (65 characters)\``,
    );
    expect(platformText({ os: 'linux', architecture: 'ppc64le', variant: 'v_1.2-x' })).toBe('linux/ppc64le/v_1.2-x');
  });
});
