/**
 * Upload and download of the tarball as a workflow artifact, through @actions/artifact. Library failures become
 * one-line UserErrors that name the artifact.
 *
 * @actions/github, which the library uses for another run's artifacts, reads GITHUB_API_URL once, when it is first
 * imported: in-process callers must set the environment before importing this module.
 */
import { copyFile, link, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultArtifactClient, type Artifact, type FindOptions } from '@actions/artifact';
import * as core from '@actions/core';
import { hashFile } from './archive/hash.ts';
import { currentRepository } from './context.ts';
import { UserError, messageOf } from './errors.ts';
import { formatBytes } from './progress.ts';
import { fileProblem, freeBytes, makeDirectory } from './tarball.ts';
import { shown, shownList } from './display.ts';
import { isRepository } from './inputs.ts';
import { upload, type StartedUpload } from './transfer.ts';

export interface UploadedArtifact {
  id: number;
  name: string;
  size: number;
  /** `sha256:<hex>` of the bytes uploaded. */
  digest: string;
}

export interface ArtifactLocation {
  /** Another workflow run to read from; the current run when absent. */
  runId?: number;
  /** `owner/name` of runId's repository; the current repository when absent. */
  repository?: string;
  /** A token with `actions: read` on that repository, needed with runId. */
  token?: string;
}

export interface DownloadedArtifact {
  id: number;
  name: string;
  file: string;
  /** Bytes of `file`; for a download still under way, the artifact service's figure until it has ended. */
  size: number;
  /**
   * Settles when the library has finished writing `file`. A raw artifact is handed over while it downloads, so that
   * it is verified as it arrives: readers follow the file as it grows (tarball.ts) and end only after this resolves.
   */
  downloaded: Promise<void>;
  /** Whether `file` was handed over before its download ended (then `downloaded` says when it has). */
  arriving: boolean;
  /**
   * `sha256:<hex>` the artifact service recorded at upload, which `file` must hash to. Undefined when the service
   * has none, and for a zip artifact: its digest is the zip's, which downloadFile checks itself.
   */
  recordedDigest: string | undefined;
  /**
   * A zip artifact (actions/upload-artifact's default), whose one file `file` is: the zip as downloaded is the
   * artifact, so its digest (checked here against the recorded one) and size are the artifact's.
   */
  zip: { digest: string; size: number; recordedDigest: string | undefined } | undefined;
}

type FindBy = NonNullable<FindOptions['findBy']>;

const ZIP_MAGIC = Buffer.from('PK\x03\x04', 'latin1');

/** The library's errors can span lines (advice, links); the action prints one line per failure. */
function firstLine(error: unknown): string {
  // Without its own final period: the messages here go on after it.
  return (messageOf(error).split('\n')[0]?.trim() ?? '').replace(/\.$/, '');
}

/** The Results service records the hash the library sends (`sha256:<hex>`); the upload result is bare hex. */
function asDigest(hash: string): string {
  return hash.startsWith('sha256:') ? hash : `sha256:${hash}`;
}

/** The library names a raw (skipArchive) artifact after the file, so the file is given the artifact's name. */
async function linkOrCopy(source: string, destination: string): Promise<void> {
  try {
    await link(source, destination);
  } catch {
    await copyFile(source, destination);
  }
}

/**
 * The one line for an upload the library could not make. `file` is the tarball written, or undefined when the upload
 * failed before the save began.
 */
function uploadProblem(error: unknown, name: string, file: string | undefined): UserError {
  if (error instanceof UserError) return error;
  if (/\(409\)/.test(messageOf(error))) {
    return new UserError(
      `An artifact named ${shown(name)} already exists in this run. Set a distinct \`name\` for each upload ` +
        '(for example `docker-image-${{ matrix.image }}`), or `overwrite: true` to replace it.',
    );
  }
  if (file === undefined) {
    return new UserError(
      `Uploading artifact ${shown(name)} failed before the image was saved: ${firstLine(error)}. Nothing was saved or ` +
        'uploaded: re-run the job, or set `upload: false` and upload the tarball another way.',
    );
  }
  return new UserError(
    `Uploading artifact ${shown(name)} failed: ${firstLine(error)}. Nothing was uploaded; the tarball is still at ${shown(file)}: ` +
      're-run the job, or set `upload: false` and upload it another way.',
  );
}

