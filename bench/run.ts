/**
 * End-to-end benchmark: this action against the plain `docker save` + @actions/artifact zip + `docker load` baseline
 * and against the engine's own floor, on images made here, with the real engine and the local artifact service.
 *
 *   npm run bench
 *
 * Environment:
 *   BENCH_SCALE=full|small     full: ~1 GiB of /usr, 512 MiB random, 100k small files; small: quick run
 *   BENCH_CASES=realistic,random,small-files,gzip-layers
 *                              gzip-layers: the realistic files on the Docker 28 containerd-store engine (started with
 *                              scripts/engines.sh), whose `docker save` writes the layers gzip-compressed as stored
 *   BENCH_RUNS=3               medians of this many runs
 *   BENCH_REALISTIC_MIB=N      cap on the realistic image's file bytes (overrides the scale)
 *   BENCH_RANDOM_MIB=N, BENCH_SMALL_FILES=N, BENCH_GZIP_MIB=N (the gzip-layers case's file bytes)
 *   BENCH_DOCKERD=journaled    run a second dockerd on a journaled ext4 loop mount (docs/performance.md, "Measuring on these machines"); needs root
 *   BENCH_ZSTD=0               skip the zstd level / nbWorkers side experiment
 *   BENCH_NETWORK=loopback,github   the artifact service's shapes: loopback (no limit) and GitHub's published
 *                              throughput (test/support/artifact-service.ts, GITHUB_RATE); baseline and action run at each
 *   HANDOFF_TRANSFERS=serial   the action uploads after the save and reads a download once complete (src/artifact.ts)
 *   BENCH_ACTION_ONLY=1        run only the action (no baseline, no floor): a quick look at its phases
 *   BENCH_BEFORE=FILE          another build's dist/index.js, run beside this one in every run (before, then after),
 *                              and compared in a table of its own: a change's cost measured in one run
 *   BENCH_LOGS=dir             keep each action run's log, every line stamped with the seconds since it started
 *   DOCKER_HOST=…              the engine to measure for the other cases
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { DIST, ROOT, parseOutputFile, prepareRun } from '../test/support/action.ts';
import { GITHUB_RATE, startArtifactService, type ArtifactService } from '../test/support/artifact-service.ts';

const MiB = 1024 * 1024;
const SCALE = process.env.BENCH_SCALE === 'small' ? 'small' : 'full';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const CASES = (process.env.BENCH_CASES ?? 'realistic,random,small-files,gzip-layers')
  .split(',')
  .map((c) => c.trim())
  .filter(Boolean);
const REALISTIC_ROOT = SCALE === 'small' ? '/usr/share' : '/usr';
const REALISTIC_BYTES = Number(process.env.BENCH_REALISTIC_MIB ?? (SCALE === 'small' ? 256 : 1024)) * MiB;
// Smaller than the realistic case: the containerd store's loads are slow on this machine's /opt (docs/performance.md, "Measuring on these machines").
const GZIP_BYTES = Number(process.env.BENCH_GZIP_MIB ?? (SCALE === 'small' ? 128 : 512)) * MiB;
const RANDOM_BYTES = Number(process.env.BENCH_RANDOM_MIB ?? (SCALE === 'small' ? 128 : 512)) * MiB;
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? (SCALE === 'small' ? 20_000 : 100_000));
const TIME_BIN = '/usr/bin/time';
const NETWORKS = (process.env.BENCH_NETWORK ?? 'loopback,github')
  .split(',')
  .map((n) => n.trim())
  .filter((n): n is Network => n === 'loopback' || n === 'github');
type Network = 'loopback' | 'github';

interface Proc {
  code: number | null;
  stdout: string;
  /** stdout with each chunk's lines prefixed by the seconds since the start, for BENCH_LOGS. */
  timeline: string;
  stderr: string;
  ms: number;
}

/** Runs a command; stdout goes to `stdoutFile` when given ('/dev/null' to drop it). */
async function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdoutFile?: string; cwd?: string } = {},
) {
  const fd = options.stdoutFile ? openSync(options.stdoutFile, 'w') : undefined;
  const stdio: StdioOptions = ['ignore', fd ?? 'pipe', 'pipe'];
  const started = performance.now();
  const child = spawn(command, args, { env: options.env ?? process.env, stdio, cwd: options.cwd });
  let stdout = '';
  let stderr = '';
  let timeline = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    const at = ((performance.now() - started) / 1000).toFixed(2).padStart(7);
    timeline += text.replace(/^(?=.)/gm, `${at} `);
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (fd !== undefined) closeSync(fd);
  return { code, stdout, stderr, timeline, ms: performance.now() - started } satisfies Proc;
}

