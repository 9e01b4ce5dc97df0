/** The few tar entries the action writes itself: the headers are node-tar's. */
import { Header } from 'tar/header';
import { BLOCK } from './tar-header.ts';

/**
 * One plain ustar header for a regular file (no PAX, no prefix: names up to 100 bytes), written by node-tar's
 * Header, the library the action was specified with.
 */
export function tarHeader(name: string, size: number, mtime = 0): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name "${name}" is longer than 100 bytes`);
  const header = new Header({
    path: name,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: new Date(mtime * 1000),
    type: 'File',
  });
  header.encode();
  return header.block!;
}

/** A whole regular-file entry: header, content, and the zero padding to the next block. */
export function tarEntry(name: string, content: Buffer): Buffer {
  const padding = (BLOCK - (content.length % BLOCK)) % BLOCK;
  return Buffer.concat([tarHeader(name, content.length), content, Buffer.alloc(padding)]);
}

/** The two zero blocks that end every tar archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);