/** Whether this run already has an artifact of that name (listing first: deleting blindly logs a library warning). */
async function exists(client: DefaultArtifactClient, name: string): Promise<boolean> {
  const { artifacts } = await client.listArtifacts();
  return artifacts.some((artifact) => artifact.name === name);
}

/**
 * The artifact holds other bytes than the tarball written: it is deleted, and the error says so. `because` is what
 * went wrong between the two.
 */
async function notTheTarball(
  client: DefaultArtifactClient,
  name: string,
  recorded: string | undefined,
  written: { file: string; digest: string },
  because: string,
): Promise<UserError> {
  const deleted = await client.deleteArtifact(name).then(
    () => 'and was deleted',
    (error: unknown) => `and deleting it failed (${firstLine(error)}): delete it from the run`,
  );
  return new UserError(
    `The artifact service recorded ${recorded ?? 'no digest'} for ${shown(name)}, but the tarball written was ` +
      `${written.digest}: ${because}, ${deleted}. The tarball is still at ${shown(written.file)}; run the job again.`,
  );
}

/**
 * Uploads `file` as artifact `name`, raw; `overwrite` first deletes an artifact of that name in this run. With
 * `digest`, an artifact whose bytes hash to another digest (the file changed while the library read it) is deleted.
 */
export async function uploadFile(
  file: string,
  name: string,
  options: { retentionDays?: number; overwrite: boolean; digest?: string },
): Promise<UploadedArtifact> {
  const client = new DefaultArtifactClient();
  // Next to the file, so the hard link stays on one filesystem; mkdtemp makes it private to this user.
  const staging = await mkdtemp(path.join(path.dirname(path.resolve(file)), '.artifact-upload-'));
  try {
    if (options.overwrite && (await exists(client, name))) await client.deleteArtifact(name);
    const staged = path.join(staging, name);
    await linkOrCopy(file, staged);
    const result = await client.uploadArtifact(name, [staged], staging, {
      // An already compressed tarball gains nothing from a zip around it, and loses the ability to stream it back.
      skipArchive: true,
      ...(options.retentionDays === undefined ? {} : { retentionDays: options.retentionDays }),
    });
    if (result.id === undefined || result.digest === undefined) {
      throw new Error('the artifact service did not return an artifact id and digest');
    }
    const digest = asDigest(result.digest);
    if (options.digest !== undefined && digest !== options.digest) {
      throw await notTheTarball(
        client,
        name,
        digest,
        { file, digest: options.digest },
        'the file changed during upload',
      );
    }
    return { id: result.id, name, size: result.size ?? (await stat(file)).size, digest };
  } catch (error) {
    throw uploadProblem(error, name, file);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * An upload that runs while the tarball is still being written: the library is handed the tarball file as it grows
 * (transfer.ts). The library finalizes the artifact when what it reads ends, so that ends at the tarball's end
 * only through `finish`, once the tarball is complete and verified; `abandon` is for a tarball that is not, and deletes
 * what the library finalized from the bytes it had.
 */
export interface StreamedUpload {
  /** The tarball is being written to `file` (its partial name): send it as it grows. */
  follow(file: string): void;
  /** Sends the tarball to its end and waits for the artifact, which must hold exactly it (`digest`, `size`). */
  finish(written: { file: string; digest: string; size: number }): Promise<UploadedArtifact>;
  /** Ends the upload of a tarball that failed, and deletes the artifact the library made of its first bytes. */
  abandon(): Promise<void>;
}

/**
 * Starts uploading artifact `name` and returns once the library reads it. Undefined for `overwrite` of an artifact that
 * exists (it is only deleted once the new tarball is complete, by `uploadFile`), or where `directory` takes no
 * staging directory. Fails, before any byte is written, when the artifact cannot be created (a name already taken).
 * `directory` holds, for the upload's time, a private directory with the empty file the library is given by name (the
 * bytes it reads are the tarball's).
 */
export async function startUpload(
  name: string,
  directory: string,
  options: { retentionDays?: number; overwrite: boolean },
): Promise<StreamedUpload | undefined> {
  const client = new DefaultArtifactClient();
  try {
    if (options.overwrite && (await exists(client, name))) return undefined;
  } catch (error) {
    throw uploadProblem(error, name, undefined);
  }
  let staging: string;
  try {
    staging = await mkdtemp(path.join(directory, '.artifact-upload-'));
  } catch (error) {
    // RUNNER_TEMP unwritable or full: the tarball is uploaded once written, staged beside it (uploadFile).
    core.info(
      `No staging directory could be made in ${shown(directory)} (${firstLine(error)}): the tarball is uploaded once it is written.`,
    );
    return undefined;
  }
  const placeholder = path.join(staging, name);
  let started: StartedUpload;
  try {
    await writeFile(placeholder, '', { flag: 'wx', mode: 0o600 });
    started = await upload({
      name,
      placeholder,
      root: staging,
      options: {
        skipArchive: true,
        ...(options.retentionDays === undefined ? {} : { retentionDays: options.retentionDays }),
      },
    });
  } catch (error) {
    // The library gave up before reading: nothing was created, or it failed to create it (a name already taken).
    await rm(staging, { recursive: true, force: true });
    throw uploadProblem(error, name, undefined);
  }
  const { reader, outcome: uploading } = started;
  const cleanUp = () => rm(staging, { recursive: true, force: true });

  const abandon = async (): Promise<void> => {
    reader.cut();
    const finalized = await uploading.then(
      () => true,
      () => false,
    );
    if (finalized) {
      await client.deleteArtifact(name).catch((error: unknown) => {
        core.warning(
          `The upload of artifact ${shown(name)} was cut short, and deleting what was uploaded failed (${firstLine(error)}): ` +
            'it is an incomplete tarball; delete it from the run.',
        );
      });
    }
    await cleanUp();
  };

  const finish = async (written: { file: string; digest: string; size: number }): Promise<UploadedArtifact> => {
    reader.end(written.size);
    let result;
    try {
      result = await uploading;
    } catch (error) {
      throw uploadProblem(error, name, written.file);
    } finally {
      await cleanUp();
    }
    const digest = result.digest === undefined ? undefined : asDigest(result.digest);
    if (result.id === undefined || digest !== written.digest) {
      throw await notTheTarball(client, name, digest, written, 'the upload did not carry the whole tarball');
    }
    return { id: result.id, name, size: result.size ?? written.size, digest };
  };

  return { follow: (file) => reader.follow(file), finish, abandon };
}

function findByOf(location: ArtifactLocation): FindBy | undefined {
  if (location.runId === undefined) return undefined;
  const repository = location.repository ?? currentRepository() ?? '';
  const [repositoryOwner = '', repositoryName = ''] = repository.split('/');
  if (!isRepository(repository)) {
    throw new UserError(
      `Reading the artifacts of run ${location.runId} needs a repository as owner/name, found ${shown(repository)}.`,
    );
  }
  if (!location.token) {
    throw new UserError(
      `Reading the artifacts of run ${location.runId} needs a token with \`actions: read\`: set \`github-token\`.`,
    );
  }
  return { workflowRunId: location.runId, repositoryOwner, repositoryName, token: location.token };
}

function describeRun(findBy: FindBy | undefined): string {
  return findBy ? `run ${findBy.workflowRunId} of ${findBy.repositoryOwner}/${findBy.repositoryName}` : 'this run';
}

async function listLatest(findBy: FindBy | undefined): Promise<Artifact[]> {
  try {
    const { artifacts } = await new DefaultArtifactClient().listArtifacts({ latest: true, ...(findBy && { findBy }) });
    return artifacts;
  } catch (error) {
    throw new UserError(
      `Listing the artifacts of ${describeRun(findBy)} failed: ${firstLine(error)}. ` +
        (findBy
          ? "Check `run-id` and `repository`, and that `github-token` may read that repository's actions (`actions: read`)."
          : 'The artifact service did not answer: re-run the job.'),
    );
  }
}

/** Names of the artifacts of the current run, or of `location.runId`. */
export async function listArtifactNames(location: ArtifactLocation): Promise<string[]> {
  const artifacts = await listLatest(findByOf(location));
  return artifacts.map((artifact) => artifact.name).sort();
}

/** Downloads artifact `name` into a fresh subdirectory of `directory` and returns its one file. */
export async function downloadFile(
  name: string,
  directory: string,
  location: ArtifactLocation,
): Promise<DownloadedArtifact> {
  // A `path` the download cannot go to fails before any request, in the words a user can act on.
  try {
    await makeDirectory(directory);
  } catch (error) {
    throw fileProblem(error, path.join(directory, name), 'creating the directory for');
  }
  const findBy = findByOf(location);
  // Listing rather than getArtifact: a miss costs no library warning, and gives the names for the message.
  const artifacts = await listLatest(findBy);
  const artifact = artifacts.find((candidate) => candidate.name === name);
  if (!artifact) {
    const names = artifacts.map((candidate) => candidate.name).sort();
    const namedAfterFile = artifactNamedAfterFile(
      name,
      artifacts.map((candidate) => candidate.name),
    );
    throw new UserError(
      `No artifact named ${shown(name)} in ${describeRun(findBy)}; ` +
        (names.length > 0 ? `it has ${shownList(names)}` : 'it has no artifacts') +
        (namedAfterFile
          ? `: did you mean \`name: ${namedAfterFile}\`? actions/upload-artifact with \`archive: false\` names ` +
            'the artifact after its file and ignores its `name`.'
          : '.') +
        ' Use the `name` of the save step, and make this job `needs:` the job that saved it.',
    );
  }

  const recordedDigest = artifact.digest ? asDigest(artifact.digest) : undefined;
  // The directory first, so a place nothing can be written to (`/proc`) is named as such rather than as full.
  let target: string;
  try {
    target = await mkdtemp(path.join(directory, 'artifact-'));
  } catch (error) {
    throw fileProblem(error, path.join(directory, name), 'creating a directory for');
  }
  // Then the space: on a full disk the library's download stream fails in a way that takes the process down.
  const free = await freeBytes(directory);
  if (free !== undefined && artifact.size > free) {
    await rm(target, { recursive: true, force: true });
    throw new UserError(
      `Not enough disk space in ${shown(directory)} to download artifact ${shown(name)}: it is ${formatBytes(artifact.size)}, ` +
        `and ${formatBytes(free)} is free. Free space on the runner or set \`path\` to a larger disk.`,
    );
  }
  // Unextracted, so the file is the very bytes the recorded digest describes.
  const downloading = download(artifact, target, findBy, { skipDecompress: true });
  downloading.catch(() => undefined);
  try {
    const arriving = transfersInSeries() ? undefined : await arrivingFile(target, downloading);
    if (arriving !== undefined && !(await isZip(arriving))) {
      // Handed over as it downloads: whoever reads it follows the file and trusts nothing before the digest.
      const result: DownloadedArtifact = {
        id: artifact.id,
        name,
        file: arriving,
        size: artifact.size,
        recordedDigest,
        zip: undefined,
        arriving: true,
        // The file it began in, not "the one file in the directory": a reader may write there meanwhile (the plain
        // tar of `load: false`).
        downloaded: downloading.then(async () => {
          const stats = await stat(arriving).catch(() => undefined);
          if (!stats?.isFile()) throw new UserError(`Artifact ${shown(name)} was downloaded to a file that moved.`);
          result.size = stats.size;
        }),
      };
      result.downloaded.catch(() => undefined);
      return result;
    }
    await downloading;
    const raw = await singleFile(target, name);
    const size = (await stat(raw)).size;
    const downloaded = Promise.resolve();
    if (!(await isZip(raw))) {
      return { id: artifact.id, name, file: raw, size, recordedDigest, zip: undefined, downloaded, arriving: false };
    }

    // A zip, as actions/upload-artifact makes. Its digest, the artifact's, is taken on the bytes received; the
    // library only extracts as it downloads, so it downloads again, held to that same digest.
    const { digest } = await hashFile(raw);
    await rm(raw);
    if (recordedDigest && digest !== recordedDigest) {
      throw new UserError(
        `The zip of artifact ${shown(name)} does not hash to the recorded ${recordedDigest}: it was corrupted or replaced. ` +
          'Upload it again.',
      );
    }
    const { digestMismatch } = await download(artifact, target, findBy, { expectedHash: digest });
    if (digestMismatch) {
      throw new UserError(
        `The zip of artifact ${shown(name)} changed between two downloads (${digest} the first time): ` +
          'it was replaced while this step ran. Run the job again.',
      );
    }
    const file = await singleFile(target, name);
    return {
      id: artifact.id,
      name,
      file,
      size: (await stat(file)).size,
      recordedDigest: undefined,
      zip: { digest, size, recordedDigest },
      downloaded,
      arriving: false,
    };
  } catch (error) {
    await downloading.catch(() => undefined);
    await rm(target, { recursive: true, force: true });
    throw error;
  }
}

/**
 * HANDOFF_TRANSFERS=serial: upload after the save and read a download once it is complete, as before transfers
 * overlapped the CPU work. For the benchmark, which measures both ways; not an input, as overlapping is never wrong.
 */
export function transfersInSeries(): boolean {
  return process.env.HANDOFF_TRANSFERS === 'serial';
}

/** How often a download's directory is looked at for the file the library creates. */
const ARRIVAL_POLL_MS = 10;

/**
 * The file the library is downloading into `directory`, once its first bytes (enough to tell a zip) are there;
 * undefined when the download ended first, or produced anything but one regular file.
 */
async function arrivingFile(directory: string, downloading: Promise<unknown>): Promise<string | undefined> {
  let ended = false;
  downloading.then(
    () => (ended = true),
    () => (ended = true),
  );
  while (!ended) {
    const entries = await readdir(directory, { withFileTypes: true });
    if (entries.length > 1 || entries.some((entry) => !entry.isFile())) return undefined;
    const [entry] = entries;
    if (entry) {
      const file = path.join(directory, entry.name);
      const size = await stat(file).then(
        (stats) => stats.size,
        () => 0,
      );
      if (size >= ZIP_MAGIC.length) return file;
    }
    await sleep(ARRIVAL_POLL_MS);
  }
  return undefined;
}

async function download(
  artifact: Artifact,
  target: string,
  findBy: FindBy | undefined,
  options: { skipDecompress?: boolean; expectedHash?: string },
): Promise<{ digestMismatch: boolean }> {
  try {
    const result = await new DefaultArtifactClient().downloadArtifact(artifact.id, {
      path: target,
      ...options,
      ...(findBy && { findBy }),
    });
    return { digestMismatch: result.digestMismatch === true };
  } catch (error) {
    // The library reports a full disk in its message only; the code, where it is kept, says the same.
    const code = (error as NodeJS.ErrnoException).code ?? /\b(ENOSPC|EDQUOT)\b/.exec(messageOf(error))?.[1];
    if (code === 'ENOSPC' || code === 'EDQUOT')
      throw fileProblem({ code }, path.join(target, artifact.name), 'downloading');
    throw new UserError(
      `Downloading artifact ${shown(artifact.name)} failed: ${firstLine(error)}. Nothing was loaded; re-run the job.`,
    );
  }
}

/** Extensions of the files people upload images as: a raw artifact is named after its file. */
const TARBALL_FILE = /\.(?:tar|tar\.(?:gz|zst|zstd|xz|bz2)|tgz|tzst|oci|docker)$/i;

/**
 * For a `name` that is not a file name: the one artifact named after an image tarball file, when there is exactly
 * one such, which is what a raw upload of actions/upload-artifact is called.
 */
export function artifactNamedAfterFile(name: string, names: readonly string[]): string | undefined {
  if (TARBALL_FILE.test(name)) return undefined;
  const files = names.filter((candidate) => TARBALL_FILE.test(candidate));
  return files.length === 1 ? files[0] : undefined;
}

async function singleFile(directory: string, name: string): Promise<string> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
  const [file] = files;
  if (file === undefined || files.length > 1) {
    // The names are the artifact's, as its uploader chose them: shown escaped, and at most a few of them.
    const found = shownList(files.map((found) => path.relative(directory, found)).sort()) || 'nothing';
    throw new UserError(
      `Artifact ${shown(name)} holds ${files.length} files (${found}); expected exactly one image tarball. ` +
        'Upload the tarball alone, as the save mode of this action does.',
    );
  }
  return file;
}

/** Image tarballs start with a tar header or a zstd/gzip magic number, never with a zip's local file header. */
async function isZip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && buffer.equals(ZIP_MAGIC);
  } finally {
    await handle.close();
  }
}
