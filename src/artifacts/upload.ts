/**
 * Upload of the tarball as a workflow artifact, through @actions/artifact. Library failures become one-line errors
 * that name the artifact. The download is download.ts; both list through listing.ts.
 *
 * @actions/github, which the library uses for another run's artifacts, reads GITHUB_API_URL once, when it is first
 * imported: in-process callers must set the environment before importing this module.
 */
import { copyFile, link, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as core from '@actions/core';
import { DefaultArtifactClient } from '@actions/artifact';
import { asDigest } from './listing.ts';
import { ArtifactServiceFailed, firstLine, isNameTaken } from './errors.ts';
import { deleteFully, exists, listed, notTheTarball, reconcile, type UploadedArtifact } from './run-artifacts.ts';

export type { UploadedArtifact } from './run-artifacts.ts';
import { Stalled, UserError } from '../errors.ts';
import { shown } from '../display.ts';
import { job, within } from '../job.ts';
import { HandOverNotTaken, OpenTimeout, upload, type StartedUpload } from './library.ts';

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
  // A stall says what did not answer, not which upload: it is wrapped like the library's failures.
  if (error instanceof UserError && !(error instanceof Stalled)) return error;
  if (isNameTaken(error)) {
    return new UserError(
      `An artifact named ${shown(name)} already exists in this run. Set a distinct \`name\` for each upload ` +
        '(for example `docker-image-${{ matrix.image }}`), or `overwrite: true` to replace it.',
    );
  }
  if (file === undefined) {
    return new ArtifactServiceFailed(
      `Uploading artifact ${shown(name)}`,
      error,
      'Nothing was saved or uploaded (it failed before the save began): re-run the job, or set `upload: false` and ' +
        'upload the tarball another way.',
    );
  }
  return new ArtifactServiceFailed(
    `Uploading artifact ${shown(name)}`,
    error,
    `Nothing was uploaded; the tarball is still at ${shown(file)}: re-run the job, or set \`upload: false\` and upload it another way.`,
  );
}

/**
 * The library reads the upload's stall timeout from the environment, at the call: the stall timeout, or longer where
 * what feeds the upload may take longer to give its first bytes (an engine exporting layers before it writes).
 */
function setLibraryStallTimeout(ms = job.stallMs): void {
  process.env.ACTIONS_ARTIFACT_UPLOAD_TIMEOUT_MS = String(Math.max(ms, job.stallMs));
}

/** How long an upload of `bytes` may take in all, at the least speed an upload is worth waiting for (1 MB/s). */
function uploadDeadline(bytes: number): number {
  return 2 * job.stallMs + Math.ceil(bytes / 1e6) * 1000;
}

/**
 * Uploads `file` as artifact `name`, raw; `overwrite` first deletes an artifact of that name in this run. With
 * `digest`, an artifact whose bytes hash to another digest (the file changed while the library read it) is deleted.
 * An upload that fails with its outcome unknown is checked against the service, and tried once more.
 */
