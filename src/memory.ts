/**
 * Minor garbage collections as a stream's bytes pass. Each chunk read, decompressed or written is a new Buffer whose
 * memory V8 frees only when it collects the chunk's object, which external memory alone triggers late: the process
 * then holds tens of MiB of chunks already passed on. A minor collection every few MiB frees them at little cost
 * (docs/performance.md, "Memory").
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;
let collect: Collect | null | undefined;
let since = 0;

/** Counts `bytes` as passed; every COLLECT_EVERY_BYTES, a minor collection. */
export function passed(bytes: number): void {
  since += bytes;
  if (since < COLLECT_EVERY_BYTES) return;
  since = 0;
  collect ??= exposed();
  collect?.({ type: 'minor' });
}

/** V8's `gc`, made reachable without a command-line flag; null where it cannot be (the collector then decides alone). */
function exposed(): Collect | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    return null;
  }
}
