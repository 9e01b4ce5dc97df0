/**
 * gzip layers decompressed and hashed on a worker thread: on the main thread, hashing what they expand to held back the
 * read that feeds the engine (docs/performance.md, "Layers against their diff_ids"). The worker is one small script,
 * started with the first gzip layer and shared by all of them; the main thread only copies each compressed chunk to it.
 */
import { Worker } from 'node:worker_threads';
import { STREAM_CHUNK_BYTES } from '../constants.ts';

/**
 * What the worker runs: one gunzip and one sha256 per layer. A script of its own, plain CommonJS (an evaluated worker
 * script is), kept as text so that the bundler leaves its `require` calls alone.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const layers = new Map();
// zlib's output buffers are freed by garbage collection, which external memory triggers only every ~64 MiB or so. A
// minor collection every 4 MiB of output frees them at little cost; full ones cost more CPU (docs/performance.md).
require('node:v8').setFlagsFromString('--expose-gc');
const collect = require('node:vm').runInNewContext('gc');
let sinceCollected = 0;
const fail = (id, reason, detail) => {
  const layer = layers.get(id);
  if (!layer || layer.failed) return;
  layer.failed = true;
  layer.inflate.destroy();
  layers.delete(id);
  parentPort.postMessage({ t: 'error', id, reason, detail });
};
parentPort.on('message', (message) => {
  const { id } = message;
  if (message.t === 'start') {
    const layer = {
      inflate: zlib.createGunzip({ chunkSize: 1024 * 1024 }),
      hash: crypto.createHash('sha256'),
      size: 0,
      limit: message.limit,
      fed: 0,
      failed: false,
    };
    layers.set(id, layer);
    layer.inflate.on('data', (chunk) => {
      layer.size += chunk.length;
      if (layer.size > layer.limit) return fail(id, 'limit', String(layer.size));
      layer.hash.update(chunk);
      sinceCollected += chunk.length;
      if (sinceCollected >= 4 * 1024 * 1024) {
        sinceCollected = 0;
        collect({ type: 'minor' });
      }
      parentPort.postMessage({ t: 'grew', id, bytes: chunk.length });
    });
    layer.inflate.on('error', (error) => fail(id, 'corrupt', error.message));
    layer.inflate.on('end', () => {
      if (layer.failed) return;
      // Node's gunzip passes over zeros after the last member; Go's gzip reader, which the engine uses, does not.
      if (layer.inflate.bytesWritten !== layer.fed) return fail(id, 'trailing', String(layer.fed - layer.inflate.bytesWritten));
      layers.delete(id);
      parentPort.postMessage({ t: 'done', id, digest: 'sha256:' + layer.hash.digest('hex'), size: layer.size });
    });
  } else if (message.t === 'data') {
    const layer = layers.get(id);
    if (!layer) return;
    const chunk = Buffer.from(message.chunk, 0, message.length);
    layer.fed += chunk.length;
    // Once zlib has consumed it, the buffer goes back to the main thread to carry the next chunk.
    layer.inflate.write(chunk, () =>
      parentPort.postMessage({ t: 'took', id, bytes: chunk.length, buffer: message.chunk }, [message.chunk]),
    );
  } else if (message.t === 'end') {
    layers.get(id)?.inflate.end();
  } else if (message.t === 'abort') {
    const layer = layers.get(id);
    if (layer) {
      layer.failed = true;
      layer.inflate.destroy();
      layers.delete(id);
    }
  }
});
`;

type FromWorker =
  | { t: 'took'; id: number; bytes: number; buffer: ArrayBuffer }
  | { t: 'grew'; id: number; bytes: number }
  | { t: 'done'; id: number; digest: string; size: number }
  | { t: 'error'; id: number; reason: 'limit' | 'corrupt' | 'trailing'; detail: string };

/** One layer's side of the worker, as the main thread sees it. */
export interface WorkerLayer {
  /** Compressed bytes sent and not yet taken by the decompressor. */
  pending: number;
  /** Called with each piece of output (for the image's size), and once with the outcome. */
  grew(bytes: number): void;
  took(): void;
  done(content: { digest: string; size: number }): void;
  failed(reason: 'limit' | 'corrupt' | 'trailing' | 'worker', detail: string): void;
}

