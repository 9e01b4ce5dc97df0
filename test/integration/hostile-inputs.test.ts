/**
 * Inputs a user (or a fork) can get wrong or make hostile, through the bundled action as GitHub runs it: each ends
 * in one line naming its real cause, quickly, with nothing a runner would read as a workflow command.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { dockerArchiveEntries, makeImage, packTar } from '../support/fixtures.ts';
import * as raw from '../support/raw-tar.ts';
import { expectOneErrorLine } from '../support/expect-run.ts';

const NO_ENGINE = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
let work: string;
let tarball: Buffer;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'handoff-hostile-'));
  tarball = await packTar(dockerArchiveEntries([await makeImage(['example.com/app:1'], { seed: 'hostile inputs' })]));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** Lines the runner would execute as workflow commands, other than the action's own error, groups and debug. */
function injectedCommands(run: ActionRun, own = /^::(error|group|endgroup|debug)::/): string[] {
  return run.stdout
    .split(/\r\n|\r|\n/)
    .filter((line) => (/^\s*::/.test(line) && !own.test(line)) || line.includes('##['));
}

function expectOneLine(run: ActionRun, message: RegExp, own?: RegExp): void {
  expectOneErrorLine(run, message);
  expect(injectedCommands(run, own)).toEqual([]);
}

async function source(name: string, content: Buffer): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, content);
  return file;
}

