/**
 * A local stand-in for GitHub's artifact backend that the real @actions/artifact library talks to over real HTTP:
 * the Results service (Twirp over JSON), the blob store behind its signed URLs, the few GitHub REST endpoints the
 * library calls for another run's artifacts (`findBy`) with the artifact DELETE that delete mode calls, and a
 * workflow's runs (workflow-runs.ts, `addRun`). Artifacts live per workflow run; a run's numeric id is both the
 * Results service's workflow_run_backend_id and the REST run_id. As on GitHub, a run belongs to one repository (any
 * `owner/name`, given to `env`), which the REST API matches without regard to case, and every signed URL carries a
 * fresh random signature: clients mask it in all later log lines, so it must never be a word.
 *
 * Run on its own for the demo: `node test/support/artifact-service.ts --port 8765` prints the environment of a job
 * of run 1 as KEY=VALUE lines and serves until killed.
 *
 * Blob downloads honour a byte range as Azure Blob Storage does (`x-ms-range` or `Range`: 206 with Content-Range, 416
 * past the end). Tests make any request fail in the ways networks and services do with `inject` (see Fault), and read
 * what the blob store sent with `bytesServed`.
 *
 * Loopback moves blobs at memory speed; GitHub's artifact storage does not. `rate` (or `--rate github`, or
 * `--upload-mb-per-second N --download-mb-per-second N`) limits the blob store's throughput, shared by every connection in a direction,
 * to give benchmarks the shape of the real network (see GITHUB_RATE).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { WorkflowRuns, type RunRecord } from './workflow-runs.ts';

export interface ServedArtifact {
  id: number;
  name: string;
  size: number;
  digest: string;
}

export interface ArtifactService {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /**
   * The environment a job of `runId` (default 1) of `repository` (default REPOSITORY) needs for @actions/artifact,
   * including GITHUB_API_URL for findBy. The run belongs to that repository from then on.
   */
  env(runId?: number, repository?: string): Record<string, string>;
  /** Finalized artifacts of a run, oldest first. */
  artifacts(runId?: number): ServedArtifact[];
  /**
   * The stored blob of a run's artifact as one file, for tests that read, corrupt or truncate it: its blocks are
   * stitched into that file on the first call, and later downloads read the file.
   */
  blobPath(runId: number, name: string): string;
  /**
   * Records run `runId` of `repository` (default REPOSITORY) as a run of a workflow, which the REST API then lists
   * (workflow-runs.ts); a job of it gets its environment from `env` as any run's.
   */
  addRun(runId: number, run: RunRecord, repository?: string): void;
  /** The `expires_at` CreateArtifact was given for a run's artifact (RFC 3339): what `retention-days` became. */
  expiresAt(runId: number, name: string): string | undefined;
  /** Drops the digest recorded for a run's artifact, as for artifacts uploaded before the service recorded any. */
  forgetDigest(runId: number, name: string): void;
  /**
   * `METHOD /path` of every request received so far, with `?comp=…` for blob operations and ` range=…` for blob
   * downloads that ask for a byte range (`GET /_blob/run-1/3 range=bytes=100-`).
   */
  requests(): string[];
  /**
   * Body bytes the blob store has written for downloads of a run's artifact so far: every attempt, whole, ranged or
   * cut short, counted as written to the connection.
   */
  bytesServed(runId: number, name: string): number;
  /**
   * Queues `fault` for the next `fault.times` (default 1) requests to its target that arrive from now on. Faults for
   * one target apply in the order they were injected, each for its number of requests, then stop. Throws for a fault
   * its target cannot make (see Fault).
   */
  inject(fault: Fault): void;
  /** Drops every injected fault not used up yet (the constructor's `faults` stay). */
  clearFaults(): void;
  close(): Promise<void>;
}

export const REPOSITORY = 'octo-org/octo-repo';

/**
 * A `github-token` the REST API lets read a repository's actions but not write them: every request other than a GET
 * is answered 403 "Resource not accessible by integration", as GitHub answers a job token without `actions: write`.
 */
export const READ_ONLY_TOKEN = 'ghs_read_only';

/** Bytes per second the blob store moves in each direction; undefined for no limit. */
export interface Rate {
  upload?: number;
  download?: number;
}

const MB = 1000 * 1000;
/**
 * GitHub's artifact storage as published by its users, with the v4 artifacts (uploads and downloads straight to Azure
 * Blob Storage from a hosted runner): about 5 GB up and down in 1.5-2 minutes (actions/upload-artifact#199), and
 * downloads from Azure on a hosted ubuntu-latest runner at about 88 MB/s (microsoft/navcontainerhelper#4119).
 */
export const GITHUB_RATE: Required<Rate> = { upload: 45 * MB, download: 90 * MB };

/**
 * One direction's budget, shared by every connection: each chunk is due when the bytes before it have had their time
 * at `bytesPerSecond`. Waits shorter than a timer's resolution are carried into the next chunk's, not rounded up to a
 * millisecond each (64 KiB chunks at 90 MB/s are due every 0.7 ms).
 */
