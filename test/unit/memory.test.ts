/**
 * src/memory.ts: a minor garbage collection every 8 MiB of stream passed, so that chunks already passed on are freed
 * before external memory would make V8 collect. Observed through the memory Node counts for ArrayBuffers: chunks
 * nothing holds any more are freed once the bytes have passed, and not before.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { passed } from '../../src/memory.ts';

const MiB = 1024 * 1024;

const arrayBuffers = () => process.memoryUsage().arrayBuffers;

/** Chunks of 1 MiB made and dropped at once, as a stream's are once passed on. */
function garbage(count: number): void {
  for (let i = 0; i < count; i++) Buffer.allocUnsafeSlow(MiB).fill(i);
}

/** The ArrayBuffer memory once it has stopped falling (V8 may free backing stores on another thread), within 2 s. */
async function settled(): Promise<number> {
  let last = arrayBuffers();
  for (let waited = 0; waited < 2000; waited += 50) {
    await sleep(50);
    const now = arrayBuffers();
    if (now === last) return now;
    last = now;
  }
  return last;
}

it('chunks nothing holds are freed once 8 MiB have passed, counted over many chunks, and not before', async () => {
  passed(8 * MiB); // whatever was counted before this test, the next collection is 8 MiB away
  const start = await settled();
  garbage(24);
  for (let i = 0; i < 8; i++) passed(MiB - 1);
  const before = await settled();
  expect(before - start).toBeGreaterThanOrEqual(24 * MiB);
  passed(8);
  expect(await settled()).toBeLessThan(start + 4 * MiB);
});

it('a collection leaves alone chunks still held', async () => {
  passed(8 * MiB);
  const start = await settled();
  const held = Array.from({ length: 24 }, (_, i) => Buffer.alloc(MiB, i));
  passed(8 * MiB);
  expect((await settled()) - start).toBeGreaterThan(23 * MiB);
  expect(held.every((chunk, i) => chunk[MiB - 1] === i)).toBe(true);
});
