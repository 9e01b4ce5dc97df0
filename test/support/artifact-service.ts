/**
 * A local stand-in for GitHub's artifact backend that the real @actions/artifact library talks to over real HTTP:
 * the Results service (Twirp over JSON), the blob store behind its signed URLs, and the few GitHub REST endpoints
 * the library calls for another run's artifacts (`findBy`). Artifacts live per workflow run; a run's numeric id is
 * both the Results service's workflow_run_backend_id and the REST run_id. As on GitHub, a run belongs to one
 * repository (any `owner/name`, given to `env`), which the REST API matches without regard to case, and every signed
 * URL carries a fresh random signature: clients mask it in all later log lines, so it must never be a word.
 *
 * Run on its own for the demo: `node test/support/artifact-service.ts --port 8765` prints the environment of a job
 * of run 1 as KEY=VALUE lines and serves until killed.
 *
 * Loopback moves blobs at memory speed; GitHub's artifact storage does not. `rate` (or `--rate github`, or
 * `--upload-mb-per-second N --download-mb-per-second N`) limits the blob store's throughput, shared by every connection in a direction,
 * to give benchmarks the shape of the real network (see GITHUB_RATE).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

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
  /** Drops the digest recorded for a run's artifact, as for artifacts uploaded before the service recorded any. */
  forgetDigest(runId: number, name: string): void;
  /** `METHOD /path` of every request received so far, with `?comp=…` for blob operations. */
  requests(): string[];
  close(): Promise<void>;
}

export const REPOSITORY = 'octo-org/octo-repo';

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

  stage(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        const now = performance.now();
        this.#next = Math.max(now, this.#next) + (chunk.length / this.#bytesPerSecond) * 1000;
        const wait = this.#next - now;
        if (wait < MIN_WAIT_MS) callback(null, chunk);
        else sleep(wait).then(() => callback(null, chunk), callback);
      },
    });
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

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
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

/** The bytes of `files`, one after another. */
async function* blobContent(files: string[]): AsyncGenerator<Buffer> {
  for (const file of files) yield* createReadStream(file) as AsyncIterable<Buffer>;
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

export async function startArtifactService(
  options: { port?: number; rate?: Rate; faults?: Faults } = {},
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
  let lastArtifactId = 1000;
  let lastBlobKey = 0;
  let url = '';
  /** Run id → its repository, lowercased: GitHub treats `Wikid82/Charon` and `wikid82/charon` as one repository. */
  const repositoryOf = new Map<number, string>();
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
      for (const artifact of doomed) {
        stored.splice(stored.indexOf(artifact), 1);
        await rm(blobFile(artifact), { force: true });
        await rm(path.join(blocksDir, artifact.key), { recursive: true, force: true });
      }
      return { ok: true, artifact_id: String(latest.id) };
    },
  };

  async function handleTwirp(method: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const handler = Object.hasOwn(twirp, method) ? twirp[method] : undefined;
    if (!handler || request.method !== 'POST') throw new TwirpError(404, 'bad_route', `no such method: ${method}`);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readText(request)) as Record<string, unknown>;
    } catch (error) {
      if (error instanceof TwirpError) throw error;
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
      const ids = [...(await readText(request)).matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)].map(
        (match) => match[2] ?? '',
      );
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
      const files = artifact.parts ?? [blobFile(artifact)];
      let size = 0;
      for (const file of files) size += (await stat(file)).size;
      response.writeHead(200, {
        'Content-Type': artifact.contentType,
        'Content-Length': size,
        'Content-Disposition': `attachment; filename="${artifact.name}"; filename*=UTF-8''${encodeURIComponent(artifact.name)}`,
      });
      if (cutsLeft > 0) {
        cutsLeft -= 1;
        let left = Math.floor(size / 2);
        for await (const chunk of blobContent(files) as AsyncIterable<Buffer>) {
          const piece = chunk.subarray(0, left);
          left -= piece.length;
          if (!response.write(piece)) await once(response, 'drain');
          if (left === 0) break;
        }
        await sleep(50);
        response.destroy();
        return;
      }
      await pipeline([Readable.from(blobContent(files)), ...(downloads ? [downloads.stage()] : []), response]);
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

  /** The GitHub REST API, as far as the library's findBy paths use it. */
  function handleRest(pathname: string, query: URLSearchParams, request: IncomingMessage, response: ServerResponse) {
    const notFound = () =>
      sendJson(response, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    if (!request.headers.authorization) {
      sendJson(response, 401, { message: 'Requires authentication' });
      return;
    }
    const route = /^\/repos\/([^/]+)\/([^/]+)\/actions\/(.+)$/.exec(pathname);
    if (request.method !== 'GET' || !route) return notFound();
    const repository = `${route[1]}/${route[2]}`;
    const rest = route[3]!;
    const ownsRun = (runId: number) => repositoryOf.get(runId) === repository.toLowerCase();

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

  const server = createServer((request, response) => {
    const { pathname, searchParams } = new URL(request.url ?? '/', 'http://localhost');
    const comp = searchParams.get('comp');
    received.push(`${request.method} ${pathname}${comp ? `?comp=${comp}` : ''}`);

    const handled = pathname.startsWith(TWIRP_PREFIX)
      ? handleTwirp(pathname.slice(TWIRP_PREFIX.length), request, response)
      : pathname.startsWith(BLOB_PREFIX)
        ? handleBlob(pathname.split('/').at(-1) ?? '', searchParams, request, response)
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
    blobPath(runId, name) {
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new Error(`run ${runId} has no artifact named ${name}`);
      return stitched(artifact);
    },
    forgetDigest(runId, name) {
      const artifact = latestNamed(runId, name);
      if (!artifact) throw new Error(`run ${runId} has no artifact named ${name}`);
      artifact.digest = '';
    },
    requests() {
      return [...received];
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
