import { holdsPlatform, platformText } from '../../src/platform.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { getInputs } from '../../src/action/inputs.ts';
import { artifactNameProblem } from '../../src/github.ts';

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
      ociLayout: undefined,
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
      'oci-layout': 'layouts/base',
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
      ociLayout: 'layouts/base',
    });
  });

  it.each([
    [{ mode: 'push' }, /`mode` must be one of `save`, `load`, `delete`, found `push`/],
    [{ compression: 'brotli' }, /`compression` must be one of `zstd`, `gzip`, `none`/],
    [{ 'compression-level': '22' }, /`compression-level` must be a whole number from 1 to 19, found `22`/],
    [{ compression: 'gzip', 'compression-level': '10' }, /from 1 to 9/],
    [{ 'compression-level': '3.5' }, /whole number/],
    [{ 'if-missing': 'ignore' }, /`if-missing` must be one of `error`, `warn`/],
    [{ upload: 'yes' }, /`upload` must be `true` or `false`, found `yes`/],
    [{ 'retention-days': '0' }, /`retention-days` must be a whole number from 1 to 400, found `0`/],
    [{ 'retention-days': '401' }, /`retention-days` must be a whole number from 1 to 400, found `401`/],
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
    [{ 'oci-layout': 'base\nlayout' }, /`oci-layout` contains U\+000A \(a control character\)/],
    [{ 'oci-layout': '/tmp/::warning::x' }, /`oci-layout` contains `::`, which the runner reads/],
    [{ 'oci-layout': `/${'p'.repeat(5000)}` }, /`oci-layout` is 5001 bytes long/],
    [{ path: `/${'p'.repeat(5000)}` }, /`path` is 5001 bytes long: expected a path of at most 4096 bytes/],
    [
      { tags: Array.from({ length: 25_000 }, (_, i) => `app:${i}`).join('\n') },
      /Too many tags in the `tags` input: expected at most 1000 tags .* found 25000 tags/,
    ],
    [{ mode: 'load', tags: 'app:1\n  ::add-mask::x' }, /`tags` holds `::add-mask::x`, which is not an image reference/],
    [{ upload: '::warning::x'.repeat(100) }, /found `(::warning::x)+::wa… \(1200 characters\)`\.$/],
    // What reaches the library's own log lines, or GitHub's API with the job's token.
    [{ name: 'img##[warning]x' }, /`name` \(`img##<U\+005B>warning\]x`\) contains `##<U\+005B>`/],
    [{ path: '/tmp/::warning::x' }, /`path` contains `::`, which the runner reads as the start of a workflow command/],
    [{ path: '/tmp/a##[error]b' }, /`path` contains `##<U\+005B>`/],
    [{ repository: '../..' }, /`repository` must be `owner\/name`, found `\.\.\/\.\.`/],
    [{ repository: 'owner/..' }, /must be `owner\/name`/],
    [{ repository: 'owner/.' }, /must be `owner\/name`/],
    [{ repository: 'own er/app' }, /must be `owner\/name`/],
    [{ repository: '-owner/app' }, /must be `owner\/name`/],
    [{ repository: `${'o'.repeat(40)}/app` }, /must be `owner\/name`/],
    [{ repository: 'owner/a?b=c' }, /must be `owner\/name`/],
    [{ repository: 'owner/app/extra' }, /must be `owner\/name`/],
    [{ 'max-image-size': 'lots' }, /`max-image-size` must be a size of at least 1\.0 MiB, as `20GiB`/],
    [{ 'max-image-size': '100' }, /`max-image-size` must be a size of at least 1\.0 MiB/],
    [{ 'max-image-size': '5 parsecs' }, /`max-image-size` must be a size/],
    [{ 'max-image-size': '-5GiB' }, /`max-image-size` must be a size/],
  ])('rejects %j', (inputs, message) => {
    withInputs(inputs);
    expect(() => getInputs({ GITHUB_REPOSITORY: 'o/r' })).toThrow(UserError);
    expect(() => getInputs({ GITHUB_REPOSITORY: 'o/r' })).toThrow(message);
  });

  it.each([
    ['1', 1],
    ['90', 90],
    // Past 90, as a private repository may keep artifacts: the repository's own setting bounds it (docs/decisions.md).
    ['91', 91],
    ['400', 400],
  ])('accepts retention-days %s', (text, days) => {
    withInputs({ 'retention-days': text });
    expect(getInputs({}).retentionDays).toBe(days);
  });

  it('reads delete mode with the inputs it uses', () => {
    withInputs({
      mode: 'Delete',
      pattern: 'docker-image-*',
      'run-id': '77',
      repository: 'acme/app',
      'github-token': 't',
    });
    expect(getInputs({})).toMatchObject({
      mode: 'delete',
      pattern: 'docker-image-*',
      runId: 77,
      repository: 'acme/app',
      githubToken: 't',
    });
  });

  it.each(['linux/amd64', 'linux/arm64/v8', 'windows/amd64', 'linux/arm/v7'])('accepts platform %s', (platform) => {
    withInputs({ platform });
    expect(getInputs({}).platform).toBe(platform);
  });

  it.each([['octo-org/octo-repo'], ['Wikid82/Charon'], ['octocat_acme/app.name-1'], ['a/.github']])(
    'accepts repository %s',
    (repository) => {
      withInputs({ repository });
      expect(getInputs({}).repository).toBe(repository);
    },
  );

  it.each([
    ['', 16 * 1024 ** 3],
    ['20GiB', 20 * 1024 ** 3],
    ['20G', 20 * 1024 ** 3],
    ['20GB', 20 * 1000 ** 3],
    ['500MiB', 500 * 1024 ** 2],
    ['1.5 TiB', 1.5 * 1024 ** 4],
    [String(2 * 1024 ** 3), 2 * 1024 ** 3],
  ])('reads max-image-size %j as %d bytes', (text, bytes) => {
    withInputs(text ? { 'max-image-size': text } : {});
    expect(getInputs({}).maxImageBytes).toBe(bytes);
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
  const where = 'The config of manifest m';
  it('joins os, architecture and a variant, and needs the first two', () => {
    expect(platformText({ os: 'linux', architecture: 'arm64', variant: 'v8' }, where)).toBe('linux/arm64/v8');
    expect(platformText({ os: 'linux', architecture: 'amd64', variant: '' }, where)).toBe('linux/amd64');
    expect(platformText({ os: 'linux' }, where)).toBeUndefined();
    expect(platformText({ os: 'linux', architecture: 1 }, where)).toBeUndefined();
    expect(platformText(null, where)).toBeUndefined();
    expect(platformText('linux/amd64', where)).toBeUndefined();
    expect(platformText({ os: 'linux', architecture: 'ppc64le', variant: 'v_1.2-x' }, where)).toBe(
      'linux/ppc64le/v_1.2-x',
    );
    expect(platformText({ os: 'windows', architecture: 'amd64', variant: '10.0.17763.1234' }, where)).toBe(
      'windows/amd64/10.0.17763.1234',
    );
  });

  it.each([
    [
      'a workflow command after a line break',
      'amd64\r\n::set-output name=digest::x',
      /`amd64\\r\\n::set-output name=digest::x`/,
    ],
    ['a command substitution', '$(curl evil)', /`\$\(curl evil\)`/],
    ['backticks', '`id`', /``id``/],
    ['a legacy command', 'x##[warning]y', /##<U\+005B>/],
    ['65 characters', 'a'.repeat(65), /… \(65 characters\)/],
    ['a leading dot', '.hidden', /`\.hidden`/],
  ])(
    'refuses a part holding %s, which would reach the `platforms` output and a shell',
    (_name, architecture, shownAs) => {
      let error: unknown;
      try {
        platformText({ os: 'linux', architecture }, where);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(
        /^The config of manifest m gives the platform part .* which is not a platform name/,
      );
      expect((error as Error).message).toMatch(shownAs);
      expect((error as Error).message).not.toMatch(/\n|##\[/);
    },
  );
});

describe('getInputs: the run search (`workflow`, `branch`, `commit`, `conclusion`)', () => {
  const sha = '0123456789abcdef0123456789abcdef01234567';

  it('searches nothing by default, and wants success', () => {
    expect(getInputs({})).toMatchObject({
      workflow: undefined,
      branch: undefined,
      commit: undefined,
      conclusion: 'success',
    });
  });

  it.each([
    [{ workflow: 'ci.yml' }, { workflow: 'ci.yml' }],
    [{ workflow: ' .github/workflows/pr.yaml ' }, { workflow: 'pr.yaml' }],
    [{ workflow: '161335' }, { workflow: '161335' }],
    [
      { workflow: 'ci.yml', branch: 'refs/heads/feature/x', commit: sha.toUpperCase(), conclusion: 'Failure' },
      { workflow: 'ci.yml', branch: 'feature/x', commit: sha, conclusion: 'failure' },
    ],
    [{ workflow: 'ci.yml', conclusion: 'any' }, { conclusion: 'any' }],
    [{ workflow: 'ci.yml', conclusion: 'timed_out' }, { conclusion: 'timed_out' }],
  ])('reads %j', (inputs, expected) => {
    withInputs(inputs);
    expect(getInputs({})).toMatchObject(expected);
  });

  it.each([
    [{ workflow: 'Pull request' }, /^Input `workflow` must be a workflow's file name .* found `Pull request`; fix the/],
    [{ workflow: 'ci.yml\n::warning::x' }, /`workflow` .* contains U\+000A .* found `ci.yml\\n::warning::x`/],
    [
      { workflow: 'ci.yml', commit: 'abc1234' },
      /^Input `commit` must be a full commit SHA, 40 hex digits \(an abbreviated/,
    ],
    [{ workflow: 'ci.yml', commit: `${sha}0` }, /`commit` must be a full commit SHA/],
    [{ workflow: 'ci.yml', branch: 'a..b' }, /^Input `branch` has "\.\.".* which git refuses in a branch name/],
    [{ workflow: 'ci.yml', branch: 'refs/pull/1/merge' }, /`branch` must be a branch's name/],
    [{ workflow: 'ci.yml', branch: 'x y' }, /`branch` contains U\+0020 \(a space\)/],
    [
      { workflow: 'ci.yml', conclusion: 'succeeded' },
      /`conclusion` must be one of `success`, `failure`, .* `any`, found `succeeded`/,
    ],
    [{ workflow: 'ci.yml', conclusion: 'in_progress' }, /`conclusion` must be one of/],
    [{ branch: 'main' }, /^Input `branch` narrows the runs of `workflow`, which is empty: set `workflow`/],
    [{ commit: sha }, /^Input `commit` narrows the runs of `workflow`, which is empty/],
  ])('rejects %j in one line', (inputs, message) => {
    withInputs(inputs);
    expect(() => getInputs({})).toThrow(UserError);
    expect(() => getInputs({})).toThrow(message);
    expect(() => getInputs({})).not.toThrow(/\n/);
  });
});
