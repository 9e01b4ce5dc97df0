/**
 * Faults of the network, the artifact service, the engine and the disk, met by the bundled action through the real
 * @actions/artifact library and a real engine: each ends in a recovery, or in one clear `::error::` line within a bounded
 * time, with nothing partial left behind: no artifact finalized that is not the tarball, no partial file in
 * RUNNER_TEMP, and the engine's images of this file's repositories as they were when a load fails.
 *
 * Stall tests run with `stall-timeout: 5` and hold the step to 5 s for every attempt the fault implies, plus SLACK_MS
 * for the rest of the step on a busy two-core machine.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  descendants,
  runActionWithin,
  startAction,
  stillRunning,
  type ProcessEntry,
  type RunningAction,
  type TimedRun,
} from '../support/action-process.ts';
import { startArtifactService, type ArtifactService, type Fault } from '../support/artifact-service.ts';
import { docker, imageId, makeImage, removeImages, repositoriesState, uniqueRepository } from '../support/engine.ts';
import { withTmpfs } from '../support/mounts.ts';
import { expectOneErrorLine, runLog as output } from '../support/expect-run.ts';

const exec = promisify(execFile);

/** `stall-timeout` of every test, in seconds. */
const STALL_S = 5;
const STALL_MS = STALL_S * 1000;
/** What a step needs besides its stalls and backoffs: node, the engine, verifying, loading, on a busy machine. */
const SLACK_MS = 8_000;
/** The download's backoffs before attempts 2, 3, 4, 5 (signed-url.ts). */
const BACKOFF_MS = [0, 0, 1_000, 2_000, 4_000, 8_000];
const backoffs = (attempts: number) => BACKOFF_MS.slice(2, attempts + 1).reduce((sum, ms) => sum + ms, 0);
/** The bound of a step whose fault makes `stalls` attempts wait out the stall timeout, in `attempts` attempts. */
const bound = (stalls: number, attempts = stalls) => stalls * STALL_MS + backoffs(attempts) + SLACK_MS;
/** How long a test lets the action run before killing it: past every bound, well inside the test's timeout. */
const LIMIT_MS = 45_000;
const TEST_MS = 60_000;

const NAME = 'docker-image';
const MiB = 1024 * 1024;

let service: ArtifactService;
let work: string;
const repository = uniqueRepository('faults');
const tags = [`${repository}:pr-7`, `${repository}:latest`];
/** Keeps the image in the engine while tests remove `tags`. */
const keep = `${repository}:keep`;
let id: string;
/** The run whose artifact the load tests download, and what its save step said. */
const LOAD_RUN = 9100;
let savedDigest: string;
let artifactSize: number;
let nextRun = 9200;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-faults-'));
  id = await makeImage([...tags, keep], { randomBytes: 3 * MiB });
  const saved = await runActionWithin({ mode: 'save', tags: tags.join('\n') }, service.env(LOAD_RUN), LIMIT_MS);
  expect(saved.code, saved.stdout + saved.stderr).toBe(0);
  savedDigest = saved.outputs.digest!;
  artifactSize = service.artifacts(LOAD_RUN)[0]!.size;
}, TEST_MS);

afterEach(() => service.clearFaults());

