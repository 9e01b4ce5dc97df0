/**
 * The upload of one save: started once the tags are known to exist and run alongside the save, fed the bytes as they
 * are written, finalized only after the last check has passed and ended without being finalized when one fails; or,
 * where it cannot stream, made once the tarball is written.
 */
import * as core from '@actions/core';
import { tmpdir } from 'node:os';
import type { Inputs } from '../action/inputs.ts';
import type { WrittenTarball } from '../archive/tarball.ts';
import { transfersInSeries } from '../artifacts/listing.ts';
import { startUpload, uploadFile, type StreamedUpload, type UploadedArtifact } from '../artifacts/index.ts';
import { shown } from '../display.ts';
import { job } from '../job.ts';
import { PhaseTimer, formatBytes, formatSeconds } from '../progress.ts';

export class UploadSession {
  readonly #inputs: Inputs;
  #streamed: StreamedUpload | undefined;
  #started = 0;
  #unregister: () => void = () => undefined;

  constructor(inputs: Inputs) {
    this.#inputs = inputs;
  }

  get #options() {
    return { retentionDays: this.#inputs.retentionDays, overwrite: this.#inputs.overwrite };
  }

  /**
   * Starts the upload that follows the tarball as it is written, and returns what tells it the file to follow;
   * undefined when it does not stream (upload: false, or it is made after the save).
   */
  async begin(firstByteMs = job.stallMs): Promise<((partial: string) => void) | undefined> {
    if (!this.#inputs.upload || transfersInSeries()) return undefined;
    this.#started = Date.now();
    // The runner's temporary directory, private to the job, holds the upload's staging directory.
    const staging = process.env.RUNNER_TEMP || tmpdir();
    const upload = await startUpload(this.#inputs.name, staging, { ...this.#options, firstByteMs });
    this.#streamed = upload;
    if (!upload) return undefined;
    this.#unregister = job.onStop('ending the upload without finalizing it', () => upload.abandon());
    return (partial) => upload.follow(partial);
  }

  /** The save failed: the upload under way ends without leaving anything in the run. */
  async abandon(): Promise<void> {
    await this.#streamed?.abandon();
    this.#unregister();
  }

  /** Ends the upload with the tarball written and verified, or uploads it now; undefined with `upload: false`. */
  async finish(tarball: WrittenTarball, timer: PhaseTimer): Promise<UploadedArtifact | undefined> {
    const { name } = this.#inputs;
    if (!this.#inputs.upload) {
      core.info(`upload is false: the tarball stays at ${shown(tarball.file)} for you to upload.`);
      return undefined;
    }
    const upload = this.#streamed;
    const artifact = await core.group(`Upload artifact ${name}`, async () => {
      if (!upload) {
        return timer.time(
          'upload',
          () => uploadFile(tarball.file, name, { ...this.#options, digest: tarball.digest }),
          (up) => up.size,
        );
      }
      // The phase is what the upload adds after the save; the log also says how long it ran in all.
      const ended = Date.now();
      const uploaded = await upload.finish(tarball).finally(this.#unregister);
      timer.record('upload, after the save', ended, uploaded.size);
      core.info(
        `The upload ran alongside the save: ${formatSeconds(Date.now() - this.#started)} in all, ` +
          `${formatSeconds(Date.now() - ended)} after the save ended.`,
      );
      return uploaded;
    });
    core.info(
      `Uploaded artifact ${artifact.name} (id ${artifact.id}, ${formatBytes(artifact.size)}, ${artifact.digest})`,
    );
    return artifact;
  }
}
