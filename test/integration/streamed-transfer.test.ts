/**
 * Transfers that overlap the CPU work (issue 13): the upload that reads the tarball file while it is written,
 * and the download that is verified as it arrives. Against the real @actions/artifact library over real HTTP, with
 * the local artifact service limiting throughput or failing on purpose.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { startArtifactService, type ArtifactService, type Faults, type Rate } from '../support/artifact-service.ts';
import { END, entry } from '../support/raw-tar.ts';

type ArtifactModule = typeof import('../../src/artifacts/index.ts');
type TarballModule = typeof import('../../src/archive/tarball.ts');

const MiB = 1024 * 1024;
const savedEnv = { ...process.env };
let artifact: ArtifactModule;
let tarball: TarballModule;
let work: string;
const services: ArtifactService[] = [];

/** A service of its own for each test, so faults and rates do not leak; this process becomes a job of run 1. */
async function serviceWith(options: { rate?: Rate; faults?: Faults } = {}): Promise<ArtifactService> {
  const service = await startArtifactService(options);
  services.push(service);
  Object.assign(process.env, service.env(1));
  return service;
}

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A plain tar holding `size` random bytes: what openTarball takes for an image tarball's first bytes. */
function tarOf(size: number): Buffer {
  return Buffer.concat([entry({ name: 'blob', size }, randomBytes(size)), END]);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Appends `bytes` to `file` in 1 MiB pieces, as the tarball writer does, for the upload to follow. */
async function grow(file: string, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; at += MiB) await appendFile(file, bytes.subarray(at, at + MiB));
}

/** An empty file the upload is told to follow, as writeTarball's partial file. */
async function followed(upload: { follow(file: string): void }, name: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(work, 'tarball-')), `${name}.tar.zst.partial`);
  await writeFile(file, '');
  upload.follow(file);
  return file;
}

async function staging(): Promise<string> {
  return mkdtemp(path.join(work, 'staging-'));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'streamed-test-'));
  // The first service fixes the API URL that @actions/github reads when first imported.
  await serviceWith();
  artifact = await import('../../src/artifacts/index.ts');
  tarball = await import('../../src/archive/tarball.ts');
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all(services.map((service) => service.close()));
  if (work) await rm(work, { recursive: true, force: true });
});

