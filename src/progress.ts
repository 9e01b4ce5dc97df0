/**
 * Progress of long streaming work: a pass-through meter that logs bytes done and throughput every few seconds,
 * and phase timings for the job summary.
 */
import * as core from '@actions/core';
import { Transform, type TransformCallback } from 'node:stream';
import { job } from './job.ts';
import { passed } from './memory.ts';

const LOG_EVERY_MS = 5_000;

/** "after 1.2 MiB" or "before its first byte", for lines about a stream that stalled or was cut short. */
export function progressText(bytes: number): string {
  return bytes === 0 ? 'before its first byte' : `after ${formatBytes(bytes)}`;
}

/** `12.3 s`: a duration, as the log shows it. */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** `bytes` in binary units, as this action's log and summary show sizes: `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  return scaled(bytes, {
    base: 1024,
    units: ['B', 'KiB', 'MiB', 'GiB', 'TiB'],
    show: (value) => `${value.toFixed(1)} `,
    bytesAfter: ' ',
  });
}

/** `bytes` in decimal units without a space, as `docker image ls` shows sizes: `11.3kB`. */
export function formatDecimalBytes(bytes: number): string {
  return scaled(bytes, {
    base: 1000,
    units: ['B', 'kB', 'MB', 'GB', 'TB'],
    show: (value) => value.toPrecision(3),
    bytesAfter: '',
  });
}

/** `bytes` in the largest of `units` (each `base` times the one before) that keeps the value at least 1. */
function scaled(
  bytes: number,
  scale: { base: number; units: readonly string[]; show: (value: number) => string; bytesAfter: string },
): string {
  const { base, units, show, bytesAfter } = scale;
  let value = bytes;
  let unit = 0;
  while (value >= base && unit < units.length - 1) {
    value /= base;
    unit++;
  }
  return unit === 0 ? `${bytes}${bytesAfter}${units[0]}` : `${show(value)}${units[unit]}`;
}

export function formatRate(bytes: number, ms: number): string {
  return ms > 0 ? `${formatBytes((bytes * 1000) / ms)}/s` : '-';
}

/** A stream that must keep moving: after `ms` without a byte (`firstMs` before the first), `stalled` is the error. */
export interface StallLimit {
  ms: number;
  firstMs?: number;
  stalled: (waitedMs: number, bytes: number) => Error;
}

/**
 * Counts bytes flowing through and logs `phase: N MiB, R MiB/s` while the stream is busy; with `stall`, fails the
 * stream when no byte has come for that long.
 */
export class ProgressMeter extends Transform {
  bytes = 0;
  private readonly phase: string;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(phase: string, options: { log?: (line: string) => void; stall?: StallLimit } = {}) {
    super();
    this.phase = phase;
    const log = options.log ?? core.info;
    this.timer = setInterval(() => log(this.line()), LOG_EVERY_MS);
    this.timer.unref();
    const { stall } = options;
    if (stall) {
      const arm = (ms: number) => {
        clearTimeout(this.#watchdog);
        this.#watchdog = setTimeout(() => this.destroy(stall.stalled(ms, this.bytes)), ms);
        this.#watchdog.unref();
      };
      arm(stall.firstMs ?? stall.ms);
      let first = true;
      this.on('data', () => {
        if (first) arm(stall.ms);
        else this.#watchdog!.refresh();
        first = false;
      });
    }
  }

  line(): string {
    return `${this.phase}: ${formatBytes(this.bytes)}, ${formatRate(this.bytes, Date.now() - this.started)}`;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    passed(chunk.length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    clearInterval(this.timer);
    clearTimeout(this.#watchdog);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearInterval(this.timer);
    clearTimeout(this.#watchdog);
    callback(error);
  }
}

/** Wall time of each phase, in the order they ran. */
export class PhaseTimer {
  readonly phases: Array<{ phase: string; ms: number; bytes?: number }> = [];

  async time<T>(phase: string, work: () => Promise<T>, bytesOf?: (result: T) => number): Promise<T> {
    const started = Date.now();
    job.doing = phase;
    const result = await work();
    this.record(phase, started, bytesOf?.(result));
    return result;
  }

  /** A phase that ran alongside others, from `started` (a `Date.now()`) to now. */
  record(phase: string, started: number, bytes?: number): void {
    this.phases.push({ phase, ms: Date.now() - started, bytes });
  }
}
