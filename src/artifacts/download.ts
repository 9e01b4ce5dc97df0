/**
 * An artifact downloaded for load mode: its blob read from a signed URL by download.ts (resumed where a connection
 * stopped, every attempt within the stall timeout), handed over while it arrives when it is a tarball, or extracted
 * here when it is the zip actions/upload-artifact makes. When the service does not speak the protocol download.ts was
 * written for, the library downloads it instead, whole, before anything reads it.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import { DefaultArtifactClient } from '@actions/artifact';
import unzip, { type Entry as UnzipEntry } from 'unzip-stream';
import {
  asDigest,
  describeRun,
  findByOf,
  listLatest,
  transfersInSeries,
  type ArtifactLocation,
  type DownloadedArtifact,
  type FindBy,
} from './listing.ts';
import { hashFile } from '../hash.ts';
import { shown, shownList } from '../display.ts';
import { downloadBlob } from './blob.ts';
import { ArtifactServiceFailed } from './errors.ts';
import { UserError, messageOf } from '../errors.ts';
import { job } from '../job.ts';
import { formatBytes } from '../progress.ts';
import { UnknownProtocol, signedUrl } from './signed-url.ts';
import { fileProblem, freeBytes, makeDirectory } from '../files.ts';

const ZIP_MAGIC = Buffer.from('PK\x03\x04', 'latin1');
/** A zip may expand to this many times its size when extracted (a zip bomb fills the disk before any check). */
const ZIP_EXPANSION_RATIO = 200;

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
    const namedAfterFile = artifactNamedAfterFile(name, names);
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
  const removeTarget = () => rm(target, { recursive: true, force: true });
  const unregister = job.onStop('removing the partial download', removeTarget);
  const free = await freeBytes(directory);
  if (free !== undefined && artifact.size > free) {
    await removeTarget();
    throw new UserError(
      `Not enough disk space in ${shown(directory)} to download artifact ${shown(name)}: it is ${formatBytes(artifact.size)}, ` +
        `and ${formatBytes(free)} is free. Free space on the runner or set \`path\` to a larger disk.`,
    );
  }
  const file = path.join(target, name);
  const other = findBy && { owner: findBy.repositoryOwner, repository: findBy.repositoryName, token: findBy.token };
  let first: string;
  try {
    first = await signedUrl(artifact, other);
  } catch (error) {
    if (error instanceof UnknownProtocol) {
      return fromLibrary(artifact, { target, findBy, recordedDigest, unregister }).catch(async (failure: unknown) => {
        await removeTarget();
        throw failure;
      });
    }
    await removeTarget();
    throw new ArtifactServiceFailed(
      `Asking for the download address of artifact ${shown(name)} in ${describeRun(findBy)}`,
      error,
      findBy ? "Check that `github-token` may read that repository's actions (`actions: read`)." : 'Re-run the job.',
    );
  }
  let fresh = true;
  const blob = downloadBlob({
    // The address asked for above first; a new one whenever the blob store refuses it (it expired).
    url: async () => (fresh ? ((fresh = false), first) : signedUrl(artifact, other)),
    file,
    size: artifact.size,
    what: `artifact ${shown(name)}`,
  });
  const downloaded = blob.complete.catch((error: unknown) => {
    throw fileProblem(error, file, 'downloading');
  });
  downloaded.catch(() => undefined);
  try {
    await blob.reached(ZIP_MAGIC.length);
    const serial = transfersInSeries();
    if (serial) await downloaded;
    const zip = await startsWithZip(file);
    if (!zip) {
      // Handed over as it arrives: whoever reads it follows the file and trusts nothing before the digest.
      const arriving = !serial;
      unregister();
      return {
        id: artifact.id,
        name,
        file,
        size: artifact.size,
        recordedDigest,
        zip: undefined,
        arriving,
        downloaded,
        abort: blob.abort,
      };
    }
    await downloaded;
    return { ...(await unzipped(file, { name, target, recordedDigest, size: artifact.size })), id: artifact.id };
  } catch (error) {
    blob.abort();
    await downloaded.catch(() => undefined);
    await removeTarget();
    unregister();
    throw error;
  }
}

async function startsWithZip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(ZIP_MAGIC.length), 0, ZIP_MAGIC.length, 0);
    return bytesRead === ZIP_MAGIC.length && buffer.equals(ZIP_MAGIC);
  } finally {
    await handle.close();
  }
}

/**
 * The one file of a zip artifact (actions/upload-artifact's default), extracted here: the zip as downloaded is the
 * artifact, so its digest is compared with the recorded one first, and its size and digest are the artifact's.
 */