describe('an upload that runs while the tarball is written', () => {
  it('sends blocks before the last byte is written, and finalizes exactly the bytes written', async () => {
    const service = await serviceWith();
    const directory = await staging();
    const bytes = randomBytes(20 * MiB);
    const upload = await artifact.startUpload('streamed', directory, { overwrite: false });
    expect(upload).toBeDefined();
    // All but the last MiB, then wait for the library to have sent blocks: the upload overlaps the writing.
    const file = await followed(upload!, 'streamed');
    await grow(file, bytes.subarray(0, 19 * MiB));
    await expect
      .poll(() => service.requests().filter((request) => request.endsWith('?comp=block')).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    expect(service.artifacts(1)).toEqual([]);
    await grow(file, bytes.subarray(19 * MiB));
    const uploaded = await upload!.finish({ file, digest: digestOf(bytes), size: bytes.length });
    expect(uploaded).toMatchObject({ name: 'streamed', size: bytes.length, digest: digestOf(bytes) });
    expect(service.artifacts(1).map((served) => served.name)).toEqual(['streamed']);
    expect(digestOf(await readFile(service.blobPath(1, 'streamed')))).toBe(digestOf(bytes));
    // The upload's private staging directory is gone.
    expect(await readdir(directory)).toEqual([]);
  });

  it('leaves no artifact behind when the tarball fails after the upload began', async () => {
    const service = await serviceWith();
    const directory = await staging();
    const upload = await artifact.startUpload('abandoned', directory, { overwrite: false });
    await grow(await followed(upload!, 'abandoned'), randomBytes(9 * MiB));
    await upload!.abandon();
    expect(service.artifacts(1)).toEqual([]);
    expect(await readdir(directory)).toEqual([]);
    // The name is free again: a re-run can upload under it.
    const again = await artifact.startUpload('abandoned', directory, { overwrite: false });
    const bytes = randomBytes(MiB);
    const file = await followed(again!, 'abandoned');
    await grow(file, bytes);
    await again!.finish({ file, digest: digestOf(bytes), size: bytes.length });
    expect(service.artifacts(1).map((served) => served.name)).toEqual(['abandoned']);
  });

  it('ends an abandoned upload without finalizing anything: no consumer can ever list a partial artifact', async () => {
    const service = await serviceWith();
    const directory = await staging();
    const upload = await artifact.startUpload('never-finalized', directory, { overwrite: false });
    await grow(await followed(upload!, 'never-finalized'), randomBytes(17 * MiB));
    await expect
      .poll(() => service.requests().filter((request) => request.endsWith('?comp=block')).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    await upload!.abandon();
    // Not finalized and then deleted (a consumer could have listed it meanwhile): never finalized at all.
    expect(service.requests().filter((request) => request.endsWith('/FinalizeArtifact'))).toEqual([]);
    expect(service.artifacts(1)).toEqual([]);
    expect(await readdir(directory)).toEqual([]);
  });

  it('falls back to uploading once written when the library does not take the tarball as it is written', async () => {
    // HANDOFF_HANDOVER=off: the library reads the empty placeholder it was given, and finalizes an empty artifact.
    const service = await serviceWith();
    process.env.HANDOFF_HANDOVER = 'off';
    const notices: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      notices.push(String(chunk));
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write;
    let upload;
    try {
      upload = await artifact.startUpload('not-taken', await staging(), { overwrite: false });
    } finally {
      delete process.env.HANDOFF_HANDOVER;
      process.stdout.write = write;
    }
    expect(upload).toBeUndefined();
    // The empty artifact the library made is gone, and the one line says what happens instead.
    expect(service.artifacts(1)).toEqual([]);
    expect(notices.join('')).toMatch(
      /::notice::The artifact library did not take the tarball as it was written: it is uploaded once written instead\./,
    );
    // …which works: the tarball is uploaded after the save under the same name.
    const file = path.join(work, 'not-taken.tar');
    const bytes = randomBytes(MiB);
    await writeFile(file, bytes);
    await artifact.uploadFile(file, 'not-taken', { overwrite: false, digest: digestOf(bytes) });
    expect(service.artifacts(1).map((served) => [served.name, served.digest])).toEqual([
      ['not-taken', digestOf(bytes)],
    ]);
  });

  it('deletes an artifact whose bytes are not the tarball written, and says so', async () => {
    const service = await serviceWith();
    const upload = await artifact.startUpload('mismatch', await staging(), { overwrite: false });
    const bytes = randomBytes(MiB);
    const file = await followed(upload!, 'mismatch');
    await grow(file, bytes);
    const claimed = digestOf(Buffer.from('another tarball'));
    await expect(upload!.finish({ file, digest: claimed, size: bytes.length })).rejects.toThrow(
      /recorded sha256:[0-9a-f]{64} for `mismatch`, but the tarball written was sha256:[0-9a-f]{64}: the upload did not carry the whole tarball, and was deleted/,
    );
    expect(service.artifacts(1)).toEqual([]);
  });

  it('ends at once, and deletes what it uploaded, when the file it follows cannot be read', async () => {
    const service = await serviceWith();
    const directory = await staging();
    const upload = await artifact.startUpload('unreadable', directory, { overwrite: false });
    const missing = path.join(work, 'never-written.tar.zst.partial');
    upload!.follow(missing);
    const started = Date.now();
    await expect(
      upload!.finish({ file: missing, digest: digestOf(Buffer.from('the tarball')), size: 11 }),
    ).rejects.toThrow(/recorded sha256:[0-9a-f]{64} for `unreadable`, but the tarball written was sha256:/);
    // Not the library's 5-minute stall timer.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(service.artifacts(1)).toEqual([]);
    expect(await readdir(directory)).toEqual([]);
  }, 60_000);

  it('does not stream where no staging directory can be made, and creates nothing', async () => {
    const service = await serviceWith();
    const unwritable = path.join(work, 'not-a-directory');
    await writeFile(unwritable, '');
    expect(await artifact.startUpload('unstaged', unwritable, { overwrite: false })).toBeUndefined();
    expect(service.artifacts(1)).toEqual([]);
  });

  it('fails before any byte is written when the name is taken, leaving nothing behind', async () => {
    await serviceWith();
    const file = path.join(work, 'taken.bin');
    await writeFile(file, randomBytes(1024));
    await artifact.uploadFile(file, 'taken', { overwrite: false });
    const directory = await staging();
    const attempt = artifact.startUpload('taken', directory, { overwrite: false });
    await expect(attempt).rejects.toThrow(UserError);
    await expect(attempt).rejects.toThrow(/An artifact named `taken` already exists in this run/);
    expect(await readdir(directory)).toEqual([]);
  });

  it('says nothing was saved when the artifact cannot be created, leaving nothing behind', async () => {
    await serviceWith({ faults: { refuseCreate: true } });
    const directory = await staging();
    const attempt = artifact.startUpload('refused-create', directory, { overwrite: false });
    await expect(attempt).rejects.toThrow(UserError);
    await expect(attempt).rejects.toThrow(
      /^Uploading artifact `refused-create` failed: .*403.*Nothing was saved or uploaded \(it failed before the save began\): /,
    );
    await expect(attempt).rejects.not.toThrow(/tarball is still at/);
    expect(await readdir(directory)).toEqual([]);
  });

  it('stops taking bytes when the blob store refuses them, and reports the failure with the tarball kept', async () => {
    const service = await serviceWith({ faults: { refuseBlocksAfter: 1 } });
    const upload = await artifact.startUpload('refused', await staging(), { overwrite: false });
    const bytes = randomBytes(40 * MiB);
    // The upload fails while the file is still being written; finishing must not wait for bytes it will not send.
    const file = await followed(upload!, 'refused');
    await grow(file, bytes);
    await expect(upload!.finish({ file, digest: digestOf(bytes), size: bytes.length })).rejects.toThrow(
      /Uploading artifact `refused` failed: .*Nothing was uploaded; the tarball is still at `.*refused\.tar\.zst\.partial`/,
    );
    expect(service.artifacts(1)).toEqual([]);
  }, 60_000);

  it('does not stream an overwrite of an artifact that exists: the old one stays until the new tarball is whole', async () => {
    const service = await serviceWith();
    const file = path.join(work, 'kept.bin');
    await writeFile(file, randomBytes(1024));
    await artifact.uploadFile(file, 'kept', { overwrite: false });
    expect(await artifact.startUpload('kept', await staging(), { overwrite: true })).toBeUndefined();
    expect(service.artifacts(1).map((served) => served.name)).toEqual(['kept']);
  });
});

describe('a download verified as it arrives', () => {
  async function uploaded(name: string, bytes: Buffer): Promise<void> {
    const file = path.join(await staging(), name);
    await writeFile(file, bytes);
    await artifact.uploadFile(file, name, { overwrite: false });
  }

  async function readArriving(name: string) {
    const downloaded = await artifact.downloadFile(name, await mkdtemp(path.join(work, 'download-')), {});
    const opened = await tarball.openTarball(downloaded.file, 'The artifact', undefined, {
      complete: downloaded.downloaded,
      expectedSize: downloaded.size,
    });
    return { downloaded, read: readAll(opened.stream) };
  }

  it('is handed over before the download ends, and read to the very end the download leaves', async () => {
    // 16 MiB at 8 MB/s: two seconds of download, of which the reader sees the first bytes early.
    await serviceWith({ rate: { download: 8_000_000 } });
    const bytes = tarOf(16 * MiB);
    await uploaded('arriving', bytes);
    const { downloaded, read } = await readArriving('arriving');
    expect(downloaded.arriving).toBe(true);
    expect((await stat(downloaded.file)).size).toBeLessThan(bytes.length);
    const received = await read;
    expect(digestOf(received)).toBe(digestOf(bytes));
    await downloaded.downloaded;
    expect(downloaded.size).toBe(bytes.length);
  });

  it('ends with the file it began in, whatever else is written beside it meanwhile (the plain tar of load: false)', async () => {
    await serviceWith({ rate: { download: 8_000_000 } });
    const bytes = tarOf(8 * MiB);
    await uploaded('beside', bytes);
    const { downloaded, read } = await readArriving('beside');
    expect(downloaded.arriving).toBe(true);
    await writeFile(`${downloaded.file}.tar.partial-1`, 'a copy being written');
    expect(digestOf(await read)).toBe(digestOf(bytes));
    await downloaded.downloaded;
    expect(downloaded.size).toBe(bytes.length);
  });

  // Slow by the library's design: it notices a cut connection only after 30 s without data, and retries 5 s later.
  it('reads the same bytes when the library retries a download cut short, starting the file over', async () => {
    await serviceWith({ rate: { download: 16_000_000 }, faults: { cutDownloads: 1 } });
    const bytes = tarOf(8 * MiB);
    await uploaded('retried', bytes);
    const { downloaded, read } = await readArriving('retried');
    expect(digestOf(await read)).toBe(digestOf(bytes));
    await downloaded.downloaded;
    expect(digestOf(await readFile(downloaded.file))).toBe(digestOf(bytes));
  }, 90_000);
});