class Pacer {
  #next = 0;
  readonly #bytesPerSecond: number;

  constructor(bytesPerSecond: number) {
    this.#bytesPerSecond = bytesPerSecond;
  }

  /** Milliseconds until the next `length` bytes are due, which are then counted as sent. */
  #due(length: number): number {
    const now = performance.now();
    this.#next = Math.max(now, this.#next) + (length / this.#bytesPerSecond) * 1000;
    return this.#next - now;
  }

  stage(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        const wait = this.#due(chunk.length);
        if (wait < MIN_WAIT_MS) callback(null, chunk);
        else sleep(wait).then(() => callback(null, chunk), callback);
      },
    });
  }

  /** Resolves when the next `length` bytes are due. */
  async pace(length: number): Promise<void> {
    const wait = this.#due(length);
    if (wait >= MIN_WAIT_MS) await sleep(wait);
  }
}

/** Below this a wait is carried over rather than slept: timers do not wake sooner than about a millisecond. */
const MIN_WAIT_MS = 10;

const TWIRP_PREFIX = '/twirp/github.actions.results.api.v1.ArtifactService/';
const BLOB_PREFIX = '/_blob/';
const MAX_JSON_BODY = 1024 * 1024;

interface StoredArtifact {
  /** Assigned at finalize; 0 while the upload is pending. */
  id: number;
  runId: number;
  jobId: string;
  name: string;
  /** Names the blob in URLs and on disk; unique across runs. */
  key: string;
  contentType: string;
  size: number;
  digest: string;
  createdAt: string;
  expiresAt: string | undefined;
  committed: boolean;
  /**
   * The committed blocks' files, in the block list's order, until something asks for the blob as one file (blobPath).
   * Azure commits a block list without copying the blocks; stitching them into one file at commit would put a copy of
   * the whole artifact on the uploader's clock that GitHub does not (about 1 s for 381 MiB here).
   */
  parts?: string[];
}

/** A failure answered as a Twirp error: the library parses the JSON body of every response, errors included. */
class TwirpError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The library decodes the JWT to find its run and job, and never checks the signature. */
function runtimeToken(runId: number): string {
  const payload = { scp: `Actions.GenericRead:${runId} Actions.Results:${runId}:${jobIdOf(runId)}` };
  return `${base64url({ typ: 'JWT', alg: 'none' })}.${base64url(payload)}.unsigned`;
}

function jobIdOf(runId: number): string {
  return `job-of-run-${runId}`;
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  response.end(text);
}