describe('output injection', () => {
  it.each([
    ['a warning command after leading spaces', '   ::warning title=owned::a fork wrote this'],
    ['add-mask', '  ::add-mask::secret'],
    ['stop-commands', '::stop-commands::token'],
    ['a legacy command', 'app:1##[warning]owned'],
  ])('a tag holding %s is refused before anything echoes it', async (_name, tag) => {
    const run = await runAction({ mode: 'save', tags: `example.com/app:1\n${tag}`, upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /invalid/);
    // The valid tag is not echoed either: nothing is printed before every tag is checked.
    expect(run.stdout).not.toMatch(/^\s+example\.com\/app:1$/m);
  });

  it('a 10,000-character tag is shortened in the error', async () => {
    const run = await runAction({ mode: 'save', tags: `app:${'t'.repeat(10_000)}`, upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /10004 characters long/);
    expect(run.stdout.length).toBeLessThan(5000);
  });

  it('a look-alike letter in a tag is named by its code point', async () => {
    const run = await runAction({ mode: 'save', tags: 'ghcr.io/o/\u0430pp:1', upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /character 11 is U\+0430 \(a Cyrillic letter\)/);
  });

  it('a tarball recording a command as its tag cannot print it', async () => {
    const evil = await packTar(dockerArchiveEntries([await makeImage(['::warning::owned'], { seed: 'evil tag' })]));
    const run = await runAction({ mode: 'save', source: await source('evil.tar', evil), upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /records `::warning::owned`, which is not a valid image reference/);
  });
});

describe('bounds and real causes', () => {
  // 25,000 tags made docker save fail with spawn E2BIG; one input variable holds at most 128 KiB, so 12,000 here.
  it('12,000 tags: too many, said before any command line is built', async () => {
    const tags = Array.from({ length: 12_000 }, (_, i) => `a:${i}`).join('\n');
    const run = await runAction({ mode: 'save', tags, upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /Too many tags in the `tags` input: expected at most 1000 tags/);
  });

  it('a FIFO as source: one line, no hang', async () => {
    const fifo = path.join(work, 'image.fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    const run = await runAction({ mode: 'save', source: fifo, upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /is a named pipe \(FIFO\): expected an image tarball, a regular file/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('a directory as source: one line, not EISDIR', async () => {
    const run = await runAction({ mode: 'save', source: work, upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /is a directory: expected an image tarball/);
  });

  it('a device as source: one line', async () => {
    const run = await runAction({ mode: 'save', source: '/dev/zero', upload: 'false' }, NO_ENGINE);
    expectOneLine(run, /is a character device/);
  });

  it.each(['..', '.'])('name %j: refused as a directory, not EISDIR', async (name) => {
    const run = await runAction(
      { mode: 'save', source: await source('n.tar', tarball), name, upload: 'false' },
      NO_ENGINE,
    );
    expectOneLine(run, /`name` \(`\.+`\) is only dots/);
  });

  it('path /proc: a path that cannot be written, not ENOENT', async () => {
    const run = await runAction(
      { mode: 'save', source: await source('p.tar', tarball), path: '/proc', upload: 'false' },
      NO_ENGINE,
    );
    expectOneLine(run, /Cannot create files in `\/proc` \(ENOENT\)/);
  });

  it('a truncated zstd source is damaged input, not a failure to write', async () => {
    const zstd = zstdCompressSync(tarball);
    const output = path.join(work, 'out-truncated');
    await mkdir(output);
    const run = await runAction(
      {
        mode: 'save',
        source: await source('cut.tar.zst', zstd.subarray(0, zstd.length - 64)),
        path: output,
        upload: 'false',
      },
      NO_ENGINE,
    );
    expectOneLine(
      run,
      /The zstd tarball is cut short \(.*\): it was truncated in transfer or when it was made; produce it again/,
    );
    expect(run.error).not.toMatch(/writ/i);
    expect(await readdir(output)).toEqual([]);
  });
});

describe('zstd files of several frames', () => {
  it.each([
    [
      'cat a.zst b.zst',
      (tar: Buffer) =>
        Buffer.concat([
          execFileSync('zstd', ['-c', '-q'], { input: tar.subarray(0, 4096) }),
          execFileSync('zstd', ['-c', '-q'], { input: tar.subarray(4096) }),
        ]),
    ],
    ['pzstd', (tar: Buffer) => execFileSync('pzstd', ['-p', '2', '-c', '-q'], { input: tar })],
  ])('a source made by %s is read whole', async (name, compress) => {
    const file = await source(`${name.replace(/\W+/g, '-')}.tar.zst`, compress(tarball));
    const run = await runAction({ mode: 'save', source: file, upload: 'false', compression: 'none' }, NO_ENGINE);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.tags).toBe('example.com/app:1');
    expect(injectedCommands(run)).toEqual([]);
  });
});

describe('load: a damaged download is named as damage', () => {
  let service: ArtifactService;
  const savedEnv = { ...process.env };
  beforeAll(async () => {
    service = await startArtifactService();
  });
  afterAll(async () => {
    process.env = savedEnv;
    await service?.close();
  });

  // The recorded digest matches (the bytes uploaded were already cut), so only the reading can tell.
  it.each(['true', 'false'])('a cut gzip artifact, load: false, decompress: %s', async (decompress) => {
    const run = 900 + (decompress === 'true' ? 1 : 2);
    Object.assign(process.env, service.env(run));
    const { uploadFile } = await import('../../src/artifacts/index.ts');
    const gzip = gzipSync(tarball);
    const file = await source(`cut-${decompress}.tar.gz`, gzip.subarray(0, gzip.length - 100));
    await uploadFile(file, 'cut-image', { overwrite: false });
    const result = await runAction({ mode: 'load', name: 'cut-image', load: 'false', decompress }, service.env(run));
    // The artifact library masks its runtime token: the one command besides the action's own.
    expectOneLine(result, /compressed stream is cut short/, /^::(error|group|endgroup|debug|add-mask)::/);
  });

  it('path /proc: a path that cannot be written, not a full disk', async () => {
    const run = 903;
    Object.assign(process.env, service.env(run));
    const { uploadFile } = await import('../../src/artifacts/index.ts');
    await uploadFile(await source('proc.tar', tarball), 'proc-image', { overwrite: false });
    const result = await runAction(
      { mode: 'load', name: 'proc-image', load: 'false', path: '/proc' },
      service.env(run),
    );
    expectOneLine(result, /Cannot create files in `\/proc` \(ENOENT\)/, /^::(error|group|endgroup|debug|add-mask)::/);
    expect(result.error).not.toMatch(/disk space/);
  });
});

/**
 * Header tricks that hid a second manifest.json (naming an image nobody verified) from the action but not from
 * docker load: each source is the verified image with the trick in front, and each is refused with one line.
 */
describe('a source with a header readers disagree on is refused', () => {
  const evil = raw.entry({ name: 'manifest.json' }, '[{"Config":"x.json","RepoTags":["base:latest"],"Layers":[]}]');
  it.each([
    [
      'PAX path + GNU long name',
      () => Buffer.concat([raw.pax([['path', 'junk']]), raw.extended('L', 'manifest.json'), evil]),
      /second extended header/,
    ],
    [
      'two PAX headers in a row',
      () => Buffer.concat([raw.pax([['path', 'junk']]), raw.pax([['path', 'other']]), evil]),
      /second extended header/,
    ],
    ['a global PAX path', () => Buffer.concat([raw.pax([['path', 'junk']], 'g'), evil]), /global PAX header/],
    ['GNU sparse', () => raw.entry({ name: 'manifest.json', type: 'S' }, '[]'), /GNU sparse file/],
    ['the ustar prefix', () => raw.entry({ name: 'json', prefix: 'manifest' }, '[]'), /ustar prefix field/],
    ['a NUL typeflag with a trailing /', () => raw.entry({ name: 'blobs/', type: '\0' }, evil), /name ends in "\/"/],
    ['a directory with a size', () => raw.entry({ name: 'blobs', type: '5' }, evil), /directory with a size/],
  ])('%s', async (name, trick, error) => {
    const tar = Buffer.concat([trick(), tarball]);
    const run = await runAction(
      { mode: 'save', source: await source(`trick-${name.replace(/\W+/g, '-')}.tar`, tar), upload: 'false' },
      NO_ENGINE,
    );
    expectOneLine(run, error);
  });
});
