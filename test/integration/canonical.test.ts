/**
 * The engine loads exactly what was verified, on the real engine the environment names: only the references meant to
 * be loaded, nothing before every artifact verified, and tags put back when a load goes wrong.
 */
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerEngine } from '../../src/engine/engine.ts';
import { runAction, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { docker, imageId, makeImage, removeImages, uniqueRepository } from '../support/engine.ts';
import { dockerArchiveEntries, makeImage as makeFixtureImage, packTar } from '../support/fixtures.ts';

let service: ArtifactService;
let work: string;
let runId = 9100;
const repository = uniqueRepository('canonical');
const [wanted, unwanted] = [`${repository}:wanted`, `${repository}:unwanted`];
/** A name the tarball claims but the user never asked for: a base image a later step would trust. */
const planted = `${repository}-base:latest`;
const made: string[] = [];

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-canonical-'));
});

afterAll(async () => {
  await removeImages(...made, wanted, unwanted, planted);
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

function action(run: number, inputs: Record<string, string>): Promise<ActionRun> {
  return runAction(inputs, service.env(run));
}

/** Saves a tarball holding `references` (one image) as the artifact `name` of a new run, through `source`. */
async function savedTarball(references: string[], name = 'docker-image'): Promise<{ run: number; id: string }> {
  const image = await makeFixtureImage(references, { seed: `${name} ${Math.random()}` });
  const file = path.join(work, `${name}-${references.length}.tar`);
  await writeFile(file, await packTar(dockerArchiveEntries([image])));
  const run = ++runId;
  const save = await action(run, { mode: 'save', source: file, name });
  expect(save.code, save.stdout + save.stderr).toBe(0);
  return { run, id: save.outputs['image-id']! };
}

describe('only the references meant to be loaded reach the engine', () => {
  it('with `tags`, a reference the tarball records but the user did not ask for is not applied', async () => {
    const { run } = await savedTarball([wanted, unwanted, planted]);
    await removeImages(wanted, unwanted, planted);
    const result = await action(run, { mode: 'load', tags: wanted });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.tags).toBe(wanted);
    expect(await imageId(wanted)).toBeDefined();
    expect(await imageId(unwanted)).toBeUndefined();
    expect(await imageId(planted)).toBeUndefined();
  });

  it('without `tags`, every reference recorded is loaded and reported', async () => {
    const { run } = await savedTarball([wanted, unwanted]);
    await removeImages(wanted, unwanted);
    const result = await action(run, { mode: 'load' });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.outputs.tags!.split('\n').sort()).toEqual([unwanted, wanted].sort());
    expect(await imageId(unwanted)).toBe(await imageId(wanted));
  });
});

describe('with `pattern`, every artifact is verified before the first is loaded', () => {
  it('a damaged second artifact leaves the engine without the first', async () => {
    const run = ++runId;
    const first = `${repository}:first`;
    const second = `${repository}:second`;
    made.push(first, second);
    for (const [tag, name] of [
      [first, 'matrix-a'],
      [second, 'matrix-b'],
    ] as const) {
      const image = await makeFixtureImage([tag], { seed: `${name} ${Math.random()}` });
      const file = path.join(work, `${name}.tar`);
      await writeFile(file, await packTar(dockerArchiveEntries([image])));
      const save = await action(run, { mode: 'save', source: file, name, compression: 'none' });
      expect(save.code, save.stdout + save.stderr).toBe(0);
    }
    // One byte of the second artifact's stored blob flipped: its digest no longer matches the recorded one.
    const handle = await open(service.blobPath(run, 'matrix-b'), 'r+');
    const [byte] = (await handle.read(Buffer.alloc(1), 0, 1, 700)).buffer;
    await handle.write(Buffer.from([byte! ^ 0xff]), 0, 1, 700);
    await handle.close();
    await removeImages(first, second);

    const result = await action(run, { mode: 'load', pattern: 'matrix-*' });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.error).toMatch(/`matrix-b` hashes to .*nothing was loaded/);
    expect(await imageId(first)).toBeUndefined();
    expect(await imageId(second)).toBeUndefined();
  });
});

describe('tags are put back when a load goes wrong', () => {
  it('restoreTags re-points a moved tag and removes one that did not exist', async () => {
    const engine = new ContainerEngine('docker');
    const [a, b, moved, fresh] = ['a', 'b', 'moved', 'fresh'].map((suffix) => `${repository}-restore:${suffix}`);
    made.push(a!, b!, moved!, fresh!);
    const idA = await makeImage([a!, moved!]);
    await makeImage([b!]);
    const before = await engine.inspect([moved!, fresh!]);
    // A load that moved `moved` to another image and created `fresh`:
    await docker('tag', b!, moved!);
    await docker('tag', b!, fresh!);
    const said = await engine.restoreTags([moved!, fresh!], before.found);
    expect(said).toBe('The tags are put back as they were.');
    expect(await imageId(moved!)).toBe(idA);
    expect(await imageId(fresh!)).toBeUndefined();
  });
});
