/**
 * The verify pass's tar reading, measured with the action's own reader (src/archive/tar.ts) and with node-tar's
 * Parser, which the action was specified with: both hash every entry of the same plain tars, in the page cache,
 * fed in the 1 MiB chunks the action streams in.
 *
 *   node bench/tar-readers.ts
 *
 * Two tars are built from this machine's /usr (mixed sizes, like the realistic image's files; the trixie chroot's
 * /usr holds only 524 MiB of short-named files) and timed:
 *   files   every file as its own entry (~50,000 entries): the per-entry cost of a reader;
 *   image   the same files as one layer.tar beside a manifest, the shape `docker save` writes (few, large entries).
 * Environment: BENCH_TAR_MIB (default 1024), BENCH_TAR_ROOT (default /usr), BENCH_RUNS (3).
 */
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { STREAM_CHUNK_BYTES } from '../src/constants.ts';
import { TarReader } from '../src/archive/tar.ts';

const MiB = 1024 * 1024;
const LIMIT = Number(process.env.BENCH_TAR_MIB ?? 1024) * MiB;
const ROOT = process.env.BENCH_TAR_ROOT ?? '/usr';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));

/** Regular files under `root`, in a stable order, until their sizes add up to `limit`. */
async function pickFiles(root: string, limit: number): Promise<string[]> {
  const all: Array<{ file: string; size: number }> = [];
  const walk = async (directory: string): Promise<void> => {
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) await walk(full);
      // Names that fit the ustar name field: the action refuses the prefix field, as image tarballs never need it.
      else if (entry.isFile() && Buffer.byteLength(path.relative(root, full)) < 100)
        all.push({ file: path.relative(root, full), size: (await stat(full)).size });
    }
  };
  await walk(root);
  // A stable sample across the whole tree (by a hash of each name), so the mix of sizes is the tree's own.
  const order = (file: string) => createHash('sha256').update(file).digest('hex');
  all.sort((a, b) => order(a.file).localeCompare(order(b.file)));
  const picked: string[] = [];
  let total = 0;
  for (const { file, size } of all) {
    if (total >= limit) break;
    picked.push(file);
    total += size;
  }
  return picked;
}

function gnuTar(args: string[], cwd: string): void {
  const result = spawnSync('tar', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tar ${args.join(' ')} failed: ${result.stderr}`);
}

async function hashWithTarReader(file: string): Promise<number> {
  let hash: Hash | undefined;
  let entries = 0;
  const reader = new TarReader({
    entry: () => {
      hash = createHash('sha256');
    },
    data: (chunk) => hash!.update(chunk),
    entryEnd: () => {
      hash!.digest();
      entries++;
    },
  });
  for await (const chunk of createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES }))
    reader.write(chunk as Buffer);
  reader.end();
  return entries;
}

async function hashWithNodeTar(file: string): Promise<number> {
  let entries = 0;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const hash = createHash('sha256');
      entry.on('data', (chunk: Buffer) => hash.update(chunk));
      entry.on('end', () => {
        hash.digest();
        entries++;
      });
    },
  });
  const done = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
  });
  for await (const chunk of createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES })) {
    if (!parser.write(chunk as Buffer)) await new Promise((resolve) => parser.once('drain', resolve));
  }
  parser.end();
  await done;
  return entries;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Wall time, and this process's CPU time (user + system): the machine is shared, and CPU time is what a reader
 * costs whatever else runs beside it.
 */
async function time(
  read: (file: string) => Promise<number>,
  file: string,
): Promise<{ ms: number; cpuMs: number; entries: number }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const entries = await read(file);
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, entries };
}

const work = await mkdtemp(path.join(tmpdir(), 'bench-tar-'));
try {
  const files = await pickFiles(ROOT, LIMIT);
  const list = path.join(work, 'files.txt');
  await writeFile(list, files.join('\n') + '\n');
  const filesTar = path.join(work, 'files.tar');
  // ustar, as the action's canonical archives are.
  gnuTar(['--format=ustar', '--owner=0', '--group=0', '--numeric-owner', '-cf', filesTar, '-T', list], ROOT);
  const layerDir = path.join(work, 'image');
  await rm(layerDir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', path.join(layerDir, 'layer')]);
  spawnSync('cp', [filesTar, path.join(layerDir, 'layer', 'layer.tar')]);
  await writeFile(path.join(layerDir, 'manifest.json'), '[{"Config":"config.json","Layers":["layer/layer.tar"]}]');
  await writeFile(path.join(layerDir, 'config.json'), '{"rootfs":{"type":"layers","diff_ids":[]}}');
  const imageTar = path.join(work, 'image.tar');
  gnuTar(['--format=ustar', '-cf', imageTar, 'manifest.json', 'config.json', 'layer'], layerDir);

  const readers = { TarReader: hashWithTarReader, 'node-tar Parser': hashWithNodeTar };
  console.log(`node ${process.version}, ${RUNS} runs each, medians; tars in the page cache, 1 MiB chunks`);
  for (const [label, tar] of [
    ['files', filesTar],
    ['image', imageTar],
  ] as const) {
    const bytes = (await stat(tar)).size;
    await hashWithTarReader(tar); // warms the page cache
    const times: Record<string, { wall: number[]; cpu: number[] }> = {};
    const counts: Record<string, number> = {};
    for (let run = 0; run < RUNS; run++) {
      // Alternated, so that neither reader always runs on a warmer machine.
      for (const [name, read] of Object.entries(readers)) {
        const { ms, cpuMs, entries } = await time(read, tar);
        times[name] ??= { wall: [], cpu: [] };
        times[name].wall.push(ms);
        times[name].cpu.push(cpuMs);
        counts[name] = entries;
      }
    }
    const line = (name: string) => {
      const { wall, cpu } = times[name]!;
      const seconds = (values: number[]) => values.map((value) => (value / 1000).toFixed(2)).join(' ');
      return (
        `  ${name.padEnd(16)} CPU ${(median(cpu) / 1000).toFixed(2)} s, wall ${(median(wall) / 1000).toFixed(2)} s ` +
        `(${(bytes / MiB / (median(wall) / 1000)).toFixed(0)} MiB/s)  runs: CPU ${seconds(cpu)}, wall ${seconds(wall)}`
      );
    };
    const ratio = (kind: 'wall' | 'cpu') =>
      (median(times['node-tar Parser']![kind]) / median(times['TarReader']![kind])).toFixed(2);
    console.log(
      `${label}: ${(bytes / MiB).toFixed(0)} MiB, entries seen: ` +
        `${Object.entries(counts)
          .map(([name, n]) => `${name} ${n}`)
          .join(', ')}\n${line('TarReader')}\n${line('node-tar Parser')}\n` +
        `  node-tar / TarReader: CPU ${ratio('cpu')}×, wall ${ratio('wall')}×`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