export async function uploadFile(
  file: string,
  name: string,
  options: { retentionDays?: number; overwrite: boolean; digest?: string },
): Promise<UploadedArtifact> {
  const client = new DefaultArtifactClient();
  // Next to the file, so the hard link stays on one filesystem; mkdtemp makes it private to this user.
  const staging = await mkdtemp(path.join(path.dirname(path.resolve(file)), '.artifact-upload-'));
  const size = (await stat(file)).size;
  try {
    if (options.overwrite && (await exists(client, name))) {
      const failed = await deleteFully(client, name);
      if (failed !== undefined)
        throw new ArtifactServiceFailed(
          `Deleting the artifact ${shown(name)} to replace it (\`overwrite: true\`)`,
          failed,
          'Nothing was uploaded: delete it from the run, or give this upload another `name`.',
        );
    }
    const staged = path.join(staging, name);
    await linkOrCopy(file, staged);
    setLibraryStallTimeout();
    for (let attempt = 1; ; attempt++) {
      let result;
      try {
        result = await within('The upload', uploadDeadline(size), () =>
          client.uploadArtifact(name, [staged], staging, {
            // An already compressed tarball gains nothing from a zip around it, and loses the ability to stream it back.
            skipArchive: true,
            ...(options.retentionDays === undefined ? {} : { retentionDays: options.retentionDays }),
          }),
        );
      } catch (error) {
        if (isNameTaken(error) || job.stopped) throw error;
        const known = options.digest ? await reconcile(client, name, { digest: options.digest, size }) : undefined;
        if (known) return known;
        if (attempt >= 2) throw error;
        core.info(`Uploading ${shown(name)} failed (${firstLine(error)}); trying once more.`);
        continue;
      }
      if (result.id === undefined || result.digest === undefined) {
        throw new Error('the artifact service did not return an artifact id and digest');
      }
      const digest = asDigest(result.digest);
      if (options.digest !== undefined && digest !== options.digest) {
        throw await notTheTarball(client, name, {
          recorded: digest,
          written: { file, digest: options.digest },
          because: 'the file changed during upload',
        });
      }
      return { id: result.id, name, size: result.size ?? size, digest };
    }
  } catch (error) {
    throw uploadProblem(error, name, file);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * An upload that runs while the tarball is still being written: the library is handed the tarball file as it grows
 * (transfer.ts). The library finalizes the artifact when what it reads ends, so that ends at the tarball's end
 * only through `finish`, once the tarball is complete and verified; `abandon` is for a tarball that is not: the upload
 * is ended without being finalized, or, where the library cannot be stopped, what it finalized is deleted.
 */
export interface StreamedUpload {
  /** The tarball is being written to `file` (its partial name): send it as it grows. */
  follow(file: string): void;
  /**
   * Sends the tarball to its end and waits for the artifact, which must hold exactly it (`digest`, `size`). An upload
   * that fails there is checked against the service, then made again from the file, once written.
   */
  finish(written: { file: string; digest: string; size: number }): Promise<UploadedArtifact>;
  /** Ends the upload of a tarball that failed, leaving nothing in the run. */
  abandon(): Promise<void>;
}

/**
 * Starts uploading artifact `name` and returns once the library reads it. Undefined for `overwrite` of an artifact that
 * exists (it is only deleted once the new tarball is complete, by `uploadFile`), where `directory` takes no staging
 * directory, and where the library does not take the tarball as it is written: it is then uploaded once written.
 * Fails, before any byte is written, when the artifact cannot be created (a name already taken). `directory` holds,
 * for the upload's time, a private directory with the empty file the library is given by name.
 */
export async function startUpload(
  name: string,
  directory: string,
  options: { retentionDays?: number; overwrite: boolean; firstByteMs?: number },
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
  const cleanUp = () => rm(staging, { recursive: true, force: true });
  const placeholder = path.join(staging, name);
  let started: StartedUpload;
  try {
    await writeFile(placeholder, '', { flag: 'wx', mode: 0o600 });
    setLibraryStallTimeout(options.firstByteMs);
    started = await upload({
      name,
      placeholder,
      root: staging,
      openMs: job.stallMs,
      options: {
        skipArchive: true,
        ...(options.retentionDays === undefined ? {} : { retentionDays: options.retentionDays }),
      },
    });
  } catch (error) {
    await cleanUp();
    if (error instanceof HandOverNotTaken) {
      // The way back: what the library finalized of the empty placeholder goes, and the tarball follows once written.
      const failed = await deleteFully(client, name);
      if (failed !== undefined) {
        throw new UserError(
          `The artifact library did not take the tarball as it was written, and the empty artifact ${shown(name)} it made ` +
            `could not be deleted (${failed}): delete it from the run, then run the job again.`,
        );
      }
      core.notice(
        'The artifact library did not take the tarball as it was written: it is uploaded once written instead.',
      );
      return undefined;
    }
    if (error instanceof OpenTimeout) {
      throw uploadProblem(new Stalled(`${error.message}; nothing was created`), name, undefined);
    }
    // The library gave up before reading: nothing was created, or it failed to create it (a name already taken).
    throw uploadProblem(error, name, undefined);
  }
  const { reader, outcome: uploading } = started;

  const abandon = async (): Promise<void> => {
    const reason = new Error('the tarball was not completed');
    if (!started.stop(reason)) {
      // The library could not be stopped: it finalizes what it had, which is then deleted.
      reader.cut();
    }
    const finalized = await within('The abandoned upload', uploadDeadline(0), () => uploading).then(
      () => true,
      () => false,
    );
    if (
      finalized ||
      !(await listed(client, name).then(
        (found) => found === undefined,
        () => false,
      ))
    ) {
      const failed = await deleteFully(client, name);
      if (failed !== undefined) {
        core.warning(
          `The upload of artifact ${shown(name)} was cut short, and deleting what was uploaded failed (${failed}): ` +
            'it is an incomplete tarball; delete it from the run.',
        );
      }
    }
    await cleanUp();
  };

  const finish = async (written: { file: string; digest: string; size: number }): Promise<UploadedArtifact> => {
    reader.end(written.size);
    let result;
    try {
      result = await within('The upload', uploadDeadline(written.size), () => uploading);
    } catch (error) {
      if (isNameTaken(error)) throw uploadProblem(error, name, written.file);
      started.stop(new Error('given up on'));
      const known = await reconcile(client, name, written);
      if (known) return known;
      core.info(
        `Uploading ${shown(name)} as it was written failed (${firstLine(error)}); uploading the written tarball.`,
      );
      return uploadFile(written.file, name, { overwrite: false, digest: written.digest });
    } finally {
      await cleanUp();
    }
    const digest = result.digest === undefined ? undefined : asDigest(result.digest);
    if (result.id === undefined || digest !== written.digest) {
      throw await notTheTarball(client, name, {
        recorded: digest,
        written,
        because: 'the upload did not carry the whole tarball',
      });
    }
    return { id: result.id, name, size: result.size ?? written.size, digest };
  };

  return { follow: (file) => reader.follow(file), finish, abandon };
}