afterAll(async () => {
  const listing = await docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}').catch(() => '');
  await removeImages(...listing.split('\n').filter((line) => line.startsWith(`${repository}:`)));
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

function inject(...faults: Fault[]): void {
  for (const fault of faults) service.inject(fault);
}

function load(
  inputs: Record<string, string> = {},
  env: Record<string, string> = {},
  limit = LIMIT_MS,
): Promise<TimedRun> {
  return runActionWithin(
    { mode: 'load', 'stall-timeout': String(STALL_S), ...inputs },
    { ...service.env(LOAD_RUN), ...env },
    limit,
  );
}

/** Tags `tags` again, should a test have removed them, for a save of them. */
async function tagged(): Promise<void> {
  for (const tag of tags) if ((await imageId(tag)) !== id) await docker('tag', keep, tag);
}

async function save(
  run: number,
  inputs: Record<string, string> = {},
  env: Record<string, string> = {},
): Promise<TimedRun> {
  await tagged();
  return runActionWithin(
    { mode: 'save', tags: tags.join('\n'), 'stall-timeout': String(STALL_S), ...inputs },
    { ...service.env(run), ...env },
    LIMIT_MS,
  );
}

/** Ended by itself, within `ms`. */
function expectWithin(run: TimedRun, ms: number): void {
  expect(run.timedOut, output(run)).toBe(false);
  expect(run.ms, `took ${Math.round(run.ms)} ms, bound ${ms} ms\n${output(run)}`).toBeLessThan(ms);
}

/** Loaded: every tag names the image saved, and the step read the artifact the save step uploaded. */
async function expectLoaded(run: TimedRun): Promise<void> {
  expect(run.timedOut, output(run)).toBe(false);
  expect(run.code, output(run)).toBe(0);
  expect(run.errors).toEqual([]);
  expect(run.outputs.digest).toBe(savedDigest);
  for (const tag of tags) expect(await imageId(tag)).toBe(id);
}

/** Partial files a step may leave in a directory: downloads, partial tarballs, upload staging. */
async function leftovers(directory: string): Promise<string[]> {
  const names = await readdir(directory).catch(() => []);
  return names.filter((name) => /^artifact-|\.partial-|^\.artifact-upload-/.test(name));
}

async function sha256File(file: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await readFile(file))
    .digest('hex')}`;
}

/** The blob GETs of the load run's artifact since `from` (an index into requests()). */
function blobGets(from: number): string[] {
  return service
    .requests()
    .slice(from)
    .filter((request) => request.startsWith(`GET /_blob/run-${LOAD_RUN}/`));
}

/** Where a ranged blob GET asks to start (`GET /_blob/run-1/3 range=bytes=100-`). */
function resumedAt(request: string): number {
  const match = / range=bytes=(\d+)-$/.exec(request);
  expect(match, request).not.toBeNull();
  return Number(match![1]);
}

/** The load tests start with `tags` gone from the engine (the image stays under `keep`). */
async function untagged(): Promise<string> {
  await removeImages(...tags);
  return repositoriesState();
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A directory holding a `docker` that runs `script` (sh) for the given subcommand and the real docker otherwise. */
async function dockerWrapper(subcommand: string, script: string): Promise<string> {
  const real = (await exec('sh', ['-c', 'command -v docker'])).stdout.trim();
  const bin = await mkdtemp(path.join(work, 'bin-'));
  await writeFile(
    path.join(bin, 'docker'),
    `#!/bin/sh\nREAL="${real}"\nif [ "$1" = ${subcommand} ]; then\n${script}\nfi\nexec "$REAL" "$@"\n`,
  );
  await chmod(path.join(bin, 'docker'), 0o755);
  return bin;
}

