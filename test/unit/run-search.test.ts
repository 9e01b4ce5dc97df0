import { describe, expect, it } from 'vitest';
import { parseBranch, parseCommit, parseWorkflow } from '../../src/run-search.ts';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('parseWorkflow', () => {
  it.each([
    ['ci.yml', 'ci.yml'],
    ['pull-request.yaml', 'pull-request.yaml'],
    ['.github/workflows/ci.yml', 'ci.yml'],
    ['./.github/workflows/ci.yml', 'ci.yml'],
    ['Build & test.yml', 'Build & test.yml'],
    ['161335', '161335'],
    ['007', '7'],
  ])('takes %j as %j', (text, value) => {
    expect(parseWorkflow(text)).toEqual({ ok: true, value });
  });

  it.each([
    ['Pull request', /the API does not take a workflow's `name:`/],
    ['ci', /file name \(`pr.yml`, in .github\/workflows\) or its numeric ID/],
    ['ci.yml.bak', /does not take a workflow's `name:`/],
    ['other/dir/ci.yml', /without a directory/],
    ['.github/workflows/sub/ci.yml', /without a directory/],
    ['..\\ci.yml', /without a directory/],
    ['ci\n.yml', /contains U\+000A \(a control character\)/],
    ['0', /is no ID/],
    ['99999999999999999999', /is no ID/],
    [`${'w'.repeat(252)}.yml`, /file name/],
  ])('refuses %j', (text, problem) => {
    const parsed = parseWorkflow(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toMatch(problem);
  });
});

describe('parseBranch', () => {
  it.each([
    ['main', 'main'],
    ['feature/login-form', 'feature/login-form'],
    ['refs/heads/release/1.2', 'release/1.2'],
    ['dependabot/npm_and_yarn/vite-5.4.1', 'dependabot/npm_and_yarn/vite-5.4.1'],
    ['fix-ß', 'fix-ß'],
    ['a.b', 'a.b'],
  ])('takes %j as %j', (text, value) => {
    expect(parseBranch(text)).toEqual({ ok: true, value });
  });

  it.each([
    ['refs/pull/42/merge', /a pull request's branch is `github.head_ref`/],
    ['refs/tags/v1', /a ref outside refs\/heads\/ is no branch/],
    ['my branch', /contains U\+0020 \(a space\), which git refuses in a branch name/],
    ['a:b', /contains ":"/],
    ['a~1', /contains "~"/],
    ['a^', /contains "\^"/],
    ['a?', /contains "\?"/],
    ['a*', /contains "\*"/],
    ['a[b', /contains "\["/],
    ['a\\b', /contains "\\"/],
    ['a\u007fb', /contains U\+007F \(a control character\)/],
    ['a\tb', /contains U\+0009/],
    ['a..b', /has "\.\."/],
    ['a@{1}', /has/],
    ['a//b', /has/],
    ['/a', /has/],
    ['a/', /has/],
    ['a.', /has/],
    ['a.lock', /has/],
    ['a.lock/b', /has/],
    ['.hidden', /has/],
    ['a/.b', /has/],
    ['-x', /has/],
    ['@', /is no name/],
    ['refs/heads/', /is no name/],
    ['b'.repeat(401), /longer than 400 characters/],
  ])('refuses %j', (text, problem) => {
    const parsed = parseBranch(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toMatch(problem);
  });
});

describe('parseCommit', () => {
  it.each([SHA, SHA.toUpperCase()])('takes %s, lowercased', (text) => {
    expect(parseCommit(text)).toEqual({ ok: true, value: SHA });
  });

  it.each([
    ['0123abc', /40 hex digits \(an abbreviated SHA of 7 digits\)/],
    [SHA.slice(0, 39), /abbreviated SHA of 39 digits/],
    [`${SHA}0`, /must be a full commit SHA, 40 hex digits, which/],
    [`${SHA.slice(0, 39)}g`, /40 hex digits, which/],
    ['HEAD', /40 hex digits/],
    ['main', /40 hex digits/],
  ])('refuses %j', (text, problem) => {
    const parsed = parseCommit(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problem).toMatch(problem);
  });
});