async function unzipped(
  zip: string,
  artifact: { name: string; target: string; recordedDigest: string | undefined; size: number },
): Promise<Omit<DownloadedArtifact, 'id'>> {
  const { digest } = await hashFile(zip);
  if (artifact.recordedDigest && digest !== artifact.recordedDigest) {
    throw new UserError(
      `The zip of artifact ${shown(artifact.name)} does not hash to the recorded ${artifact.recordedDigest}: it was ` +
        'corrupted or replaced. Upload it again.',
    );
  }
  const into = path.join(artifact.target, 'unzipped');
  await mkdir(into);
  const names: string[] = [];
  let extracted: string | undefined;
  const limit = Math.max(4 * 1024 ** 3, artifact.size * ZIP_EXPANSION_RATIO);
  const free = (await freeBytes(into)) ?? Infinity;
  let written = 0;
  let closed: Promise<void> | undefined;
  const entries = unzip.Parse();
  entries.on('entry', (entry: UnzipEntry) => {
    if (entry.type === 'Directory') {
      entry.autodrain();
      return;
    }
    names.push(entry.path);
    if (names.length > 1) {
      entry.autodrain();
      return;
    }
    // Its own name only when it is a plain file name: the zip's paths are its uploader's words.
    const base = path.basename(entry.path.replaceAll('\\', '/'));
    extracted = path.join(into, /^[A-Za-z0-9._-]{1,200}$/.test(base) && !/^\.+$/.test(base) ? base : 'image.tar');
    const output = createWriteStream(extracted, { flags: 'wx', mode: 0o600 });
    entry.on('data', (chunk: Buffer) => {
      written += chunk.length;
      if (written > limit) {
        entries.destroy(
          new UserError(
            `The zip of artifact ${shown(artifact.name)} expands to more than ${formatBytes(limit)}: refusing it as a ` +
              'zip bomb; upload the tarball itself.',
          ),
        );
      } else if (written > free) {
        // Stopped before the disk is full: the runner's other steps need it too.
        entries.destroy(fileProblem({ code: 'ENOSPC' }, extracted ?? into, 'extracting the zip of the artifact into'));
      }
    });
    closed = finished(output);
    closed.catch(() => undefined);
    entry.pipe(output);
  });
  try {
    await pipeline(createReadStream(zip), entries);
    // The file's writer finishes after the zip's last byte was read.
    await closed;
  } catch (error) {
    throw error instanceof UserError
      ? error
      : fileProblem(error, extracted ?? into, 'extracting the zip of the artifact into');
  }
  await rm(zip);
  if (names.length !== 1 || extracted === undefined) {
    throw new UserError(
      `Artifact ${shown(artifact.name)} holds ${names.length} files (${shownList(names.sort()) || 'nothing'}); expected ` +
        'exactly one image tarball. Upload the tarball alone, as the save mode of this action does.',
    );
  }
  return {
    name: artifact.name,
    file: extracted,
    size: (await stat(extracted)).size,
    recordedDigest: undefined,
    zip: { digest, size: artifact.size, recordedDigest: artifact.recordedDigest },
    downloaded: Promise.resolve(),
    arriving: false,
    abort: () => undefined,
  };
}

/**
 * The way back, for an artifact service that does not answer GetSignedArtifactURL as download.ts expects: the library
 * downloads the blob (raw, never extracted), and it is read once complete.
 */
async function fromLibrary(
  artifact: { id: number; name: string; size: number },
  context: { target: string; findBy: FindBy | undefined; recordedDigest: string | undefined; unregister: () => void },
): Promise<DownloadedArtifact> {
  try {
    await new DefaultArtifactClient().downloadArtifact(artifact.id, {
      path: context.target,
      skipDecompress: true,
      ...(context.findBy && { findBy: context.findBy }),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? /\b(ENOSPC|EDQUOT)\b/.exec(messageOf(error))?.[1];
    if (code === 'ENOSPC' || code === 'EDQUOT')
      throw fileProblem({ code }, path.join(context.target, artifact.name), 'downloading');
    throw new ArtifactServiceFailed(
      `Downloading artifact ${shown(artifact.name)}`,
      error,
      'Nothing was loaded; re-run the job.',
    );
  }
  const files = (await readdir(context.target, { withFileTypes: true })).filter((entry) => entry.isFile());
  if (files.length !== 1) {
    throw new UserError(`Artifact ${shown(artifact.name)} downloaded as ${files.length} files; expected one tarball.`);
  }
  const file = path.join(context.target, files[0]!.name);
  context.unregister();
  if (await startsWithZip(file)) {
    return {
      ...(await unzipped(file, { ...artifact, target: context.target, recordedDigest: context.recordedDigest })),
      id: artifact.id,
    };
  }
  return {
    id: artifact.id,
    name: artifact.name,
    file,
    size: (await stat(file)).size,
    recordedDigest: context.recordedDigest,
    zip: undefined,
    arriving: false,
    downloaded: Promise.resolve(),
    abort: () => undefined,
  };
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