let worker: Worker | undefined;
let nextId = 0;
/**
 * Buffers that carried a chunk to the worker and came back: reused, so that what is in flight is the queue's bound and
 * not also the copies the worker's garbage collector has yet to free (docs/performance.md, "Layers against their
 * diff_ids").
 */
const spare: ArrayBuffer[] = [];
const SPARE_BUFFERS = 16;
const layers = new Map<number, WorkerLayer>();

/** The worker holds the process open only while a layer is under way: idle, it ends with the process. */
function holdWhileBusy(): void {
  if (layers.size > 0) worker?.ref();
  else worker?.unref();
}

function theWorker(): Worker {
  if (worker) return worker;
  const started = new Worker(WORKER_SOURCE, { eval: true });
  started.on('message', (message: FromWorker) => {
    const layer = layers.get(message.id);
    if (message.t === 'took' && spare.length < SPARE_BUFFERS && message.buffer.byteLength === STREAM_CHUNK_BYTES) {
      spare.push(message.buffer);
    }
    if (!layer) return;
    if (message.t === 'took') {
      layer.pending -= message.bytes;
      layer.took();
    } else if (message.t === 'grew') {
      layer.grew(message.bytes);
    } else if (message.t === 'done') {
      layers.delete(message.id);
      holdWhileBusy();
      layer.done(message);
    } else {
      layers.delete(message.id);
      filling.delete(message.id);
      holdWhileBusy();
      layer.failed(message.reason, message.detail);
    }
  });
  started.on('error', (error) => {
    for (const [id, layer] of layers) {
      layers.delete(id);
      layer.failed('worker', error.message);
    }
    filling.clear();
    worker = undefined;
  });
  worker = started;
  return started;
}

/** Starts a layer on the worker; returns its id for `send`, `finish` and `abort`. */
export function startLayer(layer: WorkerLayer, limit: number): number {
  const id = ++nextId;
  layers.set(id, layer);
  theWorker().postMessage({ t: 'start', id, limit });
  holdWhileBusy();
  return id;
}

/** Per layer, the carrier being filled: small chunks travel together, a carrier at a time. */
const filling = new Map<number, { carrier: ArrayBuffer; length: number }>();

function post(id: number, layer: WorkerLayer, carrier: ArrayBuffer, length: number): void {
  layer.pending += length;
  worker!.postMessage({ t: 'data', id, chunk: carrier, length }, [carrier]);
}

/** Sends a copy of `chunk` (it is the input's, which goes on downstream), a full carrier at a time. */
export function send(id: number, chunk: Buffer): void {
  const layer = layers.get(id);
  if (!layer || !worker) return;
  let offset = 0;
  while (offset < chunk.length) {
    const open = filling.get(id) ?? { carrier: spare.pop() ?? new ArrayBuffer(STREAM_CHUNK_BYTES), length: 0 };
    const taken = Math.min(chunk.length - offset, STREAM_CHUNK_BYTES - open.length);
    new Uint8Array(open.carrier, open.length, taken).set(chunk.subarray(offset, offset + taken));
    open.length += taken;
    offset += taken;
    if (open.length === STREAM_CHUNK_BYTES) {
      filling.delete(id);
      post(id, layer, open.carrier, open.length);
    } else {
      filling.set(id, open);
    }
  }
}

export function finish(id: number): void {
  const layer = layers.get(id);
  const open = filling.get(id);
  filling.delete(id);
  if (layer && open && worker) post(id, layer, open.carrier, open.length);
  worker?.postMessage({ t: 'end', id });
}

export function abort(id: number): void {
  const open = filling.get(id);
  if (open && filling.delete(id) && spare.length < SPARE_BUFFERS) spare.push(open.carrier);
  if (!layers.delete(id)) return;
  worker?.postMessage({ t: 'abort', id });
  holdWhileBusy();
}

/** For tests: the worker is gone, and the next layer starts a new one. */
export async function stopWorker(): Promise<void> {
  const stopping = worker;
  worker = undefined;
  for (const [id, layer] of layers) {
    layers.delete(id);
    layer.failed('worker', 'stopped');
  }
  filling.clear();
  await stopping?.terminate();
}
