/**
 * The local artifact service behaves as GitHub does where clients can tell: any repository, owner and name compared
 * without regard to case, signed URLs whose signature is a fresh secret (clients mask it in every later log line), and
 * blob downloads of a byte range as Azure serves them. And it fails on demand, in the ways networks and services do.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  READ_ONLY_TOKEN,
  REPOSITORY,
  startArtifactService,
  type ArtifactService,
  type Fault,
} from '../support/artifact-service.ts';

const savedEnv = { ...process.env };
let service: ArtifactService;
let artifact: typeof import('../../src/artifacts/index.ts');
let work: string;

beforeAll(async () => {
  service = await startArtifactService();
  work = await mkdtemp(path.join(tmpdir(), 'artifact-service-test-'));
  Object.assign(process.env, service.env(1));
  // Only now: @actions/github fixes its API URL (the service's random port) when first imported.
  artifact = await import('../../src/artifacts/index.ts');
});

afterAll(async () => {
  process.env = savedEnv;
  await service?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function upload(runId: number, name: string, repository?: string): Promise<void> {
  Object.assign(process.env, service.env(runId, repository));
  const file = path.join(work, `${name}.bin`);
  await writeFile(file, randomBytes(1000));
  await artifact.uploadFile(file, name, { overwrite: false });
}

/** Calls `method` of the Twirp API of `on` (the shared service unless given) as a job of `runId`, for any answer. */
function callTwirp(
  runId: number,
  method: string,
  body: Record<string, unknown>,
  { on = service, signal }: { on?: ArtifactService; signal?: AbortSignal } = {},
): Promise<Response> {
  const env = on.env(runId);
  return fetch(`${env.ACTIONS_RESULTS_URL}twirp/github.actions.results.api.v1.ArtifactService/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env.ACTIONS_RUNTIME_TOKEN}` },
    body: JSON.stringify({ workflow_run_backend_id: String(runId), workflow_job_run_backend_id: 'job', ...body }),
    signal,
  });
}

/** Calls `method` of the service's Twirp API as a job of `runId`; the answer must be 200. */
async function twirp(
  runId: number,
  method: string,
  body: Record<string, unknown>,
  on: ArtifactService = service,
): Promise<unknown> {
  const response = await callTwirp(runId, method, body, { on });
  expect(response.status, method).toBe(200);
  return response.json();
}

