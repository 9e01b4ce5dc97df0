/** Small tmpfs mounts for the tests of read-only and full file systems; they need root, and skip without it. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Runs `body` with a tmpfs mounted with `options` (`ro,size=1m`, `size=64k`), then unmounts and removes it. */
export async function withTmpfs(
  options: string,
  context: { skip: (note: string) => void },
  body: (mountPoint: string) => Promise<void>,
): Promise<void> {
  const mountPoint = path.join(tmpdir(), `handoff-mount-${randomBytes(4).toString('hex')}`);
  await mkdir(mountPoint);
  try {
    await exec('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mountPoint]);
  } catch {
    await rm(mountPoint, { recursive: true });
    context.skip('mounting a tmpfs needs root');
    return;
  }
  try {
    await body(mountPoint);
  } finally {
    await exec('umount', [mountPoint]);
    await rm(mountPoint, { recursive: true });
  }
}