describe('download faults (load mode): resumed where they stopped, or one line', () => {
  it(
    'a blob GET closed cleanly at 60% is resumed with a Range from there, not downloaded again',
    async () => {
      const before = { served: service.bytesServed(LOAD_RUN, NAME), requests: service.requests().length };
      await untagged();
      inject({ target: 'blob-get', kind: 'close-early', after: 0.6 });
      const run = await load();
      await expectLoaded(run);
      expectWithin(run, bound(0, 2));
      const served = service.bytesServed(LOAD_RUN, NAME) - before.served;
      expect(served).toBeGreaterThanOrEqual(artifactSize);
      expect(served).toBeLessThanOrEqual(1.1 * artifactSize);
      const gets = blobGets(before.requests);
      expect(gets).toHaveLength(2);
      expect(gets[0]).not.toContain('range=');
      // From where it stopped: at most the 60% sent (what the client had buffered but not written when the
      // connection ended may be asked for again).
      expect(resumedAt(gets[1]!)).toBeLessThanOrEqual(Math.floor(0.6 * artifactSize));
      expect(resumedAt(gets[1]!)).toBeGreaterThanOrEqual(Math.floor(0.55 * artifactSize));
    },
    TEST_MS,
  );

  it(
    'a connection reset mid-body is resumed',
    async () => {
      const before = { served: service.bytesServed(LOAD_RUN, NAME), requests: service.requests().length };
      await untagged();
      inject({ target: 'blob-get', kind: 'reset', after: 0.5 });
      const run = await load();
      await expectLoaded(run);
      expectWithin(run, bound(0, 2));
      // Resumed, not started over: a reset also discards what was in flight, so where is less certain than at a FIN.
      const gets = blobGets(before.requests);
      expect(gets).toHaveLength(2);
      expect(resumedAt(gets[1]!)).toBeGreaterThan(0);
      expect(resumedAt(gets[1]!)).toBeLessThanOrEqual(Math.floor(0.5 * artifactSize));
      expect(service.bytesServed(LOAD_RUN, NAME) - before.served).toBeLessThan(1.5 * artifactSize);
    },
    TEST_MS,
  );

  it(
    'a body that stalls at 50% is given up on after the stall timeout and resumed',
    async () => {
      const before = { served: service.bytesServed(LOAD_RUN, NAME), requests: service.requests().length };
      await untagged();
      inject({ target: 'blob-get', kind: 'stall-body', after: 0.5 });
      const run = await load();
      await expectLoaded(run);
      expect(run.ms).toBeGreaterThanOrEqual(STALL_MS);
      expectWithin(run, bound(1, 2));
      const gets = blobGets(before.requests);
      expect(gets).toHaveLength(2);
      expect(resumedAt(gets[1]!)).toBeLessThanOrEqual(Math.floor(0.5 * artifactSize));
      expect(resumedAt(gets[1]!)).toBeGreaterThanOrEqual(Math.floor(0.45 * artifactSize));
      expect(service.bytesServed(LOAD_RUN, NAME) - before.served).toBeLessThanOrEqual(1.1 * artifactSize);
    },
    TEST_MS,
  );

  it(
    'a blob GET that is never answered is given up on after the stall timeout and made again',
    async () => {
      await untagged();
      inject({ target: 'blob-get', kind: 'stall-headers' });
      const run = await load();
      await expectLoaded(run);
      expect(run.ms).toBeGreaterThanOrEqual(STALL_MS);
      expectWithin(run, bound(1, 2));
    },
    TEST_MS,
  );

  it(
    'two 503 answers are retried',
    async () => {
      const requests = service.requests().length;
      await untagged();
      inject({ target: 'blob-get', kind: 'status', status: 503, times: 2 });
      const run = await load();
      await expectLoaded(run);
      expectWithin(run, bound(0, 3));
      expect(blobGets(requests)).toHaveLength(3);
    },
    TEST_MS,
  );

  it(
    'a server that ignores the Range after a cut sends from byte 0 again: compared, never mixed, and loaded',
    async () => {
      const before = { served: service.bytesServed(LOAD_RUN, NAME), requests: service.requests().length };
      await untagged();
      // Every attempt after the cut is answered with the whole blob: the action has to compare what it already has.
      inject(
        { target: 'blob-get', kind: 'close-early', after: 0.6 },
        { target: 'blob-get', kind: 'ignore-range', times: 4 },
      );
      const run = await load();
      await expectLoaded(run);
      expectWithin(run, bound(0, 2));
      const gets = blobGets(before.requests);
      expect(gets).toHaveLength(2);
      expect(gets[1]).toMatch(/ range=bytes=\d+-$/);
      // The whole blob the second time: the 60% already written was read again and compared.
      expect(service.bytesServed(LOAD_RUN, NAME) - before.served).toBe(Math.floor(0.6 * artifactSize) + artifactSize);
    },
    TEST_MS,
  );

  it(
    'a download cut short on every attempt fails in one line that says how far it got, after 5 attempts',
    async () => {
      const before = await untagged();
      // 20% of what is left, each time: it ends about two thirds of the way, short enough to show in MiB.
      inject({ target: 'blob-get', kind: 'close-early', after: 0.2, times: 10 });
      const run = await load();
      expectOneErrorLine(
        run,
        /download of artifact `docker-image` was cut short after \d[\d.]* [KMG]?i?B of \d[\d.]* [KMG]?i?B\b.*\b5 attempts\b/,
      );
      expectWithin(run, bound(0, 5));
      expect(await repositoriesState()).toBe(before);
      expect(await leftovers(run.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a blob store that announces more than it sends, every time, fails as cut short (or, every byte there, loads)',
    async () => {
      const before = await untagged();
      inject({ target: 'blob-get', kind: 'lie-length', extra: 1000, times: 10 });
      const run = await load();
      expectWithin(run, bound(0, 5));
      // Each answer ends short of the length it announced: a transfer cut short, not another blob. A download that
      // reads what came, and then finds nothing past the recorded size, has the whole artifact, which its digest
      // proves: loading it is as right as failing as cut short.
      if (run.code === 0) {
        await expectLoaded(run);
        return;
      }
      expectOneErrorLine(run, /download of artifact `docker-image` was cut short\b/);
      expect(run.error).not.toMatch(/replaced|before its first byte/);
      expect(await repositoriesState()).toBe(before);
      expect(await leftovers(run.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a listing that is never answered fails in one line naming the listing, within the stall timeout and retries',
    async () => {
      const before = await untagged();
      inject({ target: 'ListArtifacts', kind: 'stall-headers', times: 10 });
      const run = await load();
      expectOneErrorLine(run, /[Ll]isting the artifacts/);
      // listLatest (artifacts/listing.ts) tries twice, each within the stall timeout, with no backoff between.
      expectWithin(run, bound(2, 0));
      expect(await repositoriesState()).toBe(before);
      expect(await leftovers(run.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );
});

describe('upload faults (save mode): the tarball, finalized once, or one line and no artifact', () => {
  /** Every artifact of `run` is the tarball the step wrote, when it wrote one. */
  async function onlyTheTarball(run: number, step: TimedRun): Promise<void> {
    const file = path.join(step.runnerTemp, `${NAME}.tar.zst`);
    const written = await stat(file).then(
      () => sha256File(file),
      () => undefined,
    );
    for (const artifact of service.artifacts(run)) {
      expect(artifact.digest, `artifact ${artifact.name} of run ${run}`).toBe(written);
    }
  }

  it(
    'a FinalizeArtifact answer lost after the service finalized: one artifact, the tarball, and the step succeeds',
    async () => {
      const run = ++nextRun;
      inject({ target: 'FinalizeArtifact', kind: 'apply-then-reset' });
      const step = await save(run);
      expect(step.code, output(step)).toBe(0);
      expectWithin(step, bound(0, 3) + 10_000);
      const artifacts = service.artifacts(run);
      expect(artifacts.map((artifact) => artifact.name)).toEqual([NAME]);
      expect(artifacts[0]!.digest).toBe(step.outputs.digest);
      expect(await sha256File(step.outputs.tarball!)).toBe(step.outputs.digest);
      expect(step.outputs['artifact-id']).toBe(String(artifacts[0]!.id));
      expect(await leftovers(step.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a block PUT that is never answered: the upload succeeds or fails in one line, in bounded time, never another artifact',
    async () => {
      const run = ++nextRun;
      inject({ target: 'block-put', kind: 'stall-headers' });
      const step = await save(run);
      // The library looks for progress every stall timeout (so finds none within two), then the tarball is sent again.
      expectWithin(step, bound(3, 3));
      if (step.code === 0) {
        const artifacts = service.artifacts(run);
        expect(artifacts.map((artifact) => artifact.name)).toEqual([NAME]);
        expect(artifacts[0]!.digest).toBe(step.outputs.digest);
        expect(await sha256File(step.outputs.tarball!)).toBe(step.outputs.digest);
      } else {
        expectOneErrorLine(step, /upload/i);
      }
      await onlyTheTarball(run, step);
      expect(await leftovers(step.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a CreateArtifact that is never answered fails in one line within the stall timeout, with no artifact',
    async () => {
      const run = ++nextRun;
      inject({ target: 'CreateArtifact', kind: 'stall-headers', times: 10 });
      const step = await save(run);
      // The line names the upload it was, then what did not answer.
      expectOneErrorLine(step, /^Uploading artifact `docker-image` failed: .*(did not answer|stalled|no answer)/i);
      expectWithin(step, bound(1));
      expect(service.artifacts(run)).toEqual([]);
      expect(await leftovers(step.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'every block PUT refused with 500 fails in one line, with no artifact left in the run',
    async () => {
      const run = ++nextRun;
      inject({ target: 'block-put', kind: 'status', status: 500, times: 50 });
      const step = await save(run);
      expectOneErrorLine(step, /[Uu]ploading artifact `docker-image` failed/);
      // The streamed upload and the two uploads of the written file, each given up on within two stall timeouts.
      expectWithin(step, bound(6, 3));
      expect(service.artifacts(run)).toEqual([]);
      await onlyTheTarball(run, step);
      expect(await leftovers(step.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );
});

describe('cancellation: SIGTERM mid-transfer stops the step, undoes its work, and says so in one line', () => {
  const bigRepository = uniqueRepository('faults-big');
  const big = `${bigRepository}:cancel`;

  beforeAll(async () => {
    await makeImage([big], { randomBytes: 64 * MiB });
  }, TEST_MS);

  afterAll(() => removeImages(big));

  /** Polls `ready` every 20 ms until it holds, for at most `ms`. */
  async function until(ready: () => Promise<boolean>, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      if (await ready()) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  /** Sends SIGTERM once `ready`; returns the step's end and what it had started just before. */
  async function cancelWhen(
    action: RunningAction,
    ready: () => Promise<boolean>,
  ): Promise<{ step: TimedRun; running: ProcessEntry[]; signalledAt: number }> {
    try {
      const reached = await Promise.race([until(ready, 30_000), action.ended.then(() => false)]);
      expect(reached, `the step never got mid-transfer:\n${action.stdout()}`).toBe(true);
      const running = await descendants(action.pid);
      const signalledAt = action.elapsed();
      action.child.kill('SIGTERM');
      const limit = new Promise<'limit'>((resolve) => setTimeout(() => resolve('limit'), 20_000).unref());
      const ended = await Promise.race([action.ended, limit]);
      expect(ended, `still running 20 s after SIGTERM:\n${action.stdout()}`).not.toBe('limit');
      return { step: ended as TimedRun, running, signalledAt };
    } finally {
      await action.killAll();
    }
  }

  async function expectCancelled(
    action: RunningAction,
    outcome: { step: TimedRun; running: ProcessEntry[]; signalledAt: number },
  ): Promise<void> {
    const { step, running, signalledAt } = outcome;
    expectOneErrorLine(step, /cancelled \(SIGTERM\)/);
    expect(step.ms - signalledAt, `exited ${Math.round(step.ms - signalledAt)} ms after SIGTERM`).toBeLessThan(10_000);
    // Nothing it started outlives it: no docker save, docker load or zstd left running.
    const started = [...running, ...action.started()];
    expect(await stillRunning(started), JSON.stringify(started)).toEqual([]);
    expect(await leftovers(step.runnerTemp)).toEqual([]);
  }

  it(
    'a save mid-transfer: no docker save or zstd left, no partial file, no finalized artifact',
    async () => {
      const slow = await startArtifactService({ rate: { upload: 8e6 } });
      try {
        const run = ++nextRun;
        const action = await startAction({ mode: 'save', tags: big }, slow.env(run));
        // Once a block is on its way, or the save has written 8 MiB that the upload has yet to send.
        const outcome = await cancelWhen(action, async () => {
          if (slow.requests().some((request) => request.includes('?comp=block'))) return true;
          for (const name of await readdir(action.runnerTemp)) {
            if (!name.includes('.partial-')) continue;
            const size = (await stat(path.join(action.runnerTemp, name)).catch(() => undefined))?.size ?? 0;
            if (size >= 8 * MiB) return true;
          }
          return false;
        });
        expect(outcome.running.map((entry) => entry.args).join('\n')).toMatch(/docker|zstd/);
        await expectCancelled(action, outcome);
        // Nothing finalized now, nor later by a request the step left behind.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        expect(slow.artifacts(run)).toEqual([]);
      } finally {
        await slow.close();
      }
    },
    TEST_MS,
  );

  it(
    'a load mid-download: the engine as it was, no docker load left, no partial download',
    async () => {
      const slow = await startArtifactService({ rate: { download: 4e6 } });
      try {
        const run = ++nextRun;
        const saved = await runActionWithin({ mode: 'save', tags: big }, slow.env(run), LIMIT_MS);
        expect(saved.code, output(saved)).toBe(0);
        await removeImages(big);
        const before = await repositoriesState();
        const action = await startAction({ mode: 'load' }, slow.env(run));
        const outcome = await cancelWhen(action, async () => {
          for (const name of await readdir(action.runnerTemp)) {
            if (!name.startsWith('artifact-')) continue;
            const file = path.join(action.runnerTemp, name, NAME);
            if (((await stat(file).catch(() => undefined))?.size ?? 0) >= 8 * MiB) return true;
          }
          return false;
        });
        expect(outcome.running.map((entry) => entry.args).join('\n')).toMatch(/docker load/);
        await expectCancelled(action, outcome);
        expect(await repositoriesState()).toBe(before);
        expect(await imageId(big)).toBeUndefined();
      } finally {
        await slow.close();
      }
    },
    TEST_MS,
  );
});

describe('engine and disk faults', () => {
  it(
    'a docker load that reads some of the tarball and exits 1 is named in one line, the engine as it was',
    async () => {
      const before = await untagged();
      const bin = await dockerWrapper('load', 'head -c 100000 >/dev/null\necho "load: simulated failure" >&2\nexit 1');
      const run = await load({}, { PATH: `${bin}:${process.env.PATH}` });
      expectOneErrorLine(run, /`docker load`/);
      expect(run.error).not.toMatch(/^write EPIPE\.?$/);
      expectWithin(run, bound(0, 1));
      expect(await repositoriesState()).toBe(before);
      expect(await leftovers(run.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a docker load that loads everything and then exits 1 is named in one line, and the tags it moved are put back',
    async () => {
      // The tags name another image first: a failed load must leave them naming it.
      const otherId = await makeImage([`${repository}:other`]);
      for (const tag of tags) await docker('tag', otherId, tag);
      const before = await repositoriesState();
      const bin = await dockerWrapper('load', '"$REAL" "$@"\necho "load: simulated failure after loading" >&2\nexit 1');
      const run = await load({}, { PATH: `${bin}:${process.env.PATH}` });
      // Two sentences: what the engine said, then what was put back.
      expectOneErrorLine(run, /`docker load`.*[.!?] It had changed .*: /);
      expectWithin(run, bound(0, 1));
      for (const tag of tags) expect(await imageId(tag)).toBe(otherId);
      expect(await repositoriesState()).toBe(before);
      await removeImages(`${repository}:other`, ...tags);
    },
    TEST_MS,
  );

  it(
    'a docker save that never writes fails after the stall timeout in one line naming it, with no artifact',
    async () => {
      const run = ++nextRun;
      await tagged();
      const bin = await dockerWrapper('save', 'exec sleep 3600');
      const action = await startAction(
        { mode: 'save', tags: tags.join('\n'), 'stall-timeout': String(STALL_S) },
        { ...service.env(run), PATH: `${bin}:${process.env.PATH}` },
      );
      let step: TimedRun;
      try {
        const limit = new Promise<'limit'>((resolve) => setTimeout(() => resolve('limit'), LIMIT_MS).unref());
        const ended = await Promise.race([action.ended, limit]);
        expect(ended, `still running after ${LIMIT_MS} ms:\n${action.stdout()}`).not.toBe('limit');
        step = ended as TimedRun;
      } finally {
        await action.killAll();
      }
      expectOneErrorLine(step, /`docker save`.*(wrote nothing|stall|no byte)/);
      // The first byte may take a second more for the image's size (save.ts, engineStall).
      expectWithin(step, bound(1) + 1_000);
      expect(await stillRunning(action.started())).toEqual([]);
      expect(service.artifacts(run)).toEqual([]);
      expect(await leftovers(step.runnerTemp)).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'a path whose disk the plain tar copy fills (load: false) fails in one line naming disk space and the path',
    async (context) => {
      const before = await repositoriesState();
      // Room for the download, not for the plain tar written beside it.
      const room = Math.ceil((artifactSize + MiB) / MiB);
      await withTmpfs(`size=${room}m`, context, async (mountPoint) => {
        const run = await load({ load: 'false', path: mountPoint });
        const where = escaped(mountPoint);
        expectOneErrorLine(run, new RegExp(`disk space.*${where}|${where}.*disk space`));
        expectWithin(run, bound(0, 1));
        expect(await readdir(mountPoint)).toEqual([]);
      });
      expect(await repositoriesState()).toBe(before);
    },
    TEST_MS,
  );
});
