/**
 * `retention-days` from 1 to 400, bounded by the repository's own setting: the bundled action saves a tarball (`source`,
 * no engine needed) through the real @actions/artifact library, and the local artifact service records the expiry
 * the library asked for. The runner gives the library the repository's setting as GITHUB_RETENTION_DAYS.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, uniqueName, type ActionRun } from '../support/action.ts';
import { startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { dockerArchiveEntries, makeImage, packTar } from '../support/fixtures.ts';

const NO_ENGINE = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
const DAY_MS = 24 * 60 * 60 * 1000;

let service: ArtifactService;
let work: string;
let tarball: string;
let nextRun = 8100;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'handoff-retention-'));
  tarball = path.join(work, 'image.tar');
  await writeFile(tarball, await packTar(dockerArchiveEntries([await makeImage(['retention/app:1'])])));
});

afterAll(async () => {
  await service?.close();
  await rm(work, { recursive: true, force: true });
});

/** Saves the tarball as artifact `name` of a fresh run, with `retention-days` and the repository's setting. */
async function save(
  name: string,
  days: string,
  setting: string | undefined,
): Promise<{ run: number; step: ActionRun }> {
  const run = ++nextRun;
  const env = {
    ...service.env(run),
    ...NO_ENGINE,
    ...(setting === undefined ? {} : { GITHUB_RETENTION_DAYS: setting }),
  };
  const step = await runAction({ source: tarball, name, 'retention-days': days }, env);
  return { run, step };
}

/** Days from now to the expiry the service recorded for the artifact, to the nearest day. */
function daysKept(run: number, name: string): number {
  const expires = service.expiresAt(run, name);
  expect(expires, `no expiry recorded for ${name}`).toBeDefined();
  return Math.round((Date.parse(expires!) - Date.now()) / DAY_MS);
}

describe('retention-days', () => {
  it.each([
    ['400 where the repository keeps 400 (a private repository at its most)', '400', '400', 400],
    ['91, past the 90 it allowed before, where the repository keeps 180', '91', '180', 91],
    ['1', '1', '90', 1],
  ])('%s: kept that long', async (_case, days, setting, kept) => {
    const name = uniqueName('kept');
    const { run, step } = await save(name, days, setting);
    expect(step.code, step.stdout + step.stderr).toBe(0);
    expect(daysKept(run, name)).toBe(kept);
    expect(step.stdout).not.toMatch(/::warning::Retention days/);
  });

  it("above the repository's setting: kept for the setting, with the library's warning", async () => {
    const name = uniqueName('capped');
    const { run, step } = await save(name, '400', '90');
    expect(step.code, step.stdout + step.stderr).toBe(0);
    expect(daysKept(run, name)).toBe(90);
    expect(step.stdout).toMatch(
      /^::warning::Retention days cannot be greater than the maximum allowed retention set within the repository\. Using 90 instead\.$/m,
    );
  });

  it('refuses 401 in one line, before anything is uploaded', async () => {
    const name = uniqueName('refused');
    const { run, step } = await save(name, '401', '400');
    expect(step.code).toBe(1);
    expect(step.error).toBe('Input `retention-days` must be a whole number from 1 to 400, found `401`.');
    expect(service.artifacts(run)).toEqual([]);
  });
});
