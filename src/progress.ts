/**
 * Progress of long streaming work: a pass-through meter that logs bytes done and throughput every few seconds,
 * and phase timings for the job summary.
 */
import * as core from '@actions/core';
import { Transform, type TransformCallback } from 'node:stream';

const LOG_EVERY_MS = 5_000;

/** `bytes` in binary units, as this action's log and summary show sizes: `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  return scaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB'], (value) => `${value.toFixed(1)} `, ' ');
}

/** `bytes` in decimal units without a space, as `docker image ls` shows sizes: `11.3kB`. */
export function formatDecimalBytes(bytes: number): string {
  return scaled(bytes, 1000, ['B', 'kB', 'MB', 'GB', 'TB'], (value) => value.toPrecision(3), '');
}

function scaled(
  bytes: number,
  base: number,
  units: readonly string[],
  show: (value: number) => string,
  byteSeparator: string,
): string {
  let value = bytes;
  let unit = 0;
  while (value >= base && unit < units.length - 1) {
    value /= base;
    unit++;
  }
  return unit === 0 ? `${bytes}${byteSeparator}${units[0]}` : `${show(value)}${units[unit]}`;
}

export function formatRate(bytes: number, ms: number): string {
  return ms > 0 ? `${formatBytes((bytes * 1000) / ms)}/s` : '-';
}

/** Counts bytes flowing through and logs `phase: N MiB, R MiB/s` while the stream is busy. */
export class ProgressMeter extends Transform {
  bytes = 0;
  private readonly phase: string;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(phase: string, log: (line: string) => void = core.info) {
    super();
    this.phase = phase;
    this.timer = setInterval(() => log(this.line()), LOG_EVERY_MS);
    this.timer.unref();
  }

  line(): string {
    return `${this.phase}: ${formatBytes(this.bytes)}, ${formatRate(this.bytes, Date.now() - this.started)}`;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    clearInterval(this.timer);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearInterval(this.timer);
    callback(error);
  }
}

/** Wall time of each phase, in the order they ran. */
export class PhaseTimer {
  readonly phases: Array<{ phase: string; ms: number; bytes?: number }> = [];

  async time<T>(phase: string, work: () => Promise<T>, bytesOf?: (result: T) => number): Promise<T> {
    const started = Date.now();
    const result = await work();
    this.record(phase, started, bytesOf?.(result));
    return result;
  }

  /** A phase that ran alongside others, from `started` (a `Date.now()`) to now. */
  record(phase: string, started: number, bytes?: number): void {
    this.phases.push({ phase, ms: Date.now() - started, bytes });
  }
}
