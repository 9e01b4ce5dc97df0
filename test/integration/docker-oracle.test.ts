/**
 * The differential oracle's sample against docker itself: archives of several header shapes that the action's reader
 * accepts are handed to `docker load` raw (not through the canonical archive), and the engine must end up with exactly
 * the references the action read from them, each naming the image the action verified.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectArchive } from '../../src/archive/inspector.ts';
import type { ArchiveReport } from '../../src/archive/model.ts';
import { ContainerEngine } from '../../src/engine/engine.ts';
import { isSameImage } from '../../src/images.ts';
import { removeImages, uniqueRepository } from '../support/engine.ts';
import {
  dockerArchiveEntries,
  makeImage,
  ociLayoutEntries,
  packTar,
  unpackTar,
  type FixtureImage,
  type RawEntry,
} from '../support/fixtures.ts';

const run = promisify(execFile);
const repository = uniqueRepository('oracle');
const references: string[] = [];
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'handoff-oracle-'));
});

afterAll(async () => {
  await removeImages(...references);
  await rm(work, { recursive: true, force: true });
});

async function image(tag: string, seed: string): Promise<FixtureImage> {
  const reference = `${repository}:${tag}`;
  references.push(reference);
  return makeImage([reference], { seed: `${seed} ${Math.random()}` });
}

/** The same entries written by GNU tar in `format`, from a directory holding them. */
async function gnuTar(entries: readonly RawEntry[], format: 'gnu' | 'pax' | 'ustar', name: string): Promise<Buffer> {
  const root = path.join(work, name);
  for (const [file, content] of await unpackTar(await packTar(entries))) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), content);
  }
  const out = path.join(work, `${name}.tar`);
  await run('tar', ['-C', root, `--format=${format}`, '--sort=name', '-cf', out, '.']);
  return readFile(out);
}

/** A docker-archive whose one layer sits under a path longer than a ustar name field (100 bytes). */
async function longLayerPath(fixture: FixtureImage): Promise<RawEntry[]> {
  const entries = dockerArchiveEntries([fixture]);
  const long = `${'deep/'.repeat(30)}layer.tar`;
  const layer = entries.find((entry) => entry.name.endsWith('/layer.tar'))!;
  const manifest = entries.find((entry) => entry.name === 'manifest.json')!;
  const items = JSON.parse(String(manifest.content)) as Array<{ Layers: string[] }>;
  items[0]!.Layers = items[0]!.Layers.map((one) => (one === layer.name ? long : one));
  return [
    ...entries.filter((entry) => entry !== layer && entry !== manifest),
    { name: long, content: layer.content },
    { name: 'manifest.json', content: JSON.stringify(items) },
  ];
}

/** Loads `tar` as it is and compares what the engine now has with what the action read. */
async function engineAgrees(tar: Buffer): Promise<void> {
  const report: ArchiveReport = await inspectArchive(Readable.from([tar]));
  const file = path.join(work, `load-${Math.random()}.tar`);
  await writeFile(file, tar);
  await removeImages(...report.references);
  await run('docker', ['load', '-i', file]);
  const engine = new ContainerEngine('docker');
  const kind = await engine.kind();
  const found = await engine.inspect(report.references);
  expect(found.missing, 'references the action read but docker did not load').toEqual([]);
  for (const archived of report.images) {
    for (const reference of archived.references) {
      expect(isSameImage(archived, found.found.get(reference)!, kind), reference).toBe(true);
    }
  }
}

const shapes: Array<[string, () => Promise<Buffer>]> = [
  ['a docker-archive from tar-stream', async () => packTar(dockerArchiveEntries([await image('plain', 'plain')]))],
  ...(['pax', 'gnu'] as const).map(
    (format) =>
      [
        `a docker-archive whose layer path needs a long name, by GNU tar (${format}: ${format === 'pax' ? 'a PAX path record' : 'a GNU long name'})`,
        async () => gnuTar(await longLayerPath(await image(`long-${format}`, format)), format, `long-${format}`),
      ] as [string, () => Promise<Buffer>],
  ),
  [
    'an OCI layout written by GNU tar (gnu)',
    async () => gnuTar(ociLayoutEntries([await image('gnu', 'gnu')], { docker25: true }), 'gnu', 'gnu'),
  ],
  [
    'an OCI layout written by GNU tar (pax)',
    async () => gnuTar(ociLayoutEntries([await image('pax', 'pax')], { docker25: true }), 'pax', 'pax'),
  ],
  [
    'a docker-archive written by GNU tar (ustar), entries sorted by name',
    async () => gnuTar(dockerArchiveEntries([await image('ustar', 'ustar')]), 'ustar', 'ustar'),
  ],
  [
    'an OCI layout with its index before its blobs',
    async () => packTar([...ociLayoutEntries([await image('reversed', 'reversed')], { docker25: true })].reverse()),
  ],
];

describe('docker loads what the action reads (a sample of header shapes)', () => {
  it.each(shapes)('%s', async (_shape, make) => {
    await engineAgrees(await make());
  });
});
