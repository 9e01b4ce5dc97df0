/**
 * A test hook outside the action: a `docker` first on PATH that runs the real one and, right after a successful
 * `docker load`, retags a reference to another image. It stands for another step (or a concurrent job on a shared
 * engine) moving a tag between the load and the action's check of what the tags name.
 */
import { access, chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

async function realDocker(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'docker');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error('no docker on PATH');
}

/** The environment for the action's step: PATH with the hook first, retagging `from` as `to` after each load. */
export async function retagAfterLoad(from: string, to: string): Promise<Record<string, string>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'handoff-retag-'));
  const hook = path.join(dir, 'docker');
  const script = `#!${process.execPath}
const { spawnSync } = require('node:child_process');
const real = ${JSON.stringify(await realDocker())};
const args = process.argv.slice(2);
const result = spawnSync(real, args, { stdio: 'inherit' });
if (args[0] === 'load' && result.status === 0) {
  const tag = spawnSync(real, ['tag', ${JSON.stringify(from)}, ${JSON.stringify(to)}], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (tag.status !== 0) process.exit(99);
}
process.exit(result.status ?? 1);
`;
  await writeFile(path.join(dir, 'package.json'), '{"type":"commonjs"}');
  await writeFile(hook, script);
  await chmod(hook, 0o755);
  return { PATH: `${dir}${path.delimiter}${process.env['PATH'] ?? ''}` };
}
