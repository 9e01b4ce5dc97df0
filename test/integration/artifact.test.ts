/**
 * src/artifact.ts against the real @actions/artifact library, over real HTTP, with the local artifact service
 * standing in for GitHub.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { REPOSITORY, startArtifactService, type ArtifactService } from '../support/artifact-service.ts';
import { withTmpfs } from '../support/mounts.ts';

type ArtifactModule = typeof import('../../src/artifacts/index.ts');
type LibraryModule = typeof import('@actions/artifact');

const MiB = 1024 * 1024;
const savedEnv = { ...process.env };
let service: ArtifactService;
let artifact: ArtifactModule;
let library: LibraryModule;
let work: string;

/** Makes this process a job of `runId`: the library reads its environment at every call. */
function actAsJobOf(runId: number): void {
  Object.assign(process.env, service.env(runId));
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function randomFile(name: string, size: number): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, randomBytes(size));
  return file;
}

async function freshDirectory(): Promise<string> {
  return mkdtemp(path.join(work, 'download-'));
}

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'artifact-test-'));
  actAsJobOf(1);
  // Only now, and never statically: @actions/github fixes its API URL (the service's random port) when first imported.
  artifact = await import('../../src/artifacts/index.ts');
  library = await import('@actions/artifact');
});

afterAll(async () => {
  process.env = savedEnv;
  await service?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a download cut short', () => {
  it('resumes a 1 GiB artifact cut at 60% where it stopped: the first 60% is not downloaded again', async () => {
    actAsJobOf(31);
    const size = 1024 * MiB;
    const file = path.join(work, 'big.bin');
    const handle = await open(file, 'w');
    const piece = randomBytes(16 * MiB);
    for (let at = 0; at < size; at += piece.length) await handle.write(piece, 0, piece.length, at);
    await handle.close();
    const digest = await sha256(file);
    await artifact.uploadFile(file, 'big', { overwrite: false, digest });
    await rm(file);
    service.inject({ target: 'blob-get', kind: 'close-early', after: 0.6 });

    const downloaded = await artifact.downloadFile('big', await freshDirectory(), {});
    await downloaded.downloaded;
    expect(await sha256(downloaded.file)).toBe(digest);
    // 60% once, then the remaining 40% from where it stopped: the service's own byte count.
    const served = service.bytesServed(31, 'big');
    expect(served).toBeGreaterThanOrEqual(size);
    expect(served).toBeLessThan(size * 1.05);
    expect(service.requests().filter((request) => /^GET \/_blob\/.* range=bytes=\d+-$/.test(request))).toHaveLength(1);
    await rm(path.dirname(downloaded.file), { recursive: true, force: true });
  }, 180_000);
});