async function must(command: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<Proc> {
  const result = await run(command, args, options);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${result.code}): ${result.stderr.slice(-2000)}`);
  return result;
}

const docker = (args: string[], options: Parameters<typeof run>[2] = {}) => must('docker', args, options);

/**
 * Seconds a `sync` takes. Run untimed before every load, so that none pays for writes of an earlier step, and timed
 * after it (Measured.flush).
 */
async function sync(): Promise<number> {
  return seconds((await must('sync', [])).ms);
}

/**
 * On the containerd store, a load after the action's probe (a container made and removed) skipped the unpack
 * (docs/performance.md, "Layers against their diff_ids"). Every way makes and removes one before it removes the
 * image, so that every load starts alike.
 */
async function rmi(tag: string): Promise<void> {
  const created = await docker(['container', 'create', '--network', 'none', tag, '/bench-probe']);
  await docker(['container', 'rm', '--force', created.stdout.trim()]);
  await docker(['rmi', tag]);
}

// ---------------------------------------------------------------------------------------------------------------
// Images

/** Pipes a tar stream into `docker import`. */
async function importTar(source: Readable, tag: string): Promise<void> {
  const child = spawn('docker', ['import', '-', tag], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  await pipeline(source, child.stdin);
  const code = await closed;
  if (code !== 0) throw new Error(`docker import ${tag} failed: ${stderr}`);
}

/** A rootfs of the machine's own files: the first files of `root` (find order) up to `capBytes` of content. */
async function makeRealistic(tag: string, capBytes = REALISTIC_BYTES): Promise<string> {
  const listed = await must('find', [
    REALISTIC_ROOT,
    '-xdev',
    '(',
    '-type',
    'f',
    '-o',
    '-type',
    'l',
    ')',
    '-printf',
    '%s\t%P\n',
  ]);
  const chosen: string[] = [];
  let bytes = 0;
  for (const line of listed.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const size = Number(line.slice(0, tab));
    if (bytes + size > capBytes) continue;
    bytes += size;
    chosen.push(line.slice(tab + 1));
  }
  const tar = spawn('tar', ['-C', REALISTIC_ROOT, '--null', '--no-recursion', '-T', '-', '-c', '-f', '-'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  tar.stdin.end(chosen.join('\0') + '\0');
  await importTar(tar.stdout, tag);
  return `${REALISTIC_ROOT} subset: ${chosen.length} files, ${(bytes / MiB).toFixed(0)} MiB`;
}

async function makeRandom(tag: string): Promise<string> {
  const pack = tarPack();
  const imported = importTar(pack as unknown as Readable, tag);
  const entry = pack.entry({ name: 'random.bin', size: RANDOM_BYTES });
  await pipeline(async function* () {
    for (let left = RANDOM_BYTES; left > 0; left -= MiB) yield randomBytes(Math.min(MiB, left));
  }, entry);
  pack.finalize();
  await imported;
  return `1 file of ${RANDOM_BYTES / MiB} MiB random bytes`;
}

/** Many small files, half-compressible (hex text), 64 B to 4 KiB, 1000 per directory. */
async function makeSmallFiles(tag: string): Promise<string> {
  const pack = tarPack();
  const imported = importTar(pack as unknown as Readable, tag);
  let bytes = 0;
  for (let i = 0; i < SMALL_FILES; i++) {
    const content = Buffer.from(randomBytes(32 + Math.floor(Math.random() * 2016)).toString('hex'));
    bytes += content.length;
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: `d${Math.floor(i / 1000)}/f${i}.txt` }, content, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }
  pack.finalize();
  await imported;
  return `${SMALL_FILES} files, ${(bytes / MiB).toFixed(0)} MiB`;
}

const MAKERS: Record<string, (tag: string) => Promise<string>> = {
  realistic: makeRealistic,
  random: makeRandom,
  'small-files': makeSmallFiles,
  'gzip-layers': (tag) => makeRealistic(tag, GZIP_BYTES),
};

/** Cases measured on an engine of scripts/engines.sh rather than the default (or BENCH_DOCKERD) one. */
const CASE_ENGINES: Record<string, 'containerd'> = { 'gzip-layers': 'containerd' };

/** The most a case's save may cost against the floor's `docker save`, where the issue sets a bound. */
const SAVE_TARGETS: Record<string, number> = { 'gzip-layers': 1.2 };

/**
 * Starts `engine` with scripts/engines.sh and points this process (and so every docker command and action run it
 * starts) at it; returns what points it back.
 */
async function useEngine(engine: string): Promise<() => void> {
  const started = await must('bash', [path.join(ROOT, 'scripts', 'engines.sh'), 'start', engine]);
  const previous: Record<string, string | undefined> = {};
  for (const line of started.stdout.split('\n')) {
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    const key = line.slice(0, equals);
    previous[key] = process.env[key];
    process.env[key] = line.slice(equals + 1);
  }
  return () => {
    for (const [key, value] of Object.entries(previous)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Artifact library, in process (the environment must be set before @actions/github is imported)

type ArtifactModule = typeof import('@actions/artifact');
let artifactModule: ArtifactModule | undefined;

async function artifactClient(service: ArtifactService) {
  Object.assign(process.env, service.env(1));
  artifactModule ??= await import('@actions/artifact');
  return new artifactModule.DefaultArtifactClient();
}

// ---------------------------------------------------------------------------------------------------------------
// The three ways

/** BENCH_ACTION_ONLY=1: the action alone, for a quick look at its phases (BENCH_LOGS); no ratios are meaningful. */
const ACTION_ONLY = process.env.BENCH_ACTION_ONLY === '1';
/** BENCH_BEFORE: another build of the action, measured beside this one in each run. */
const BEFORE = process.env.BENCH_BEFORE ? path.resolve(process.env.BENCH_BEFORE) : undefined;
const SKIPPED: Measured = { save: 0, upload: 0, download: 0, load: 0, total: 0, bytes: undefined };

interface Measured {
  save: number;
  upload: number;
  download: number;
  load: number;
  total: number;
  bytes: number | undefined;
  /** Peak RSS of the action's save and load processes, bytes. */
  rssSave?: number;
  rssLoad?: number;
  /** Every phase the action reported, seconds. */
  phases?: Record<string, number>;
  /** The floor's: seconds before `docker save` writes its first byte, and from `docker load`'s last byte to its end. */
  firstByte?: number;
  importTail?: number;
  /**
   * A `sync` right after the load: the writes the engine left in the page cache, which its next write (a container
   * made, the action's probe on the containerd store) waits for. `settled` is the total with it.
   */
  flush?: number;
  settled?: number;
}

const seconds = (ms: number) => ms / 1000;

/** @actions/core prints `::debug::` lines on stdout for every library request: keep them out of the report. */
async function quietly<T>(work: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await work();
  } finally {
    process.stdout.write = write;
  }
}

async function baseline(service: ArtifactService, tag: string, work: string, name: string): Promise<Measured> {
  const client = await artifactClient(service);
  const file = path.join(work, 'image.tar');
  const save = await docker(['save', '-o', file, tag]);
  let started = performance.now();
  const uploaded = await quietly(() => client.uploadArtifact(name, [file], work));
  const upload = performance.now() - started;
  const into = path.join(work, 'download');
  started = performance.now();
  await quietly(() => client.downloadArtifact(uploaded.id!, { path: into }));
  const download = performance.now() - started;
  await rmi(tag);
  await sync();
  const load = await docker(['load', '-i', path.join(into, 'image.tar')]);
  const flush = await sync();
  await rm(into, { recursive: true, force: true });
  const parts = {
    save: seconds(save.ms),
    upload: seconds(upload),
    download: seconds(download),
    load: seconds(load.ms),
  };
  const total = parts.save + parts.upload + parts.download + parts.load;
  return { ...parts, total, bytes: uploaded.size, flush, settled: total + flush };
}

interface ActionProc extends Proc {
  rss: number;
  outputs: Record<string, string>;
  phases: Record<string, number>;
}

/** dist/index.js as GitHub runs it (like test/support/action.ts), under /usr/bin/time -v for its peak RSS. */
async function runAction(
  inputs: Record<string, string>,
  env: Record<string, string>,
  dist: string = DIST,
): Promise<ActionProc> {
  const { runnerTemp, outputFile, summaryFile, env: childEnv } = await prepareRun(inputs, env);
  const timeFile = path.join(runnerTemp, 'time');
  const result = await run(TIME_BIN, ['-v', '-o', timeFile, process.execPath, dist], {
    env: childEnv,
    cwd: runnerTemp,
  });
  const outputs = parseOutputFile(await readFile(outputFile, 'utf8'));
  if (result.code !== 0) {
    const error = result.stdout.split('\n').find((line) => line.startsWith('::error::'));
    throw new Error(
      `action ${inputs.mode} failed (${result.code}): ${error ?? result.stdout.slice(-1500) + result.stderr.slice(-1500)}`,
    );
  }
  if (process.env.BENCH_LOGS) {
    await mkdir(process.env.BENCH_LOGS, { recursive: true });
    await writeFile(path.join(process.env.BENCH_LOGS, `${inputs.mode}-${Date.now()}.log`), result.timeline);
  }
  const rssKb = /Maximum resident set size \(kbytes\): (\d+)/.exec(await readFile(timeFile, 'utf8'));
  const phases: Record<string, number> = {};
  for (const match of (await readFile(summaryFile, 'utf8')).matchAll(/<td>([^<]+)<\/td><td>([\d.]+)<\/td>/g)) {
    phases[match[1]!.replace(/ (bench|action)-\S+$/, '')] = Number(match[2]);
  }
  await rm(runnerTemp, { recursive: true, force: true });
  return { ...result, rss: Number(rssKb?.[1] ?? 0) * 1024, outputs, phases };
}

async function action(service: ArtifactService, tag: string, work: string, name: string, dist: string = DIST) {
  const env = service.env(1);
  const dir = path.join(work, 'action');
  const saved = await runAction({ mode: 'save', tags: tag, name, path: dir }, env, dist);
  await rmi(tag);
  await sync();
  const loaded = await runAction(
    { mode: 'load', tags: tag, name, path: dir, 'expected-digest': saved.outputs.digest ?? '' },
    env,
    dist,
  );
  const flush = await sync();
  await rm(dir, { recursive: true, force: true });
  const phases = { ...saved.phases, ...loaded.phases };
  const phase = (prefix: string) =>
    Object.entries(phases)
      .filter(([key]) => key.startsWith(prefix))
      .reduce((sum, [, value]) => sum + value, 0);
  const save = phase('save');
  const upload = phase('upload');
  const download = phase('download');
  const load = phase('verify') + phase('load');
  const total = seconds(saved.ms + loaded.ms);
  return {
    measured: {
      save,
      upload,
      download,
      load,
      total,
      flush,
      settled: total + flush,
      bytes: Number(saved.outputs.size),
      rssSave: saved.rss,
      rssLoad: loaded.rss,
      phases: { ...phases, 'save process': seconds(saved.ms), 'load process': seconds(loaded.ms) },
    } satisfies Measured,
    tarBytes: saved.outputs.size,
  };
}

async function floor(tag: string, work: string): Promise<Measured> {
  const save = await docker(['save', tag], { stdoutFile: '/dev/null' });
  // A tar already in the page cache: written by a second `docker save`, untimed, which also shows how long the engine
  // works before its first byte.
  const file = path.join(work, 'floor.tar');
  const firstByte = await saveToFile(tag, file);
  await pipeline(createReadStream(file), new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  await rmi(tag);
  await sync();
  const load = await docker(['load', '-i', file]);
  const flush = await sync();
  // Once more, fed through stdin, for how long the engine imports after the last byte has reached it.
  await rmi(tag);
  const importTail = await loadFromFile(file);
  await rm(file, { force: true });
  const parts = { save: seconds(save.ms), upload: 0, download: 0, load: seconds(load.ms) };
  const total = parts.save + parts.load;
  return { ...parts, total, bytes: undefined, firstByte, importTail, flush, settled: total + flush };
}

/** `docker save` into `file`; the seconds until its first byte. */
async function saveToFile(tag: string, file: string): Promise<number> {
  const started = performance.now();
  const child = spawn('docker', ['save', tag], { stdio: ['ignore', 'pipe', 'ignore'] });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  let first: number | undefined;
  child.stdout.once('data', () => (first = performance.now()));
  await pipeline(child.stdout, createWriteStream(file));
  if ((await closed) !== 0 || first === undefined) throw new Error(`docker save ${tag} failed`);
  return seconds(first - started);
}

/** `docker load` fed `file` through stdin; the seconds from its last byte to the engine's answer. */
async function loadFromFile(file: string): Promise<number> {
  const child = spawn('docker', ['load'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  await pipeline(createReadStream(file, { highWaterMark: MiB }), child.stdin);
  const fed = performance.now();
  if ((await closed) !== 0) throw new Error(`docker load of ${file} failed`);
  return seconds(performance.now() - fed);
}

// ---------------------------------------------------------------------------------------------------------------
// zstd side experiment: docker save | zstd (level, nbWorkers) | /dev/null, in this process

async function zstdTrial(tag: string, level: number, workers: number) {
  const child = spawn('docker', ['save', tag], { stdio: ['ignore', 'pipe', 'ignore'] });
  let bytes = 0;
  const started = performance.now();
  try {
    await pipeline(
      child.stdout,
      zlib.createZstdCompress({
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_nbWorkers]: workers },
      }),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          callback();
        },
      }),
    );
  } catch (error) {
    // nbWorkers > 0 fails this way on Node 24 (nodejs/node#59899): recorded, since it is why the action uses 0.
    child.kill();
    return { level, workers, seconds: NaN, bytes: NaN, failed: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
  return { level, workers, seconds: seconds(performance.now() - started), bytes, failed: undefined };
}

// ---------------------------------------------------------------------------------------------------------------
// A second dockerd on a journaled ext4 loop mount (docs/performance.md, "Measuring on these machines")

async function journaledDockerd(): Promise<() => Promise<void>> {
  const base = '/tmp/bench-dockerd';
  const image = path.join(base, 'fs.img');
  const mnt = path.join(base, 'mnt');
  await mkdir(mnt, { recursive: true });
  await must('truncate', ['-s', '40G', image]);
  await must('mkfs.ext4', ['-q', '-F', image]);
  await must('mount', ['-o', 'loop', image, mnt]);
  const socket = path.join(base, 'docker.sock');
  const log = createWriteStream(path.join(base, 'dockerd.log'));
  const daemon = spawn(
    'dockerd',
    [
      ...[
        '--data-root',
        path.join(mnt, 'data'),
        '--exec-root',
        path.join(base, 'exec'),
        '--pidfile',
        path.join(base, 'docker.pid'),
      ],
      ...['-H', `unix://${socket}`, '--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  daemon.stdout.pipe(log);
  daemon.stderr.pipe(log);
  process.env.DOCKER_HOST = `unix://${socket}`;
  for (let i = 0; i < 120; i++) {
    if ((await run('docker', ['info'])).code === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await docker(['info']);
  return async () => {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.on('close', resolve));
    await run('umount', [mnt]);
    await rm(base, { recursive: true, force: true });
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Report

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianOf(runs: Measured[]): Measured {
  const pick = (key: keyof Measured) => {
    const values = runs.map((r) => r[key]).filter((v): v is number => typeof v === 'number');
    return values.length > 0 ? median(values) : undefined;
  };
  const phases: Record<string, number> = {};
  for (const key of Object.keys(runs[0]?.phases ?? {})) phases[key] = median(runs.map((r) => r.phases?.[key] ?? 0));
  return {
    save: pick('save')!,
    upload: pick('upload')!,
    download: pick('download')!,
    load: pick('load')!,
    total: pick('total')!,
    bytes: pick('bytes'),
    rssSave: pick('rssSave'),
    rssLoad: pick('rssLoad'),
    phases: runs[0]?.phases ? phases : undefined,
    firstByte: pick('firstByte'),
    importTail: pick('importTail'),
    flush: pick('flush'),
    settled: pick('settled'),
  };
}

const mib = (bytes: number | undefined) => (bytes === undefined ? '—' : `${(bytes / MiB).toFixed(0)} MiB`);
const sec = (value: number) => value.toFixed(1);

function table(results: CaseResult[]): string {
  const lines = [
    '| case | network | way | save s | upload s | download s | load s | total s | uploaded | peak RSS save / load | ×baseline | ×floor |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const result of results) {
    const f = result.median.floor;
    for (const [network, { baseline: b, action: a }] of Object.entries(result.median.networks)) {
      const row = (way: string, m: Measured) => {
        const rss = m.rssSave === undefined ? '—' : `${mib(m.rssSave)} / ${mib(m.rssLoad)}`;
        const vsBaseline = `${(m.total / b.total).toFixed(2)}×`;
        const vsFloor = `${(m.total / f.total).toFixed(2)}×`;
        const bytes =
          m.bytes === undefined ? '—' : `${mib(m.bytes)}${m === a ? ` (${(m.bytes / b.bytes!).toFixed(2)}×)` : ''}`;
        return `| ${result.name} | ${network} | ${way} | ${sec(m.save)} | ${sec(m.upload)} | ${sec(m.download)} | ${sec(m.load)} | ${sec(m.total)} | ${bytes} | ${rss} | ${vsBaseline} | ${vsFloor} |`;
      };
      lines.push(row('baseline (save -o, zip 6, unzip, load -i)', b), row('this action (defaults)', a));
    }
    const floorRow = `| ${result.name} | — | floor (save >/dev/null, load cached tar) | ${sec(f.save)} | — | — | ${sec(f.load)} | ${sec(f.total)} | — | — | — | 1.00× |`;
    lines.push(floorRow);
  }
  return lines.join('\n');
}

/** BENCH_BEFORE: each case and network, the other build's phases and this one's, and the change in the total. */
function beforeAfter(results: CaseResult[]): string {
  const lines = [
    '| case | network | build | save s | upload s | download s | load s | total s | after / before | flush s | total + flush s | after / before |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const result of results) {
    for (const [network, { before, action }] of Object.entries(result.median.networks)) {
      if (!before) continue;
      const row = (build: string, m: Measured, ratios: [string, string]) =>
        `| ${result.name} | ${network} | ${build} | ${sec(m.save)} | ${sec(m.upload)} | ${sec(m.download)} | ${sec(m.load)} | ${sec(m.total)} | ${ratios[0]} | ${sec(m.flush ?? NaN)} | ${sec(m.settled ?? NaN)} | ${ratios[1]} |`;
      const ratio = (after: number | undefined, earlier: number | undefined) =>
        after === undefined || earlier === undefined ? '—' : `${(after / earlier).toFixed(3)}×`;
      lines.push(
        row('before', before, ['', '']),
        row('after', action, [ratio(action.total, before.total), ratio(action.settled, before.settled)]),
      );
    }
  }
  return lines.join('\n');
}

function targets(results: CaseResult[]): string[] {
  const lines: string[] = [];
  const ok = (pass: boolean) => (pass ? 'met' : 'NOT met');
  for (const { name, median: m } of results) {
    const loopback = m.networks['loopback'];
    const github = m.networks['github'];
    const any = loopback ?? github!;
    const parts: string[] = [];
    if (loopback) {
      const e2eF = loopback.action.total / m.floor.total;
      parts.push(`loopback ${e2eF.toFixed(2)}× floor (≤ 1.5: ${ok(e2eF <= 1.5)})`);
    }
    if (github) {
      const e2eB = github.action.total / github.baseline.total;
      parts.push(`GitHub-shaped ${e2eB.toFixed(2)}× baseline (≤ 0.35: ${ok(e2eB <= 0.35)})`);
      const { firstByte, importTail } = m.floor;
      if (firstByte !== undefined && importTail !== undefined) {
        // Nothing can be uploaded before the engine's first byte, downloaded before the upload has ended, or named by
        // the engine before its import after the last byte: a bound on any handoff of these bytes at this shape.
        const perByte = 1 / GITHUB_RATE.upload + 1 / GITHUB_RATE.download;
        const transfers = github.action.bytes! * perByte;
        const bound = firstByte + transfers + importTail;
        const target = 0.35 * github.baseline.total;
        const fits = (target - firstByte - importTail) / perByte;
        parts.push(
          `GitHub-shaped bound for ${mib(github.action.bytes)}: ${sec(bound)} s (first byte ${sec(firstByte)} + ` +
            `transfers ${sec(transfers)} + import ${sec(importTail)}), against 0.35× = ` +
            `${sec(target)} s, which ${fits > 0 ? `needs ≤ ${mib(fits)} uploaded` : 'no number of bytes can meet'}`,
        );
      }
    }
    const bytes = any.action.bytes! / any.baseline.bytes!;
    // The peak over every network shape: a slower network holds more of the upload in the library's buffers.
    const rss = Math.max(
      ...Object.values(m.networks).flatMap((network) => [network.action.rssSave ?? 0, network.action.rssLoad ?? 0]),
    );
    const saveF = any.action.save / m.floor.save;
    parts.push(
      `bytes ${bytes.toFixed(2)}× zip (≤ 0.85: ${ok(bytes <= 0.85)})`,
      `peak RSS ${mib(rss)} (≤ 200 MB: ${ok(rss <= 200e6)})`,
      `save ${saveF.toFixed(2)}× the floor's save`,
    );
    const saveTarget = SAVE_TARGETS[name];
    if (saveTarget !== undefined) {
      // The whole save step, as a user waits for it: the process's wall time, with its upload and the library's
      // finalizing, against `docker save` alone.
      for (const [network, { action: a }] of Object.entries(m.networks)) {
        const step = a.phases?.['save process'];
        if (step === undefined) continue;
        const ratio = step / m.floor.save;
        parts.push(
          `${network} save step ${sec(step)} s = ${ratio.toFixed(2)}× the floor's save (≤ ${saveTarget}: ${ok(ratio <= saveTarget)})`,
        );
      }
    }
    lines.push(`- ${name}: ${parts.join(', ')}`);
  }
  return lines;
}

interface CaseResult {
  name: string;
  image: string;
  /** The engine the case ran on. */
  engine: string;
  tarBytes: number;
  runs: Array<{ networks: Record<string, Ways>; floor: Measured }>;
  median: { networks: Record<string, Ways>; floor: Measured };
}

/** One network's measurements: the baseline, this build, and with BENCH_BEFORE the other build. */
interface Ways {
  baseline: Measured;
  action: Measured;
  before?: Measured;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date();
  const stopDockerd = process.env.BENCH_DOCKERD === 'journaled' ? await journaledDockerd() : undefined;
  const engine = (await docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  const services: Record<string, ArtifactService> = {};
  for (const network of NETWORKS) {
    services[network] = await startArtifactService(network === 'github' ? { rate: GITHUB_RATE } : {});
  }
  const work = await mkdtemp(path.join(tmpdir(), 'bench-'));
  const results: CaseResult[] = [];
  const zstd: Array<Awaited<ReturnType<typeof zstdTrial>> & { case: string }> = [];
  const daemonNote =
    stopDockerd === undefined
      ? 'docker loads ran on the default daemon: /var/lib/docker here is ext4 without a journal, where creating many files ' +
        'soon after `docker rmi` deleted many is slowed by the kernel (docs/performance.md); load times of all three ways are ' +
        'inflated, small-file images most. BENCH_DOCKERD=journaled avoids it.'
      : 'docker ran as a second dockerd on a journaled ext4 loop mount (no ext4-no-journal slowdown after `docker rmi`).';
  try {
    let serial = 0;
    for (const name of CASES) {
      const make = MAKERS[name];
      if (!make) throw new Error(`unknown case ${name}; known: ${Object.keys(MAKERS).join(', ')}`);
      const tag = `bench-handoff/${name}:v1`;
      const caseEngine = CASE_ENGINES[name];
      const restoreEngine = caseEngine ? await useEngine(caseEngine) : undefined;
      try {
        const version = (await docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim();
        const engineName = caseEngine ? `Docker ${version}, ${caseEngine} image store` : `Docker ${version}`;
        console.error(`[${name}] making image on ${engineName}…`);
        const image = await make(tag);
        const tarBytes = Number((await docker(['image', 'inspect', '--format', '{{.Size}}', tag])).stdout.trim());
        console.error(`[${name}] ${image}; image size ${mib(tarBytes)}`);
        const runs: CaseResult['runs'] = [];
        for (let i = 0; i < RUNS; i++) {
          const dir = path.join(work, `${name}-${i}`);
          await mkdir(dir);
          const networks: CaseResult['runs'][number]['networks'] = {};
          for (const network of NETWORKS) {
            serial++;
            const service = services[network]!;
            const b = ACTION_ONLY ? SKIPPED : await baseline(service, tag, dir, `bench-baseline-${serial}`);
            console.error(`[${name} ${i + 1}/${RUNS} ${network}] baseline ${sec(b.total)} s`);
            const before = BEFORE && (await action(service, tag, dir, `bench-before-${serial}`, BEFORE)).measured;
            if (before) console.error(`[${name} ${i + 1}/${RUNS} ${network}] before ${sec(before.total)} s`);
            const a = (await action(service, tag, dir, `bench-action-${serial}`)).measured;
            console.error(`[${name} ${i + 1}/${RUNS} ${network}] action ${sec(a.total)} s`);
            networks[network] = { baseline: b, action: a, ...(before && { before }) };
          }
          const f = ACTION_ONLY ? SKIPPED : await floor(tag, dir);
          console.error(`[${name} ${i + 1}/${RUNS}] floor ${sec(f.total)} s`);
          await rm(dir, { recursive: true, force: true });
          runs.push({ networks, floor: f });
        }
        const med: CaseResult['median'] = { networks: {}, floor: medianOf(runs.map((r) => r.floor)) };
        for (const network of NETWORKS) {
          med.networks[network] = {
            baseline: medianOf(runs.map((r) => r.networks[network]!.baseline)),
            action: medianOf(runs.map((r) => r.networks[network]!.action)),
            ...(BEFORE && { before: medianOf(runs.map((r) => r.networks[network]!.before!)) }),
          };
        }
        results.push({ name, image, engine: engineName, tarBytes, runs, median: med });
        if (process.env.BENCH_ZSTD !== '0') {
          for (const [level, workers] of [
            [1, 0],
            [3, 0],
            [6, 0],
            [3, 2],
          ] as const) {
            zstd.push({ case: name, ...(await zstdTrial(tag, level, workers)) });
          }
        }
        await rmi(tag);
      } finally {
        restoreEngine?.();
      }
    }
  } finally {
    for (const service of Object.values(services)) await service.close();
    await rm(work, { recursive: true, force: true });
    await stopDockerd?.();
  }

  const report = [
    `Docker ${engine}, Node ${process.versions.node}, BENCH_SCALE=${SCALE}, medians of ${RUNS} run(s). Seconds are wall time.`,
    '',
    table(results),
    '',
    ...results.map((r) => `- ${r.name}: ${r.image}; docker image size ${mib(r.tarBytes)}; ${r.engine}`),
    '',
    ...(BEFORE
      ? [
          '',
          `This build against BENCH_BEFORE (${BEFORE}), medians, each run's two side by side:`,
          '',
          beforeAfter(results),
        ]
      : []),
    '',
    'Targets (action vs baseline and floor, medians):',
    ...targets(results),
    '',
    "The action's totals are the wall times of its two processes (save, load). GitHub-shaped: the artifact service " +
      `moves ${GITHUB_RATE.upload / 1e6} MB/s up and ${GITHUB_RATE.download / 1e6} MB/s down (published figures: docs/performance.md, "The benchmark").`,
    `Note: ${daemonNote}${
      results.some((r) => CASE_ENGINES[r.name])
        ? ' Cases on an engine of scripts/engines.sh (named above) ran on it instead, with its data under /opt.'
        : ''
    }`,
  ];
  if (zstd.length > 0) {
    report.push(
      '',
      '`docker save | zstd` to /dev/null (one run each; nbWorkers 0 = one zstd thread, off the main thread):',
      '',
    );
    report.push('| case | level | nbWorkers | seconds | bytes |', '|---|--:|--:|--:|--:|');
    for (const z of zstd)
      report.push(
        z.failed
          ? `| ${z.case} | ${z.level} | ${z.workers} | failed: ${z.failed} | — |`
          : `| ${z.case} | ${z.level} | ${z.workers} | ${sec(z.seconds)} | ${mib(z.bytes)} |`,
      );
  }
  console.log(report.join('\n'));

  const resultsDir = path.join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    startedAt,
    engine,
    node: process.versions.node,
    scale: SCALE,
    runs: RUNS,
    daemon: daemonNote,
    results,
    zstd,
  };
  await writeFile(file, JSON.stringify(json, null, 2) + '\n');
  console.error(`results: ${file} (${(await stat(file)).size} bytes)`);
}

await main();
