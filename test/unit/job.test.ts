/** The step's lifetime: its bound, its stop, and the cleanups that undo work under way, newest first, bounded. */
import { describe, expect, it } from 'vitest';
import { parseContentRange } from '../../src/artifacts/blob.ts';
import { Stalled } from '../../src/errors.ts';
import { CLEANUP_MS, Job, Stopped, boundFor, within } from '../../src/job.ts';

describe('Job', () => {
  it('runs the cleanups newest first, once, and says which worked and which failed', async () => {
    const job = new Job();
    const order: string[] = [];
    job.onStop('removing the partial tarball', () => order.push('file'));
    const gone = job.onStop('never run', () => order.push('unregistered'));
    gone();
    job.onStop('stopping `docker load`', async () => {
      order.push('load');
    });
    job.onStop('putting back the tags', () => {
      throw new Error('engine gone');
    });
    let reported: unknown;
    job.afterStop = (reason, undone) => (reported = { reason: reason.message, undone });
    await job.stop(new Stopped('The job was cancelled (SIGINT) while loading'));
    await job.stop(new Stopped('a second stop changes nothing'));
    expect(order).toEqual(['load', 'file']);
    expect(reported).toEqual({
      reason: 'The job was cancelled (SIGINT) while loading',
      undone: { done: ['stopping `docker load`', 'removing the partial tarball'], failed: ['putting back the tags'] },
    });
    expect(job.signal.aborted).toBe(true);
    expect(() => job.check()).toThrow(Stopped);
  });

  it('gives the cleanups at most CLEANUP_MS together', async () => {
    const job = new Job();
    job.onStop('waiting forever', () => new Promise(() => undefined));
    const started = Date.now();
    await job.stop(new Stopped('stop'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(CLEANUP_MS - 50);
    expect(Date.now() - started).toBeLessThan(CLEANUP_MS + 1000);
  }, 10_000);

  it('stops the step at its bound, naming the bound and what the step was doing', async () => {
    const job = new Job();
    job.doing = 'download';
    const stopped = new Promise<string>((resolve) => (job.afterStop = (reason) => resolve(reason.message)));
    job.bound(100, 'the `step-timeout` input');
    expect(await stopped).toBe('The step ran past its bound of 0.0 min (the `step-timeout` input) while download');
  });

  it('bounds a step by the size it moves: ten minutes and two per GiB', () => {
    expect(boundFor(0)).toBe(10 * 60_000);
    expect(boundFor(1)).toBe(12 * 60_000);
    expect(boundFor(3 * 1024 ** 3)).toBe(16 * 60_000);
  });
});

describe('within', () => {
  it('fails a call that does not answer in time, naming it', async () => {
    await expect(within('Listing the artifacts', 50, () => new Promise(() => undefined))).rejects.toThrow(
      new Stalled('Listing the artifacts did not answer within 0 s'),
    );
    await expect(within('x', 1000, async () => 7)).resolves.toBe(7);
  });
});

describe('parseContentRange', () => {
  it.each([
    ['bytes 0-99/1000', { start: 0, end: 99, total: 1000 }],
    ['bytes 600-999/1000', { start: 600, end: 999, total: 1000 }],
    ['bytes 5-9/*', { start: 5, end: 9, total: NaN }],
    ['bytes */1000', undefined],
    ['items 0-1/2', undefined],
    [undefined, undefined],
  ])('%s', (header, expected) => {
    expect(parseContentRange(header)).toEqual(expected);
  });
});