async function readText(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_JSON_BODY) throw new TwirpError(400, 'malformed', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a request field the library may send in snake_case (its default) or lowerCamelCase. */
function field(body: Record<string, unknown>, snakeName: string): unknown {
  const camelName = snakeName.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
  return body[snakeName] ?? body[camelName];
}

function stringField(body: Record<string, unknown>, snakeName: string): string | undefined {
  const value = field(body, snakeName);
  return value === undefined || value === null ? undefined : String(value);
}

/**
 * Bytes `start` up to `end` (exclusive) of the blob made of `files`, one after another, each `sizes[n]` bytes long:
 * only the files the range touches are read, and never joined.
 */
async function* blobContent(files: string[], sizes: number[], start: number, end: number): AsyncGenerator<Buffer> {
  let offset = 0;
  for (const [n, file] of files.entries()) {
    const size = sizes[n] ?? 0;
    const from = Math.max(start - offset, 0);
    const to = Math.min(end - offset, size);
    offset += size;
    if (from < to) yield* createReadStream(file, { start: from, end: to - 1 }) as AsyncIterable<Buffer>;
  }
}

/** The range header of a blob request: Azure reads `x-ms-range` over `Range` when a request has both. */
function rangeHeader(request: IncomingMessage): string | undefined {
  const value = request.headers['x-ms-range'] ?? request.headers.range;
  return typeof value === 'string' ? value : undefined;
}

/**
 * The bytes `start` up to `end` (exclusive) that `header` asks for of a blob of `size` bytes: one range of bytes
 * (`bytes=N-`, `bytes=N-M`, or the last N bytes, `bytes=-N`), its end cut to the blob's. A header that is no such
 * range (another unit, several ranges, M before N) is ignored, as HTTP allows, for the whole blob; a range that starts
 * at or past the end of the blob cannot be satisfied.
 */
function rangeOf(header: string | undefined, size: number): { start: number; end: number } | 'whole' | 'unsatisfiable' {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'whole';
  if (match[1] === '') {
    const suffix = Number(match[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(size - suffix, 0), end: size };
  }
  const start = Number(match[1]);
  const last = match[2] === '' ? Infinity : Number(match[2]);
  if (last < start) return 'whole';
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(last + 1, size) };
}

/** Resolves when `response` can take more bytes, or when its connection has closed. */
function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

/** Reads a request's body to its end, keeping none of it. */
async function drain(request: IncomingMessage): Promise<void> {
  request.resume();
  await finished(request);
}

/** Drops a request's connection abruptly: a TCP reset where the platform can send one, else a plain close. */
function reset(request: IncomingMessage): void {
  const socket = request.socket;
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** Block ids are base64 and may hold `/` or `+`, so they are hex-encoded to name the block files. */
function blockFileName(blockId: string): string {
  return Buffer.from(blockId, 'utf8').toString('hex');
}

/** Failures the blob store can be told to make, for tests of what the client does then. */
export interface Faults {
  /** The first N blob downloads send half the blob, then drop the connection (the library retries 5 s later). */
  cutDownloads?: number;
  /** Block uploads after the first N are refused with 403, as for a signature that expired. */
  refuseBlocksAfter?: number;
  /** Every CreateArtifact is refused with 403 (a token without the permission), which the library does not retry. */
  refuseCreate?: boolean;
}

export type TwirpMethod =
  'CreateArtifact' | 'FinalizeArtifact' | 'ListArtifacts' | 'GetSignedArtifactURL' | 'DeleteArtifact';

/**
 * Which requests a fault applies to: `blob-get` blob downloads, `block-put` block uploads (PUT ?comp=block),
 * `block-list` block list commits (PUT ?comp=blocklist), a Twirp method by name, `rest` the GitHub REST routes, or
 * `rest-delete` the REST artifact DELETE alone (a DELETE meets a `rest-delete` fault first, else a `rest` one).
 * A request takes a fault as it arrives, once the service has found what it asks for (a blob request only with a
 * signature that is good for it, a Twirp request only for a method that exists).
 */
export type FaultTarget = 'blob-get' | 'block-put' | 'block-list' | TwirpMethod | 'rest' | 'rest-delete';

/**
 * A number of body bytes: an integer count (0 or more), or, strictly between 0 and 1, that fraction of the body the
 * response would carry (0.6 is 60%, rounded down), which for a download without a range is the blob's size.
 */
export type BodyBytes = number;

/** What a request to any target can be made to meet. */
export type AnswerFault =
  /**
   * Answers `status` after reading the request's body: the JSON body `{"code":"unavailable","msg":"injected"}` for a
   * Twirp method, `{"message":"injected"}` for the REST routes, an empty body for the blob store.
   */
  | { kind: 'status'; status: number }
  /** Reads the request's body and never answers: the connection stays open until the client or the service closes it. */
  | { kind: 'stall-headers' }
  /** Reads the request's body and drops the connection with a TCP reset, without answering. */
  | { kind: 'reset' };

/** What a blob download can be made to meet; body faults announce the Content-Length of the whole body. */
export type BlobGetFault =
  | Exclude<AnswerFault, { kind: 'reset' }>
  /** Sends the headers and the first `after` bytes of the body, then nothing more, never closing. */
  | { kind: 'stall-body'; after: BodyBytes }
  /** Sends the headers and the first `after` bytes of the body, then closes the connection cleanly (FIN). */
  | { kind: 'close-early'; after: BodyBytes }
  /**
   * Sends the headers and the first `after` bytes of the body, then drops the connection with a TCP reset; without
   * `after`, drops it before answering at all.
   */
  | { kind: 'reset'; after?: BodyBytes }
  /** Announces a Content-Length `extra` bytes longer than the body, sends the body, and closes the connection. */
  | { kind: 'lie-length'; extra: number }
  /** Answers 200 with the whole blob, whatever range the request asks for. */
  | { kind: 'ignore-range' };

/**
 * A failure for the next `times` (default 1) requests to `target` that arrive after `inject`: see FaultTarget,
 * AnswerFault and BlobGetFault. A Twirp method can also meet `apply-then-reset`: the method does what it was asked
 * (FinalizeArtifact finalizes the artifact), then the connection is dropped with a TCP reset, unanswered.
 */
export type Fault = { times?: number } & (
  | ({ target: 'blob-get' } & BlobGetFault)
  | ({ target: 'block-put' | 'block-list' | 'rest' | 'rest-delete' } & AnswerFault)
  | ({ target: TwirpMethod } & (AnswerFault | { kind: 'apply-then-reset' }))
);

type FaultKind = Fault['kind'];

const ANSWER_FAULTS: readonly FaultKind[] = ['status', 'stall-headers', 'reset'];
const TWIRP_FAULTS: readonly FaultKind[] = [...ANSWER_FAULTS, 'apply-then-reset'];
/** The fault kinds each target can make. */
const FAULT_KINDS: Record<FaultTarget, readonly FaultKind[]> = {
  'blob-get': [...ANSWER_FAULTS, 'stall-body', 'close-early', 'lie-length', 'ignore-range'],
  'block-put': ANSWER_FAULTS,
  'block-list': ANSWER_FAULTS,
  rest: ANSWER_FAULTS,
  'rest-delete': ANSWER_FAULTS,
  CreateArtifact: TWIRP_FAULTS,
  FinalizeArtifact: TWIRP_FAULTS,
  ListArtifacts: TWIRP_FAULTS,
  GetSignedArtifactURL: TWIRP_FAULTS,
  DeleteArtifact: TWIRP_FAULTS,
};

const isBodyBytes = (value: unknown): value is BodyBytes =>
  typeof value === 'number' && ((value > 0 && value < 1) || (Number.isSafeInteger(value) && value >= 0));

/** `fault` as given, or an error that says what about it no request could meet. */
function checkedFault(fault: Fault): Fault {
  const kinds = Object.hasOwn(FAULT_KINDS, fault.target) ? FAULT_KINDS[fault.target] : undefined;
  if (!kinds) throw new Error(`no such fault target: ${String(fault.target)}`);
  if (!kinds.includes(fault.kind)) throw new Error(`a ${fault.kind} fault cannot happen to ${fault.target}`);
  const times = fault.times ?? 1;
  if (!Number.isSafeInteger(times) || times < 1) throw new Error(`times must be a whole number from 1: ${times}`);
  if (fault.kind === 'status' && !(Number.isInteger(fault.status) && fault.status >= 200 && fault.status <= 599)) {
    throw new Error(`status must be an HTTP status from 200 to 599: ${fault.status}`);
  }
  if (fault.kind === 'lie-length' && !(Number.isSafeInteger(fault.extra) && fault.extra >= 1)) {
    throw new Error(`extra must be a whole number of bytes from 1: ${fault.extra}`);
  }
  const after = afterOf(fault);
  if (after !== undefined && fault.target !== 'blob-get') throw new Error(`after applies to blob-get only`);
  if ((fault.kind === 'stall-body' || fault.kind === 'close-early' || after !== undefined) && !isBodyBytes(after)) {
    throw new Error(`after must be a whole number of bytes or a fraction between 0 and 1: ${after}`);
  }
  return { ...fault };
}

/** The `after` of a fault, if it has one. */
function afterOf(fault: Fault): BodyBytes | undefined {
  return 'after' in fault ? fault.after : undefined;
}

/** `after` of a body fault, in bytes of a body `length` bytes long. */
function bytesOf(after: BodyBytes, length: number): number {
  return after > 0 && after < 1 ? Math.floor(after * length) : Math.min(after, length);
}

export async function startArtifactService(
  options: { port?: number; rate?: Rate; faults?: Faults; ignoreRunFilters?: boolean } = {},
): Promise<ArtifactService> {
  let cutsLeft = options.faults?.cutDownloads ?? 0;
  let blocksAccepted = 0;
  const uploads = options.rate?.upload ? new Pacer(options.rate.upload) : undefined;
  const downloads = options.rate?.download ? new Pacer(options.rate.download) : undefined;
  const root = await mkdtemp(path.join(tmpdir(), 'artifact-service-'));
  const blocksDir = path.join(root, 'blocks');
  const blobsDir = path.join(root, 'blobs');
  await mkdir(blocksDir);
  await mkdir(blobsDir);

  const stored: StoredArtifact[] = [];
  const received: string[] = [];
  /** Blob key → body bytes written for its downloads. */
  const served = new Map<string, number>();
  /** Injected faults not used up yet, oldest first, with how many more requests each applies to. */
  let injected: { fault: Fault; left: number }[] = [];
  let lastArtifactId = 1000;
  let lastBlobKey = 0;
  let url = '';
  /** Run id → its repository, lowercased: GitHub treats `Wikid82/Charon` and `wikid82/charon` as one repository. */
  const repositoryOf = new Map<number, string>();
  // ignoreRunFilters: the runs API lists every run of a workflow whatever the query, as a server without the filters.
  const workflowRuns = new WorkflowRuns({ ignoreFilters: options.ignoreRunFilters });
  /** Signature → what it lets its holder do, to the one blob it was issued for. */
  const signatures = new Map<string, { key: string; permission: 'read' | 'upload' }>();

  const finalized = (runId: number): StoredArtifact[] => stored.filter((a) => a.runId === runId && a.id !== 0);
  const blobFile = (artifact: StoredArtifact): string => path.join(blobsDir, artifact.key);
  /** The blob as one file: its committed blocks are stitched into it the first time it is asked for. */
  const stitched = (artifact: StoredArtifact): string => {
    const file = blobFile(artifact);
    if (artifact.parts) {
      const fd = openSync(file, 'w');
      try {
        for (const part of artifact.parts) writeSync(fd, readFileSync(part));
      } finally {
        closeSync(fd);
      }
      artifact.parts = undefined;
      rmSync(path.join(blocksDir, artifact.key), { recursive: true, force: true });
    }
    return file;
  };
  const blobUrl = (artifact: StoredArtifact, permission: 'read' | 'upload'): string => {
    const signature = randomBytes(16).toString('hex');
    signatures.set(signature, { key: artifact.key, permission });
    return `${url}${BLOB_PREFIX}run-${artifact.runId}/${artifact.key}?sig=${signature}`;
  };

  /**
   * The oldest injected fault for `target`, used once. Called as the request arrives, before anything is awaited, so a
   * fault never applies to a request that arrived before it was injected.
   */
  function takeFault(target: FaultTarget): Fault | undefined {
    const next = injected.find((entry) => entry.fault.target === target);
    if (!next) return undefined;
    next.left -= 1;
    if (next.left === 0) injected.splice(injected.indexOf(next), 1);
    return next.fault;
  }

  /** Meets a fault any target can make, once the request's body has been read. */
  function answerFault(
    fault: Fault,
    request: IncomingMessage,
    response: ServerResponse,
    body: 'twirp' | 'rest' | 'none',
  ) {
    if (fault.kind === 'status') {
      if (body === 'twirp') sendJson(response, fault.status, { code: 'unavailable', msg: 'injected' });
      else if (body === 'rest') sendJson(response, fault.status, { message: 'injected' });
      else response.writeHead(fault.status, { 'Content-Length': 0 }).end();
    } else if (fault.kind === 'reset') {
      reset(request);
    } else if (fault.kind !== 'stall-headers') {
      throw new Error(`a ${fault.kind} fault cannot happen to ${fault.target}`);
    }
    // stall-headers: no answer, ever; the connection closes with the client or the service.
  }

  /**
   * Writes the bytes of `content` to `response` up to `limit`, paced by `pacer`, counting them as served for the blob
   * `key`. Stops early, without an error, when the client goes away.
   */
  async function sendBody(
    response: ServerResponse,
    key: string,
    content: AsyncIterable<Buffer>,
    limit: number,
    pacer: Pacer | undefined,
  ): Promise<void> {
    let left = limit;
    if (left <= 0) return;
    for await (const chunk of content) {
      const piece = chunk.subarray(0, left);
      if (pacer) await pacer.pace(piece.length);
      if (response.destroyed) return;
      left -= piece.length;
      served.set(key, (served.get(key) ?? 0) + piece.length);
      if (!response.write(piece)) await drained(response);
      if (left === 0 || response.destroyed) return;
    }
  }

  /** A download of a finalized artifact's blob, of the range the request asks for, meeting `fault` if given. */
  async function serveBlob(
    artifact: StoredArtifact,
    fault: Fault | undefined,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    if (
      fault?.kind === 'status' ||
      fault?.kind === 'stall-headers' ||
      (fault?.kind === 'reset' && afterOf(fault) === undefined)
    ) {
      await drain(request);
      answerFault(fault, request, response, 'none');
      return;
    }
    const files = artifact.parts ?? [blobFile(artifact)];
    const sizes = await Promise.all(files.map(async (file) => (await stat(file)).size));
    const size = sizes.reduce((total, length) => total + length, 0);
    const wanted = fault?.kind === 'ignore-range' ? 'whole' : rangeOf(rangeHeader(request), size);
    if (wanted === 'unsatisfiable') {
      response
        .writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': 0, 'x-ms-error-code': 'InvalidRange' })
        .end();
      return;
    }
    const { start, end } = wanted === 'whole' ? { start: 0, end: size } : wanted;
    const length = end - start;
    const extra = fault?.kind === 'lie-length' ? fault.extra : 0;
    response.writeHead(wanted === 'whole' ? 200 : 206, {
      'Content-Type': artifact.contentType,
      'Content-Length': length + extra,
      ...(wanted === 'whole' ? {} : { 'Content-Range': `bytes ${start}-${end - 1}/${size}` }),
      'Accept-Ranges': 'bytes',
      'Content-Disposition': `attachment; filename="${artifact.name}"; filename*=UTF-8''${encodeURIComponent(artifact.name)}`,
      // The body falls short of the length announced: the connection closes after it rather than wait for the rest.
      ...(extra ? { Connection: 'close' } : {}),
    });
    const content = blobContent(files, sizes, start, end);
    if (fault?.kind === 'stall-body' || fault?.kind === 'close-early' || fault?.kind === 'reset') {
      response.flushHeaders();
      await sendBody(response, artifact.key, content, bytesOf(afterOf(fault) ?? 0, length), downloads);
      if (fault.kind === 'close-early') {
        // FIN after the bytes written, then the socket's end; the response itself never ends.
        const socket = response.socket;
        socket?.end(() => socket.destroy());
      } else if (fault.kind === 'reset') {
        // Time for the client to read what was sent: a reset discards what is still in flight.
        await sleep(50);
        reset(request);
      }
      // stall-body: nothing more, ever.
      return;
    }
    if (!fault && cutsLeft > 0) {
      cutsLeft -= 1;
      response.flushHeaders();
      await sendBody(response, artifact.key, content, Math.floor(length / 2), undefined);
      await sleep(50);
      response.destroy();
      return;
    }
    await sendBody(response, artifact.key, content, length, downloads);
    if (!response.destroyed) response.end();
  }

  function latestNamed(runId: number, name: string): StoredArtifact | undefined {
    return finalized(runId)
      .filter((a) => a.name === name)
      .at(-1);
  }

  function runOf(body: Record<string, unknown>): number {
    const runId = Number(stringField(body, 'workflow_run_backend_id'));
    if (!Number.isSafeInteger(runId)) {
      throw new TwirpError(400, 'invalid_argument', 'workflow_run_backend_id is not a run id');
    }
    return runId;
  }

  function nameOf(body: Record<string, unknown>): string {
    const name = stringField(body, 'name');
    if (!name) throw new TwirpError(400, 'invalid_argument', 'name is required');
    return name;
  }

  const twirp: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    async CreateArtifact(body) {
      if (options.faults?.refuseCreate)
        throw new TwirpError(403, 'permission_denied', 'the token may not create artifacts');
      const runId = runOf(body);
      const name = nameOf(body);
      if (latestNamed(runId, name)) {
        throw new TwirpError(409, 'already_exists', 'an artifact with this name already exists on the workflow run');
      }
      // A retried create replaces the earlier pending upload rather than leaving two.
      const pending = stored.findIndex((a) => a.runId === runId && a.name === name && a.id === 0);
      if (pending !== -1) stored.splice(pending, 1);
      const artifact: StoredArtifact = {
        id: 0,
        runId,
        jobId: stringField(body, 'workflow_job_run_backend_id') ?? jobIdOf(runId),
        name,
        key: String(++lastBlobKey),
        contentType: stringField(body, 'mime_type') ?? 'application/octet-stream',
        size: 0,
        digest: '',
        createdAt: new Date().toISOString(),
        expiresAt: stringField(body, 'expires_at'),
        committed: false,
      };
      stored.push(artifact);
      return { ok: true, signed_upload_url: blobUrl(artifact, 'upload') };
    },

    async FinalizeArtifact(body) {
      const runId = runOf(body);
      const name = nameOf(body);
      const artifact = stored.find((a) => a.runId === runId && a.name === name && a.id === 0);
      if (!artifact?.committed) {
        throw new TwirpError(404, 'not_found', `no uploaded content for artifact ${name} in run ${runId}`);
      }
      artifact.size = Number(stringField(body, 'size') ?? 0);
      artifact.digest = stringField(body, 'hash') ?? '';
      artifact.id = ++lastArtifactId;
      return { ok: true, artifact_id: String(artifact.id) };
    },

    async ListArtifacts(body) {
      const nameFilter = stringField(body, 'name_filter');
      const idFilter = stringField(body, 'id_filter');
      const artifacts = finalized(runOf(body))
        .filter((a) => nameFilter === undefined || a.name === nameFilter)
        .filter((a) => idFilter === undefined || String(a.id) === idFilter)
        .map((a) => ({
          workflow_run_backend_id: String(a.runId),
          workflow_job_run_backend_id: a.jobId,
          database_id: String(a.id),
          name: a.name,
          size: String(a.size),
          created_at: a.createdAt,
          digest: a.digest,
        }));
      return { artifacts };
    },

    async GetSignedArtifactURL(body) {
      const runId = runOf(body);
      const name = nameOf(body);
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new TwirpError(404, 'not_found', `artifact ${name} not found in run ${runId}`);
      return { signed_url: blobUrl(artifact, 'read') };
    },

    async DeleteArtifact(body) {
      const runId = runOf(body);
      const name = nameOf(body);
      const doomed = finalized(runId).filter((a) => a.name === name);
      const latest = doomed.at(-1);
      if (!latest) throw new TwirpError(404, 'not_found', `artifact ${name} not found in run ${runId}`);
      await removeArtifacts(doomed);
      return { ok: true, artifact_id: String(latest.id) };
    },
  };

  async function handleTwirp(method: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const handler = Object.hasOwn(twirp, method) ? twirp[method] : undefined;
    if (!handler || request.method !== 'POST') throw new TwirpError(404, 'bad_route', `no such method: ${method}`);
    const fault = takeFault(method as TwirpMethod);
    const text = await readText(request);
    if (fault?.kind === 'apply-then-reset') {
      // Whatever the method makes of the request, the client never hears of it.
      await Promise.resolve()
        .then(() => handler(JSON.parse(text) as Record<string, unknown>))
        .catch(() => undefined);
      reset(request);
      return;
    }
    if (fault) {
      answerFault(fault, request, response, 'twirp');
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new TwirpError(400, 'malformed', 'request body is not JSON');
    }
    sendJson(response, 200, await handler(body));
  }

  async function handleBlob(key: string, query: URLSearchParams, request: IncomingMessage, response: ServerResponse) {
    const artifact = stored.find((a) => a.key === key);
    if (!artifact) {
      response.writeHead(404).end();
      return;
    }
    const granted = signatures.get(query.get('sig') ?? '');
    const needed = request.method === 'GET' ? 'read' : 'upload';
    if (granted?.key !== key || granted.permission !== needed) {
      response.writeHead(403).end();
      return;
    }
    const comp = query.get('comp');
    if (request.method === 'PUT' && comp === 'block') {
      const blockId = query.get('blockid');
      if (!blockId) {
        response.writeHead(400).end();
        return;
      }
      const fault = takeFault('block-put');
      if (fault) {
        await drain(request);
        answerFault(fault, request, response, 'none');
        return;
      }
      const refuseAfter = options.faults?.refuseBlocksAfter;
      if (refuseAfter !== undefined && blocksAccepted >= refuseAfter) {
        request.resume();
        response.writeHead(403).end();
        return;
      }
      blocksAccepted += 1;
      const dir = path.join(blocksDir, key);
      await mkdir(dir, { recursive: true });
      await pipeline([
        request,
        ...(uploads ? [uploads.stage()] : []),
        createWriteStream(path.join(dir, blockFileName(blockId))),
      ]);
      response.writeHead(201).end();
      return;
    }
    if (request.method === 'PUT' && comp === 'blocklist') {
      const fault = takeFault('block-list');
      const text = await readText(request);
      if (fault) {
        answerFault(fault, request, response, 'none');
        return;
      }
      const ids = [...text.matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)].map((match) => match[2] ?? '');
      const dir = path.join(blocksDir, key);
      const parts = ids.map((id) => path.join(dir, blockFileName(id)));
      for (const part of parts) {
        if (!(await stat(part).catch(() => undefined))?.isFile()) {
          response.writeHead(400, { 'x-ms-error-code': 'InvalidBlockList' }).end();
          return;
        }
      }
      // Committed as the list of blocks: the blob is read from them in order (blobContent).
      artifact.parts = parts;
      const contentType = request.headers['x-ms-blob-content-type'];
      if (typeof contentType === 'string') artifact.contentType = contentType;
      artifact.committed = true;
      response.writeHead(201, { ETag: `"${key}-${ids.length}"`, 'Last-Modified': new Date().toUTCString() }).end();
      return;
    }
    if (request.method === 'GET' && artifact.id !== 0) {
      await serveBlob(artifact, takeFault('blob-get'), request, response);
      return;
    }
    response.writeHead(405).end();
  }

  function restArtifact(artifact: StoredArtifact, repository: string) {
    return {
      id: artifact.id,
      name: artifact.name,
      size_in_bytes: artifact.size,
      url: `${url}/repos/${repository}/actions/artifacts/${artifact.id}`,
      archive_download_url: `${url}/repos/${repository}/actions/artifacts/${artifact.id}/zip`,
      expired: false,
      digest: artifact.digest,
      created_at: artifact.createdAt,
      updated_at: artifact.createdAt,
      workflow_run: { id: artifact.runId },
    };
  }

  /** The GitHub REST API, as far as the library's findBy paths and delete mode use it. */
  function handleRest(pathname: string, query: URLSearchParams, request: IncomingMessage, response: ServerResponse) {
    const notFound = () =>
      sendJson(response, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    if (!request.headers.authorization) {
      sendJson(response, 401, { message: 'Requires authentication' });
      return;
    }
    const route = /^\/repos\/([^/]+)\/([^/]+)\/actions\/(.+)$/.exec(pathname);
    if (!route) return notFound();
    const repository = `${route[1]}/${route[2]}`;
    const rest = route[3]!;
    const ownsRun = (runId: number) => repositoryOf.get(runId) === repository.toLowerCase();
    if (request.method === 'DELETE') return deleteByRest(rest, request, response, ownsRun);
    if (request.method !== 'GET') return notFound();
    // A repository the service has no run of is one the token cannot see: 404, as for the artifacts routes.
    const known = [...repositoryOf.values()].includes(repository.toLowerCase());
    const runs = known ? workflowRuns.answer(repository, rest, query, url) : undefined;
    if (runs) {
      sendJson(response, runs.status, runs.body, runs.headers);
      return;
    }

    const list = /^runs\/(\d+)\/artifacts$/.exec(rest);
    if (list && ownsRun(Number(list[1]))) {
      const name = query.get('name');
      const perPage = Number(query.get('per_page') ?? 30);
      const page = Number(query.get('page') ?? 1);
      const matching = finalized(Number(list[1])).filter((a) => name === null || a.name === name);
      const pageOf = matching.slice((page - 1) * perPage, page * perPage);
      const artifacts = pageOf.map((artifact) => restArtifact(artifact, repository));
      sendJson(response, 200, { total_count: matching.length, artifacts });
      return;
    }

    const download = /^artifacts\/(\d+)\/zip$/.exec(rest);
    const artifact = download && stored.find((a) => a.id !== 0 && a.id === Number(download[1]) && ownsRun(a.runId));
    if (artifact) {
      response.writeHead(302, { Location: blobUrl(artifact, 'read'), 'Content-Length': 0 }).end();
      return;
    }
    notFound();
  }

  /** `DELETE /repos/{owner}/{repo}/actions/artifacts/{id}`: 204, 404 for an artifact not of that repository, 403 read-only. */
  function deleteByRest(
    rest: string,
    request: IncomingMessage,
    response: ServerResponse,
    ownsRun: (runId: number) => boolean,
  ): Promise<void> | void {
    const route = /^artifacts\/(\d+)$/.exec(rest);
    const artifact = route && stored.find((a) => a.id !== 0 && a.id === Number(route[1]) && ownsRun(a.runId));
    if (/\s(\S+)$/.exec(request.headers.authorization ?? '')?.[1] === READ_ONLY_TOKEN) {
      sendJson(response, 403, {
        message: 'Resource not accessible by integration',
        documentation_url: 'https://docs.github.com/rest/actions/artifacts#delete-an-artifact',
        status: '403',
      });
      return;
    }
    if (!artifact) {
      sendJson(response, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      return;
    }
    return removeArtifacts([artifact]).then(() => void response.writeHead(204).end());
  }

  async function removeArtifacts(doomed: StoredArtifact[]): Promise<void> {
    for (const artifact of doomed) {
      stored.splice(stored.indexOf(artifact), 1);
      await rm(blobFile(artifact), { force: true });
      await rm(path.join(blocksDir, artifact.key), { recursive: true, force: true });
    }
  }

  const server = createServer((request, response) => {
    const { pathname, searchParams } = new URL(request.url ?? '/', 'http://localhost');
    const comp = searchParams.get('comp');
    const range = request.method === 'GET' && pathname.startsWith(BLOB_PREFIX) ? rangeHeader(request) : undefined;
    received.push(
      `${request.method} ${pathname}${comp ? `?comp=${comp}` : ''}${range === undefined ? '' : ` range=${range}`}`,
    );

    const restFault =
      pathname.startsWith(TWIRP_PREFIX) || pathname.startsWith(BLOB_PREFIX)
        ? undefined
        : ((request.method === 'DELETE' ? takeFault('rest-delete') : undefined) ?? takeFault('rest'));
    const handled = pathname.startsWith(TWIRP_PREFIX)
      ? handleTwirp(pathname.slice(TWIRP_PREFIX.length), request, response)
      : pathname.startsWith(BLOB_PREFIX)
        ? handleBlob(pathname.split('/').at(-1) ?? '', searchParams, request, response)
        : restFault
          ? drain(request).then(() => answerFault(restFault, request, response, 'rest'))
          : Promise.resolve(handleRest(pathname, searchParams, request, response));

    handled.catch((error: unknown) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof TwirpError) {
        sendJson(response, error.status, { code: error.code, msg: error.message });
        return;
      }
      // 500 rather than a crash, as JSON: the library reads every body as JSON before looking at the status.
      sendJson(response, 500, { code: 'internal', msg: error instanceof Error ? error.message : String(error) });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    env(runId = 1, repository = REPOSITORY) {
      repositoryOf.set(runId, repository.toLowerCase());
      return {
        ACTIONS_RUNTIME_TOKEN: runtimeToken(runId),
        ACTIONS_RESULTS_URL: `${url}/`,
        GITHUB_API_URL: url,
        // Any other host makes the library refuse to work, taking it for GitHub Enterprise Server.
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_REPOSITORY: repository,
        GITHUB_RUN_ID: String(runId),
        // The Azure SDK would send blob requests through any HTTP(S)_PROXY of the environment but for these hosts.
        NO_PROXY: '127.0.0.1,localhost',
      };
    },
    artifacts(runId = 1) {
      return finalized(runId).map(({ id, name, size, digest }) => ({ id, name, size, digest }));
    },
    addRun(runId, run, repository = REPOSITORY) {
      repositoryOf.set(runId, repository.toLowerCase());
      workflowRuns.add(runId, repository, run);
    },
    blobPath(runId, name) {
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new Error(`run ${runId} has no artifact named ${name}`);
      return stitched(artifact);
    },
    expiresAt(runId, name) {
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new Error(`run ${runId} has no artifact named ${name}`);
      return artifact.expiresAt;
    },
    forgetDigest(runId, name) {
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new Error(`run ${runId} has no artifact named ${name}`);
      artifact.digest = '';
    },
    requests() {
      return [...received];
    },
    bytesServed(runId, name) {
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new Error(`run ${runId} has no artifact named ${name}`);
      return served.get(artifact.key) ?? 0;
    },
    inject(fault) {
      injected.push({ fault: checkedFault(fault), left: fault.times ?? 1 });
    },
    clearFaults() {
      injected = [];
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      rate: { type: 'string' },
      'upload-mb-per-second': { type: 'string' },
      'download-mb-per-second': { type: 'string' },
    },
  });
  const mbps = (text: string | undefined) => (text === undefined ? undefined : Number(text) * MB);
  const rate: Rate =
    values.rate === 'github'
      ? GITHUB_RATE
      : { upload: mbps(values['upload-mb-per-second']), download: mbps(values['download-mb-per-second']) };
  const service = await startArtifactService({ port: Number(values.port), rate });
  for (const [key, value] of Object.entries(service.env(1))) console.log(`${key}=${value}`);
  const stop = () => void service.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