const blockId = (n: number) => Buffer.from(`block-${n}`).toString('base64');
const blockList = (ids: string[]) =>
  `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;

describe('the local artifact service', () => {
  it("commits a block list as Azure does: the blocks in the list's order, and a block never staged refused", async () => {
    const { signed_upload_url: upload } = (await twirp(34, 'CreateArtifact', { name: 'blocks', version: 4 })) as {
      signed_upload_url: string;
    };
    const blocks = [randomBytes(3000), randomBytes(5000), randomBytes(1)];
    for (const [n, block] of blocks.entries()) {
      const staged = await fetch(`${upload}&comp=block&blockid=${encodeURIComponent(blockId(n))}`, {
        method: 'PUT',
        body: block,
      });
      expect(staged.status).toBe(201);
    }
    const missing = await fetch(`${upload}&comp=blocklist`, {
      method: 'PUT',
      body: blockList([blockId(0), blockId(7)]),
    });
    expect(missing.status).toBe(400);
    expect(missing.headers.get('x-ms-error-code')).toBe('InvalidBlockList');
    // Out of the order they were staged in, one of them twice.
    const order = [2, 0, 1, 0];
    const committed = await fetch(`${upload}&comp=blocklist`, {
      method: 'PUT',
      headers: { 'x-ms-blob-content-type': 'application/octet-stream' },
      body: blockList(order.map(blockId)),
    });
    expect(committed.status).toBe(201);
    const expected = Buffer.concat(order.map((n) => blocks[n]!));
    await twirp(34, 'FinalizeArtifact', { name: 'blocks', size: String(expected.length) });
    // Downloaded from the blocks as committed, then from the one file the blocks are stitched into for tests.
    Object.assign(process.env, service.env(34));
    for (const round of ['blocks', 'stitched']) {
      if (round === 'stitched') expect(await readFile(service.blobPath(34, 'blocks'))).toEqual(expected);
      const into = await mkdtemp(path.join(work, 'blocks-'));
      const download = await artifact.downloadFile('blocks', into, {});
      await download.downloaded;
      expect(await readFile(download.file), round).toEqual(expected);
    }
  });

  it("serves any repository's runs, its owner and name compared without regard to case", async () => {
    await upload(31, 'charon-image', 'Wikid82/Charon');
    Object.assign(process.env, service.env(32, 'Wikid82/Charon'));
    for (const repository of ['Wikid82/Charon', 'wikid82/charon', 'WIKID82/CHARON']) {
      expect(await artifact.listArtifactNames({ runId: 31, repository, token: 'ghs_local' })).toEqual(['charon-image']);
    }
    // A run belongs to one repository: another repository's API does not show it.
    await expect(
      artifact.listArtifactNames({ runId: 31, repository: 'octo-org/octo-repo', token: 'ghs_local' }),
    ).rejects.toThrow(/Not Found/);
  });

  it("deletes a repository's artifact by id over REST: 204, then 404; 404 from another repository; 403 read-only", async () => {
    await upload(60, 'doomed');
    await upload(61, 'doomed', 'other-org/other-repo');
    const ours = service.artifacts(60)[0]!;
    const theirs = service.artifacts(61)[0]!;
    const remove = (repository: string, id: number, token = 'ghs_local') =>
      fetch(`${service.url}/repos/${repository}/actions/artifacts/${id}`, {
        method: 'DELETE',
        headers: { Authorization: `token ${token}` },
      });
    const readOnly = await remove(REPOSITORY, ours.id, READ_ONLY_TOKEN);
    expect(readOnly.status).toBe(403);
    expect(await readOnly.json()).toMatchObject({ message: 'Resource not accessible by integration' });
    expect((await remove(REPOSITORY, theirs.id)).status).toBe(404);
    // A rest-delete fault is met by the DELETE alone, not by the listing before it.
    service.inject({ target: 'rest-delete', kind: 'status', status: 503 });
    const listing = await fetch(`${service.url}/repos/${REPOSITORY}/actions/runs/60/artifacts`, {
      headers: { Authorization: 'token ghs_local' },
    });
    expect(listing.status).toBe(200);
    await listing.arrayBuffer();
    expect((await remove(REPOSITORY, ours.id)).status).toBe(503);
    expect(service.artifacts(60)).toHaveLength(1);
    expect((await remove(REPOSITORY, ours.id)).status).toBe(204);
    expect((await remove(REPOSITORY, ours.id)).status).toBe(404);
    expect(service.artifacts(60)).toEqual([]);
    expect(service.artifacts(61)).toMatchObject([{ id: theirs.id, name: 'doomed' }]);
  });

  it('signs every URL with a fresh random signature, so the secret clients mask is never a word', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await upload(33, 'first');
      await upload(33, 'second');
      await (
        await artifact.downloadFile('first', await mkdtemp(path.join(work, 'download-')), {})
      ).downloaded;
    } finally {
      spy.mockRestore();
    }
    const masked = written
      .join('')
      .match(/^::add-mask::.*$/gm)
      ?.map((line) => line.slice('::add-mask::'.length));
    expect(masked, written.join('')).toBeDefined();
    // Two uploads and a download: three URLs, three secrets, none of them reused or readable.
    expect(new Set(masked).size).toBeGreaterThanOrEqual(3);
    for (const secret of masked!) expect(secret).toMatch(/^[0-9a-f]{32}$/);
  });
});

/** Creates artifact `name` of run `runId` and commits `blocks` as its block list, not finalized; its upload URL. */
async function committed(runId: number, name: string, blocks: Buffer<ArrayBuffer>[], on = service): Promise<string> {
  const { signed_upload_url: upload } = (await twirp(runId, 'CreateArtifact', { name, version: 4 }, on)) as {
    signed_upload_url: string;
  };
  for (const [n, block] of blocks.entries()) {
    const staged = await fetch(`${upload}&comp=block&blockid=${encodeURIComponent(blockId(n))}`, {
      method: 'PUT',
      body: block,
    });
    expect(staged.status).toBe(201);
  }
  const list = await fetch(`${upload}&comp=blocklist`, {
    method: 'PUT',
    body: blockList(blocks.map((_, n) => blockId(n))),
  });
  expect(list.status).toBe(201);
  return upload;
}

/** A finalized artifact of `blocks`, kept as its blocks until something calls blobPath: its download URL and bytes. */
async function finalized(runId: number, name: string, blocks: Buffer<ArrayBuffer>[], on = service) {
  await committed(runId, name, blocks, on);
  const bytes = Buffer.concat(blocks);
  await twirp(runId, 'FinalizeArtifact', { name, size: String(bytes.length) }, on);
  const { signed_url: url } = (await twirp(runId, 'GetSignedArtifactURL', { name }, on)) as { signed_url: string };
  return { url, bytes, blob: new URL(url).pathname };
}

/** A body read as far as it goes, and the error that ended it early, if one did. */
async function readBody(response: Response): Promise<{ bytes: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(chunks) };
      chunks.push(Buffer.from(value));
    }
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

/** Three blocks, 9000 bytes: ranges can start in one block and end in another. */
const nineThousand = () => [randomBytes(3000), randomBytes(5000), randomBytes(1000)];

describe('byte ranges of a blob download', () => {
  it('serves a range as Azure does, from the committed blocks and from the stitched file alike', async () => {
    const { url, bytes, blob } = await finalized(40, 'ranges', nineThousand());
    const cases: { headers: Record<string, string>; start: number; end: number }[] = [
      { headers: { Range: 'bytes=100-' }, start: 100, end: 9000 },
      { headers: { Range: 'bytes=0-0' }, start: 0, end: 1 },
      // Across the first block's end, and across the second's.
      { headers: { Range: 'bytes=2990-3009' }, start: 2990, end: 3010 },
      { headers: { 'x-ms-range': 'bytes=2000-8499' }, start: 2000, end: 8500 },
      // An end past the blob's is cut to it; the last N bytes.
      { headers: { Range: 'bytes=8500-20000' }, start: 8500, end: 9000 },
      { headers: { Range: 'bytes=-10' }, start: 8990, end: 9000 },
      // x-ms-range wins over Range.
      { headers: { Range: 'bytes=0-9', 'x-ms-range': 'bytes=10-19' }, start: 10, end: 20 },
    ];
    for (const round of ['blocks', 'stitched']) {
      if (round === 'stitched') expect(await readFile(service.blobPath(40, 'ranges'))).toEqual(bytes);
      const whole = await fetch(url);
      expect(whole.status, round).toBe(200);
      expect(whole.headers.get('accept-ranges')).toBe('bytes');
      expect(whole.headers.get('content-length')).toBe('9000');
      expect(whole.headers.get('content-range')).toBeNull();
      expect(Buffer.from(await whole.arrayBuffer())).toEqual(bytes);
      for (const { headers, start, end } of cases) {
        const part = await fetch(url, { headers });
        const label = `${round} ${JSON.stringify(headers)}`;
        expect(part.status, label).toBe(206);
        expect(part.headers.get('content-range'), label).toBe(`bytes ${start}-${end - 1}/9000`);
        expect(part.headers.get('content-length'), label).toBe(String(end - start));
        expect(part.headers.get('accept-ranges'), label).toBe('bytes');
        for (const header of ['content-type', 'content-disposition']) {
          expect(part.headers.get(header), label).toBe(whole.headers.get(header));
        }
        expect(Buffer.from(await part.arrayBuffer()), label).toEqual(bytes.subarray(start, end));
      }
      for (const range of ['bytes=9000-', 'bytes=12000-12999', 'bytes=-0']) {
        const refused = await fetch(url, { headers: { Range: range } });
        expect(refused.status, `${round} ${range}`).toBe(416);
        expect(refused.headers.get('content-range')).toBe('bytes */9000');
        expect(await refused.text()).toBe('');
      }
      // What is no single range of bytes is ignored, as HTTP allows: the whole blob.
      for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-2']) {
        const ignored = await fetch(url, { headers: { Range: range } });
        expect(ignored.status, range).toBe(200);
        expect(Buffer.from(await ignored.arrayBuffer())).toEqual(bytes);
      }
    }
    const gets = service.requests().filter((request) => request.startsWith(`GET ${blob}`));
    expect(gets).toContain(`GET ${blob}`);
    expect(gets).toContain(`GET ${blob} range=bytes=100-`);
    expect(gets).toContain(`GET ${blob} range=bytes=10-19`);
  });

  it('counts the body bytes it sends for an artifact, every attempt, whole, ranged or cut short', async () => {
    const { url, bytes } = await finalized(41, 'counted', nineThousand());
    expect(service.bytesServed(41, 'counted')).toBe(0);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(bytes);
    expect(service.bytesServed(41, 'counted')).toBe(9000);
    await (await fetch(url, { headers: { Range: 'bytes=100-199' } })).arrayBuffer();
    expect(service.bytesServed(41, 'counted')).toBe(9100);
    await (await fetch(url, { headers: { Range: 'bytes=9000-' } })).arrayBuffer();
    service.inject({ target: 'blob-get', kind: 'close-early', after: 0.5 });
    await readBody(await fetch(url));
    expect(service.bytesServed(41, 'counted')).toBe(13_600);
    expect(() => service.bytesServed(41, 'no-such-artifact')).toThrow(/no artifact named no-such-artifact/);
  });
});

describe('injected faults', () => {
  it('answers an injected status, for as many requests as its times, faults for one target in the order injected', async () => {
    const { url, bytes } = await finalized(42, 'status', nineThousand());
    service.inject({ target: 'blob-get', kind: 'status', status: 503 });
    const refused = await fetch(url);
    expect(refused.status).toBe(503);
    expect(await refused.text()).toBe('');
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(bytes);

    service.inject({ target: 'GetSignedArtifactURL', kind: 'status', status: 500, times: 2 });
    service.inject({ target: 'GetSignedArtifactURL', kind: 'status', status: 429 });
    const statuses: number[] = [];
    for (let n = 0; n < 4; n++) {
      const response = await callTwirp(42, 'GetSignedArtifactURL', { name: 'status' });
      statuses.push(response.status);
      if (response.status !== 200) expect(await response.json()).toEqual({ code: 'unavailable', msg: 'injected' });
      else await response.arrayBuffer();
    }
    expect(statuses).toEqual([500, 500, 429, 200]);

    service.inject({ target: 'rest', kind: 'status', status: 502 });
    const rest = () =>
      fetch(`${service.url}/repos/${REPOSITORY}/actions/runs/42/artifacts`, { headers: { Authorization: 'token x' } });
    const restRefused = await rest();
    expect(restRefused.status).toBe(502);
    expect(await restRefused.json()).toEqual({ message: 'injected' });
    expect((await rest()).status).toBe(200);

    const { signed_upload_url: upload } = (await twirp(42, 'CreateArtifact', { name: 'refused', version: 4 })) as {
      signed_upload_url: string;
    };
    service.inject({ target: 'block-put', kind: 'status', status: 500 });
    service.inject({ target: 'block-list', kind: 'status', status: 503 });
    const put = () =>
      fetch(`${upload}&comp=block&blockid=${encodeURIComponent(blockId(0))}`, {
        method: 'PUT',
        body: randomBytes(1e5),
      });
    const list = () => fetch(`${upload}&comp=blocklist`, { method: 'PUT', body: blockList([blockId(0)]) });
    expect((await put()).status).toBe(500);
    expect((await put()).status).toBe(201);
    expect((await list()).status).toBe(503);
    expect((await list()).status).toBe(201);
  });

  it('drops the faults not used up at clearFaults', async () => {
    const { url } = await finalized(43, 'cleared', nineThousand());
    service.inject({ target: 'blob-get', kind: 'status', status: 503, times: 3 });
    service.inject({ target: 'ListArtifacts', kind: 'status', status: 500 });
    expect((await fetch(url)).status).toBe(503);
    service.clearFaults();
    expect((await fetch(url)).status).toBe(200);
    expect((await callTwirp(43, 'ListArtifacts', {})).status).toBe(200);
  });

  it('refuses a fault its target cannot make', async () => {
    const refused: unknown[] = [
      { target: 'FinalizeArtifact', kind: 'close-early', after: 10 },
      { target: 'block-put', kind: 'apply-then-reset' },
      { target: 'block-put', kind: 'reset', after: 10 },
      { target: 'blob-get', kind: 'stall-body', after: 1.5 },
      { target: 'blob-get', kind: 'stall-body' },
      { target: 'blob-get', kind: 'status', status: 99 },
      { target: 'blob-get', kind: 'status', status: 503, times: 0 },
      { target: 'blob-get', kind: 'lie-length', extra: 0 },
      { target: 'UploadArtifact', kind: 'status', status: 500 },
    ];
    for (const fault of refused) expect(() => service.inject(fault as Fault), JSON.stringify(fault)).toThrow();
  });

  it('keeps the client waiting for headers at stall-headers, until it gives up', async () => {
    const { url, bytes } = await finalized(44, 'stalled', nineThousand());
    service.inject({ target: 'blob-get', kind: 'stall-headers' });
    await expect(fetch(url, { signal: AbortSignal.timeout(500) })).rejects.toMatchObject({ name: 'TimeoutError' });
    service.inject({ target: 'CreateArtifact', kind: 'stall-headers' });
    await expect(
      callTwirp(44, 'CreateArtifact', { name: 'never', version: 4 }, { signal: AbortSignal.timeout(500) }),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(bytes);
  });

  it('sends the first bytes at stall-body and then nothing, the connection kept open', async () => {
    const { url, bytes } = await finalized(45, 'stalled-body', nineThousand());
    service.inject({ target: 'blob-get', kind: 'stall-body', after: 1000 });
    const response = await fetch(url, { signal: AbortSignal.timeout(500) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe('9000');
    const { bytes: received, error } = await readBody(response);
    expect(error).toMatchObject({ name: 'TimeoutError' });
    expect(received).toEqual(bytes.subarray(0, 1000));
    expect(service.bytesServed(45, 'stalled-body')).toBe(1000);
  });

  it('closes the connection cleanly at close-early, short of the length announced', async () => {
    const { url, bytes } = await finalized(46, 'cut', nineThousand());
    service.inject({ target: 'blob-get', kind: 'close-early', after: 0.6 });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe('9000');
    const { bytes: received, error } = await readBody(response);
    expect(error).toBeDefined();
    expect(received).toEqual(bytes.subarray(0, 5400));
    // Of a range, the fraction is of the range's body; a count of bytes is a count of bytes.
    service.inject({ target: 'blob-get', kind: 'close-early', after: 100, times: 2 });
    for (const range of ['bytes=4000-', 'bytes=8950-']) {
      const part = await fetch(url, { headers: { Range: range } });
      expect(part.status).toBe(206);
      const start = Number(/\d+/.exec(range)![0]);
      expect(part.headers.get('content-length')).toBe(String(9000 - start));
      const cut = await readBody(part);
      expect(cut.bytes).toEqual(bytes.subarray(start, start + 100));
      // A body no longer than the cut is whole.
      expect(cut.error === undefined).toBe(start === 8950);
    }
    expect(service.bytesServed(46, 'cut')).toBe(5400 + 100 + 50);
  });

  it('drops the connection at reset: mid-body for a download, unanswered for the rest', async () => {
    const { url, bytes } = await finalized(47, 'reset', nineThousand());
    service.inject({ target: 'blob-get', kind: 'reset', after: 2000 });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const { bytes: received, error } = await readBody(response);
    expect(error).toBeDefined();
    expect(received.length).toBeLessThanOrEqual(2000);
    expect(received).toEqual(bytes.subarray(0, received.length));
    expect(service.bytesServed(47, 'reset')).toBe(2000);

    service.inject({ target: 'blob-get', kind: 'reset' });
    await expect(fetch(url)).rejects.toThrow();
    service.inject({ target: 'ListArtifacts', kind: 'reset' });
    await expect(callTwirp(47, 'ListArtifacts', {})).rejects.toThrow();
    const { signed_upload_url: upload } = (await twirp(47, 'CreateArtifact', { name: 'reset-put', version: 4 })) as {
      signed_upload_url: string;
    };
    service.inject({ target: 'block-put', kind: 'reset' });
    await expect(
      fetch(`${upload}&comp=block&blockid=${encodeURIComponent(blockId(0))}`, {
        method: 'PUT',
        body: randomBytes(1e5),
      }),
    ).rejects.toThrow();
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(bytes);
  });

  it('announces more than it sends at lie-length', async () => {
    const { url, bytes } = await finalized(48, 'lying', nineThousand());
    service.inject({ target: 'blob-get', kind: 'lie-length', extra: 10 });
    const response = await fetch(url);
    expect(response.headers.get('content-length')).toBe('9010');
    const { bytes: received, error } = await readBody(response);
    expect(error).toBeDefined();
    expect(received).toEqual(bytes);
  });

  it('serves the whole blob with 200 at ignore-range', async () => {
    const { url, bytes } = await finalized(48, 'unranged', nineThousand());
    service.inject({ target: 'blob-get', kind: 'ignore-range' });
    const response = await fetch(url, { headers: { Range: 'bytes=100-' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-range')).toBeNull();
    expect(Buffer.from(await response.arrayBuffer())).toEqual(bytes);
    expect((await fetch(url, { headers: { Range: 'bytes=100-' } })).status).toBe(206);
  });

  it('finalizes the artifact at apply-then-reset on FinalizeArtifact, though the client hears nothing of it', async () => {
    await committed(49, 'applied', nineThousand());
    service.inject({ target: 'FinalizeArtifact', kind: 'apply-then-reset' });
    await expect(callTwirp(49, 'FinalizeArtifact', { name: 'applied', size: '9000' })).rejects.toThrow();
    expect(service.artifacts(49)).toMatchObject([{ name: 'applied', size: 9000 }]);
    // Finalized: a retry finds no upload pending.
    expect((await callTwirp(49, 'FinalizeArtifact', { name: 'applied', size: '9000' })).status).toBe(404);
  });

  it("keeps the constructor's faults, after the injected ones", async () => {
    const cutting = await startArtifactService({ faults: { cutDownloads: 1 } });
    try {
      const { url, bytes } = await finalized(1, 'cut-once', nineThousand(), cutting);
      cutting.inject({ target: 'blob-get', kind: 'status', status: 503 });
      expect((await fetch(url)).status).toBe(503);
      const cut = await readBody(await fetch(url));
      expect(cut.error).toBeDefined();
      expect(cut.bytes).toEqual(bytes.subarray(0, 4500));
      expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(bytes);
      expect(cutting.bytesServed(1, 'cut-once')).toBe(4500 + 9000);
    } finally {
      await cutting.close();
    }
  });
});
