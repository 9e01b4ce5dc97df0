/** A command of the test's own on PATH, for what a real one cannot be made to do (print 60,000 tags, die mid-load). */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * Runs `test` with a shell script `script` on PATH as `name` (first on PATH, or, with `replacePath`, alone on it:
 * no other command is found). FAKE_LOG names a file the script may append to; `log` reads it.
 */
export async function withFakeCommand<T>(
  name: string,
  script: string,
  test: (log: () => Promise<string>) => Promise<T>,
  options: { replacePath?: boolean } = {},
): Promise<T> {
  const directory = await mkdtemp(path.join(tmpdir(), 'handoff-fake-'));
  const logFile = path.join(directory, 'log');
  await writeFile(logFile, '');
  await writeFile(path.join(directory, name), `#!/bin/sh\n${script}\n`);
  await chmod(path.join(directory, name), 0o755);
  const saved = { PATH: process.env.PATH, FAKE_LOG: process.env.FAKE_LOG };
  process.env.PATH = options.replacePath ? directory : `${directory}:${process.env.PATH}`;
  process.env.FAKE_LOG = logFile;
  try {
    return await test(() => readFile(logFile, 'utf8'));
  } finally {
    process.env.PATH = saved.PATH;
    if (saved.FAKE_LOG === undefined) delete process.env.FAKE_LOG;
    else process.env.FAKE_LOG = saved.FAKE_LOG;
    await rm(directory, { recursive: true, force: true });
  }
}
