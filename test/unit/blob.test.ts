/**
 * downloadBlob (src/artifacts/blob.ts) into a disk that fills part-way through a write: the file holds exactly the bytes
 * the download says it wrote, the blob's own prefix, and the download fails with the disk's error (which load mode names
 * as disk space). Counting a short write as whole left a hole that the digest check then called a replaced artifact.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { downloadBlob } from '../../src/artifacts/blob.ts';
import { withTmpfs } from '../support/mounts.ts';

const blob = randomBytes(256 * 1024);
let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((_request, response) => {
    response.writeHead(200, { 'Content-Length': blob.length });
    // An odd first piece, so that no later write starts on a page boundary and the one the disk cannot hold is cut.
    response.write(blob.subarray(0, 5001));
    void sleep(30).then(() => response.end(blob.subarray(5001)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

it('a disk that fills within a write holds exactly the bytes counted, and the download fails with the disk error', async (context) => {
  await withTmpfs('size=64k', context, async (mountPoint) => {
    const file = path.join(mountPoint, 'blob');
    const download = downloadBlob({ url: async () => url, file, size: blob.length, what: 'artifact `blob`' });
    const failure = await download.complete.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((failure as NodeJS.ErrnoException | undefined)?.code).toBe('ENOSPC');
    const held = await readFile(file);
    expect((await stat(file)).size).toBe(download.written());
    expect(held.length).toBeGreaterThan(5001);
    expect(held.equals(blob.subarray(0, held.length))).toBe(true);
  });
});
