/**
 * The file system as a user meets it: the free space of a place, `mkdir -p` with the real reason, and every failure of
 * a place written to (full, read-only, not a directory, …) as one typed error whose line says what to do.
 */
import { statfsSync } from 'node:fs';
import { mkdir, stat, statfs, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { shown } from './display.ts';
import { UserError, messageOf } from './errors.ts';
import { formatBytes } from './progress.ts';

/** The errno codes `fileProblem` explains: problems of the place written to, never of what is written. */
const FILE_SYSTEM_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOTDIR',
  'EEXIST',
  'EISDIR',
  'ENAMETOOLONG',
  'ELOOP',
  'EIO',
]);

export function isFileSystemProblem(error: unknown): boolean {
  return FILE_SYSTEM_CODES.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/**
 * A failure of the place written to: its code, the file, what was being done (`writing`, `downloading`), and the input
 * that chose the place (`path` unless told).
 */
export class FileSystemProblem extends UserError {
  readonly code: string | undefined;
  readonly file: string;

  constructor(error: unknown, file: string, doing: string, input = 'path') {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    super(fileSystemLine(code, file, doing, { error, input }));
    this.name = 'FileSystemProblem';
    this.code = code;
    this.file = file;
  }
}

/** Turns a file-system failure into the one line a user can act on; the action's own errors pass through. */
export function fileProblem(error: unknown, file: string, doing: string, input?: string): UserError {
  return error instanceof UserError ? error : new FileSystemProblem(error, file, doing, input);
}

function fileSystemLine(
  code: string | undefined,
  file: string,
  doing: string,
  { error, input }: { error: unknown; input: string },
): string {
  const directory = path.dirname(file);
  const setting = `\`${input}\``;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT': {
      const free = freeBytesNow(directory);
      return (
        `Ran out of disk space ${doing} ${shown(file)}${free === undefined ? '' : ` (${formatBytes(free)} free there now)`}: ` +
        `free space on the runner or set ${setting} to a larger disk.`
      );
    }
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `Cannot write to ${shown(directory)} (${code}): set ${setting} to a writable directory.`;
    case 'ENOTDIR':
    case 'EEXIST':
      return `${shown(directory)} is not a directory: set ${setting} to a directory.`;
    case 'EISDIR':
      return `Cannot write ${shown(file)}: a directory of that name is in the way; set \`name\` or \`path\` so the file has a name of its own.`;
    case 'ENOENT':
      // The directory was there a moment ago (it is created first): it takes no new files, as /proc and /sys do not.
      return (
        `Cannot create files in ${shown(directory)} (ENOENT): it is not a directory files can be written to ` +
        `(a virtual file system such as /proc?) or it was removed meanwhile; set ${setting} to a writable directory.`
      );
    case 'ENAMETOOLONG':
      return `The path ${shown(file)} is too long for the file system: shorten ${input === 'path' ? '`path` or `name`' : setting}.`;
    case 'ELOOP':
      return `${shown(directory)} leads through a loop of symbolic links: set ${setting} to a real directory.`;
    case 'EIO':
      return `The disk failed ${doing} ${shown(file)} (EIO): the runner's disk is faulty; run the job again.`;
    default:
      return `Failed ${doing} ${shown(file)}: ${messageOf(error)}`;
  }
}

/** freeBytes, at once: for the line that reports a full disk. */
function freeBytesNow(directory: string): number | undefined {
  try {
    const stats = statfsSync(directory);
    return Number(stats.bavail) * Number(stats.bsize);
  } catch {
    return undefined;
  }
}

/** Bytes free to this user under `directory`, or undefined where the file system does not say. */
export async function freeBytes(directory: string): Promise<number | undefined> {
  try {
    const stats = await statfs(directory);
    return Number(stats.bavail) * Number(stats.bsize);
  } catch {
    return undefined;
  }
}

/**
 * `mkdir -p`, with the real reason on failure: Node's recursive mkdir reports ENOENT for a parent it could not
 * create on a read-only file system, so the first missing component is created alone to get EROFS/EACCES.
 */
export async function makeDirectory(directory: string): Promise<void> {
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    let current = directory;
    while (path.dirname(current) !== current) {
      try {
        await stat(path.dirname(current));
        break;
      } catch {
        current = path.dirname(current);
      }
    }
    await mkdir(current);
    throw error;
  }
}

/**
 * Writes all of `chunk` at `position` (or where the file is): a write to a regular file may take less than it is given
 * when the disk fills, and the rest then fails with the disk's own error instead of leaving a hole.
 */
export async function writeAll(
  handle: FileHandle,
  chunk: Buffer,
  options: { position?: number; wrote?: (bytes: number) => void } = {},
): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const at = options.position === undefined ? null : options.position + offset;
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset, at);
    if (bytesWritten <= 0) throw Object.assign(new Error('the file took no bytes'), { code: 'EIO', syscall: 'write' });
    offset += bytesWritten;
    options.wrote?.(bytesWritten);
  }
}
