/**
 * Every external command goes through src/process.ts: bounded arguments, a deadline, stderr kept for the line, and a
 * stop that kills it. No failure of a child process may escape as an uncaught exception.
 */
import { describe, expect, it } from 'vitest';
import { ContainerEngine, INSPECT_BATCH } from '../../src/engine/engine.ts';
import { UserError } from '../../src/errors.ts';
import { Stopped, job } from '../../src/job.ts';
import { CommandFailed, MAX_ARGUMENT_BYTES, runCommand, startCommand } from '../../src/process.ts';
import { withFakeCommand } from '../support/fake-command.ts';

describe('runCommand', () => {
  it('returns what a command printed, and its failure with its last stderr line', async () => {
    const ok = await runCommand('sh', ['-c', 'echo out; echo err >&2'], { deadlineMs: 10_000 });
    expect(ok).toMatchObject({ stdout: 'out\n', ok: true });
    const failed = await runCommand('sh', ['-c', 'echo first >&2; echo last >&2; exit 3'], { deadlineMs: 10_000 });
    expect(failed.ok).toBe(false);
    expect(failed.failure?.how).toBe('exited with code 3');
    expect(failed.failure?.line).toBe('last');
  });

  it('stops a command that does not finish within its deadline, and says so', async () => {
    const started = Date.now();
    await expect(runCommand('sleep', ['30'], { deadlineMs: 300 })).rejects.toThrow(
      /`sleep 30` did not finish within 0 s and was stopped/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses, without starting anything, a command line over the bound (E2BIG would escape @actions/exec)', async () => {
    const huge = ['x'.repeat(MAX_ARGUMENT_BYTES)];
    expect(() => startCommand('echo', huge)).toThrow(CommandFailed);
    await expect(runCommand('echo', huge, { deadlineMs: 1000 })).rejects.toThrow(/bytes of arguments, more than/);
  });

  it('refuses a single argument the kernel would refuse too (over 128 KiB), as a line, not a crash', async () => {
    // MAX_ARG_STRLEN: the kernel refuses any one argument over 128 KiB with E2BIG, whatever the total.
    const engine = new ContainerEngine('docker');
    await expect(engine.inspect(['a'.repeat(200 * 1024)])).rejects.toBeInstanceOf(UserError);
  });

  it('names a command that is not on PATH', async () => {
    await expect(runCommand('no-such-command-here', [], { deadlineMs: 1000 })).rejects.toMatchObject({
      notStarted: 'not-found',
    });
    const engine = new ContainerEngine('podman');
    await withFakeCommand(
      'not-podman',
      '',
      async () => {
        await expect(engine.serverVersion()).rejects.toThrow(/The `podman` command was not found on PATH/);
      },
      { replacePath: true },
    );
  });
});

describe('the engine in batches', () => {
  it(`inspects thousands of references ${INSPECT_BATCH} to a call, never one command line for all`, async () => {
    // 60,000 references of 60 bytes: 3.6 MB, past the kernel's 2 MiB for a command line and its environment.
    const references = Array.from(
      { length: 60_000 },
      (_, i) => `ghcr.io/owner/a-long-repository-name-for-the-test:t${i}`,
    );
    await withFakeCommand('docker', 'echo "$#" >> "$FAKE_LOG"; echo "[]"', async (log) => {
      const result = await new ContainerEngine('docker').inspect(references);
      expect(result.missing).toHaveLength(60_000);
      const counts = (await log()).trim().split('\n').map(Number);
      expect(counts).toHaveLength(Math.ceil(60_000 / INSPECT_BATCH));
      expect(Math.max(...counts)).toBe(2 + INSPECT_BATCH);
    });
  });
});

describe('a command is stopped when the step stops', () => {
  // Last in this file: it stops the file's one job.
  it('kills a running command, and the stop says so', async () => {
    const running = startCommand('sleep', ['30']);
    const stopped = new Promise<{ done: string[]; failed: string[] }>((resolve) => {
      job.afterStop = (_reason, undone) => resolve(undone);
    });
    const started = Date.now();
    void job.stop(new Stopped('The job was cancelled (SIGTERM) while testing'));
    await expect(running.exited).rejects.toMatchObject({ how: 'was stopped by SIGTERM' });
    expect((await stopped).done).toEqual(['stopping `sleep 30`']);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