describe('uploadFile and downloadFile', () => {
  it('round-trips a multi-block file raw, with the digest the service records', async () => {
    actAsJobOf(1);
    // Over two 8 MiB blocks and not a multiple of them, so stitching order and the short last block both count.
    const file = await randomFile('image.tar.zst', 17 * MiB + 12345);
    const digest = await sha256(file);

    const uploaded = await artifact.uploadFile(file, 'round-trip', { overwrite: false, retentionDays: 3 });
    expect(uploaded).toMatchObject({ name: 'round-trip', size: 17 * MiB + 12345, digest });
    expect(service.artifacts(1)).toContainEqual({ id: uploaded.id, name: 'round-trip', size: uploaded.size, digest });
    expect(service.requests().filter((request) => request.endsWith('?comp=block')).length).toBeGreaterThanOrEqual(3);
    // Raw, not zipped: the stored blob is the file itself.
    expect(await sha256(service.blobPath(1, 'round-trip'))).toBe(digest);

    const downloaded = await artifact.downloadFile('round-trip', await freshDirectory(), {});

    await downloaded.downloaded;
    expect(downloaded).toMatchObject({
      id: uploaded.id,
      name: 'round-trip',
      size: uploaded.size,
      recordedDigest: digest,
    });
    expect(path.basename(downloaded.file)).toBe('round-trip');
    expect(await sha256(downloaded.file)).toBe(digest);
  });

  it('leaves the source file in place and no staging directory behind', async () => {
    actAsJobOf(1);
    const dir = await mkdtemp(path.join(work, 'source-'));
    const file = path.join(dir, 'image.tar.gz');
    await writeFile(file, randomBytes(4096));

    await artifact.uploadFile(file, 'staging-check', { overwrite: false });
    expect(await readdir(dir)).toEqual(['image.tar.gz']);
  });

  it('refuses a second artifact of the same name in a run, fast and with the fix', async () => {
    actAsJobOf(1);
    const file = await randomFile('dup.tar', 1000);
    await artifact.uploadFile(file, 'duplicate', { overwrite: false });

    const started = Date.now();
    const failure = artifact.uploadFile(file, 'duplicate', { overwrite: false });
    await expect(failure).rejects.toBeInstanceOf(UserError);
    await expect(failure).rejects.toThrow(
      /^An artifact named `duplicate` already exists in this run\. Set a distinct `name`.*`overwrite: true`/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(service.artifacts(1).filter((a) => a.name === 'duplicate')).toHaveLength(1);
  });

  it('replaces an artifact with overwrite', async () => {
    actAsJobOf(1);
    await artifact.uploadFile(await randomFile('first.tar', 2000), 'replaced', { overwrite: false });
    const second = await randomFile('second.tar', 3000);

    const uploaded = await artifact.uploadFile(second, 'replaced', { overwrite: true });
    expect(service.artifacts(1).filter((a) => a.name === 'replaced')).toEqual([
      { id: uploaded.id, name: 'replaced', size: 3000, digest: await sha256(second) },
    ]);
    const downloaded = await artifact.downloadFile('replaced', await freshDirectory(), {});
    await downloaded.downloaded;
    expect(await readFile(downloaded.file)).toEqual(await readFile(second));
  });

  it('deletes an artifact whose bytes are not the tarball that was written, and says so', async () => {
    actAsJobOf(1);
    // The tarball as verified, then changed on disk before the library read it.
    const file = await randomFile('changed.tar.zst', 5000);
    const written = await sha256(file);
    await writeFile(file, randomBytes(5000));
    const uploadedDigest = await sha256(file);

    const failure = artifact.uploadFile(file, 'changed', { overwrite: false, digest: written });
    await expect(failure).rejects.toBeInstanceOf(UserError);
    await expect(failure).rejects.toThrow(
      `The artifact service recorded ${uploadedDigest} for \`changed\`, but the tarball written was ${written}: ` +
        `the file changed during upload, and was deleted. The tarball is still at \`${file}\`; run the job again.`,
    );
    expect(service.artifacts(1).filter((a) => a.name === 'changed')).toEqual([]);
    expect(await sha256(file)).toBe(uploadedDigest);

    // The same upload with the digest it has is kept.
    const kept = await artifact.uploadFile(file, 'changed', { overwrite: false, digest: uploadedDigest });
    expect(service.artifacts(1)).toContainEqual({ id: kept.id, name: 'changed', size: 5000, digest: uploadedDigest });
  });

  it('overwrite uploads when there is nothing to replace', async () => {
    actAsJobOf(1);
    const uploaded = await artifact.uploadFile(await randomFile('new.tar', 100), 'first-time', { overwrite: true });
    expect(service.artifacts(1).map((a) => a.id)).toContain(uploaded.id);
  });

  it("downloads another run's artifact through the REST API with a token", async () => {
    actAsJobOf(7);
    const file = await randomFile('other-run.tar.zst', 9 * MiB);
    const uploaded = await artifact.uploadFile(file, 'from-run-7', { overwrite: false });

    actAsJobOf(8);
    expect(await artifact.listArtifactNames({})).not.toContain('from-run-7');
    const location = { runId: 7, repository: REPOSITORY, token: 'ghs_local' };
    expect(await artifact.listArtifactNames(location)).toContain('from-run-7');

    const before = service.requests().length;
    const downloaded = await artifact.downloadFile('from-run-7', await freshDirectory(), location);
    await downloaded.downloaded;
    expect(downloaded.recordedDigest).toBe(uploaded.digest);
    expect(await sha256(downloaded.file)).toBe(uploaded.digest);
    expect(service.requests().slice(before)).toEqual([
      `GET /repos/${REPOSITORY}/actions/runs/7/artifacts`,
      `GET /repos/${REPOSITORY}/actions/artifacts/${uploaded.id}/zip`,
      `GET /_blob/run-7/${path.basename(service.blobPath(7, 'from-run-7'))}`,
    ]);
  });

  it('names the artifacts that do exist when the one asked for does not', async () => {
    actAsJobOf(11);
    await artifact.uploadFile(await randomFile('a.tar', 10), 'docker-image-api', { overwrite: false });
    await artifact.uploadFile(await randomFile('b.tar', 10), 'docker-image-web', { overwrite: false });

    await expect(artifact.downloadFile('docker-image', await freshDirectory(), {})).rejects.toThrow(
      'No artifact named `docker-image` in this run; it has `docker-image-api`, `docker-image-web`.',
    );
    actAsJobOf(12);
    await expect(
      artifact.downloadFile('docker-image', await freshDirectory(), { runId: 11, token: 'ghs_local' }),
    ).rejects.toThrow(`No artifact named \`docker-image\` in run 11 of ${REPOSITORY}; it has \`docker-image-api\``);
    await expect(artifact.downloadFile('docker-image', await freshDirectory(), {})).rejects.toThrow(
      'No artifact named `docker-image` in this run; it has no artifacts.',
    );
  });

  it('fails in one line, fast, for a repository the API does not know', async () => {
    actAsJobOf(1);
    const failure = artifact.listArtifactNames({ runId: 1, repository: 'someone/else', token: 'ghs_local' });
    await expect(failure).rejects.toBeInstanceOf(UserError);
    await expect(failure).rejects.toThrow(/^Listing the artifacts of run 1 of someone\/else failed: Not Found[^\n]*$/);
  });

  it('hands back a corrupted download for the caller to catch by its digest', async () => {
    actAsJobOf(1);
    const file = await randomFile('corrupt.tar.zst', 2 * MiB);
    const uploaded = await artifact.uploadFile(file, 'corrupted', { overwrite: false });
    const blob = await open(service.blobPath(1, 'corrupted'), 'r+');
    await blob.write(Buffer.from('not the bytes that were uploaded'), 0, undefined, MiB);
    await blob.close();

    const downloaded = await artifact.downloadFile('corrupted', await freshDirectory(), {});

    await downloaded.downloaded;
    expect(downloaded.recordedDigest).toBe(uploaded.digest);
    expect(await sha256(downloaded.file)).not.toBe(downloaded.recordedDigest);
  });
});

describe('zip artifacts from actions/upload-artifact', () => {
  // The library's default upload is what actions/upload-artifact does: a zip of the files. Level 0 stores them,
  // so a test can change a file's bytes inside the zip without breaking its structure.
  async function uploadZip(name: string, files: string[]): Promise<void> {
    await new library.DefaultArtifactClient().uploadArtifact(name, files, work, { compressionLevel: 0 });
  }

  it('uses the one file a zip artifact holds, having checked the zip against its recorded digest', async () => {
    actAsJobOf(21);
    const file = await randomFile('zipped.tar', 300_000);
    await uploadZip('zipped', [file]);
    const blobGets = () => service.requests().filter((request) => request.startsWith('GET /_blob/')).length;
    const before = blobGets();

    const downloaded = await artifact.downloadFile('zipped', await freshDirectory(), {});

    await downloaded.downloaded;
    expect(path.basename(downloaded.file)).toBe('zipped.tar');
    expect(await sha256(downloaded.file)).toBe(await sha256(file));
    // The recorded digest is the zip's: handing it on would make the caller's check of the file fail.
    expect(downloaded.recordedDigest).toBeUndefined();
    // Downloaded once, and extracted from the file that was hashed: nothing was read twice.
    expect(blobGets() - before).toBe(1);
  });

  it('refuses a zip artifact whose bytes changed since upload', async () => {
    actAsJobOf(21);
    await uploadZip('zipped-corrupt', [await randomFile('inner.tar', 300_000)]);
    const blob = await open(service.blobPath(21, 'zipped-corrupt'), 'r+');
    await blob.write(Buffer.from('changed'), 0, undefined, 150_000);
    await blob.close();

    await expect(artifact.downloadFile('zipped-corrupt', await freshDirectory(), {})).rejects.toThrow(
      /^The zip of artifact `zipped-corrupt` does not hash to the recorded sha256:[0-9a-f]{64}: it was corrupted/,
    );
  });

  it('a disk that holds the zip but not its file fails as a full disk, leaving nothing', async (context) => {
    actAsJobOf(21);
    await uploadZip('zipped-big', [await randomFile('big-inner.tar', 700_000)]);
    await withTmpfs('size=1m', context, async (mountPoint) => {
      const error = await artifact.downloadFile('zipped-big', mountPoint, {}).then(
        () => undefined,
        (failure: unknown) => failure as Error,
      );
      expect(error).toBeInstanceOf(UserError);
      expect(error?.message).toMatch(/disk space/);
      expect(error?.message).toContain(mountPoint);
      expect(error?.message).toMatch(/set `path` to a larger disk/);
      expect(await readdir(mountPoint)).toEqual([]);
    });
  });

  it('refuses a zip artifact of several files', async () => {
    actAsJobOf(21);
    await uploadZip('several', [await randomFile('one.tar', 10), await randomFile('two.tar', 10)]);

    await expect(artifact.downloadFile('several', await freshDirectory(), {})).rejects.toThrow(
      'Artifact `several` holds 2 files (`one.tar`, `two.tar`); expected exactly one image tarball.',
    );
  });

  it("names at most ten of a zip artifact's files, each escaped: the names are its uploader's", async () => {
    actAsJobOf(22);
    const names = Array.from({ length: 25 }, (_, n) => `##[set-output name=digest;]${String(n).padStart(2, '0')}.tar`);
    await mkdir(path.join(work, 'many'));
    await uploadZip('many', await Promise.all(names.map((name) => randomFile(path.join('many', name), 1))));

    const error = await artifact.downloadFile('many', await freshDirectory(), {}).then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error?.message).toMatch(
      /^Artifact `many` holds 25 files \(`many\/##<U\+005B>set-output name=digest;\]00\.tar`, .*`many\/##<U\+005B>set-output name=digest;\]09\.tar` … and 15 more\); expected exactly one image tarball\./,
    );
    expect(error?.message).not.toContain('##[');
  });
});
