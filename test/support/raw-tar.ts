/**
 * Tar archives byte by byte, for the header shapes no tar writer library will produce: extended headers in any
 * order, global headers, sparse and prefix fields, sizes on directories. Each header is checksummed as ustar does.
 */
export const BLOCK = 512;

export interface RawHeader {
  name: string;
  size?: number;
  /** The typeflag character; `'\0'` for the old regular-file flag. */
  type?: string;
  linkname?: string;
  /** The ustar prefix field (bytes 345-499). */
  prefix?: string;
  /** Bytes 257-264: `ustar\0` + `00` by default; `ustar  \0` is GNU's. */
  magic?: string;
  mode?: number;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One checksummed header block. */
export function rawHeader({
  name,
  size = 0,
  type = '0',
  linkname = '',
  prefix = '',
  magic = 'ustar\u000000',
  mode = 0o644,
}: RawHeader): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'latin1');
  block.write(octal(mode, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1');
  block.write(octal(0, 8), 116, 'latin1');
  block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(0, 12), 136, 'latin1');
  block.write(type, 156, 1, 'latin1');
  block.write(linkname, 157, 100, 'latin1');
  block.write(magic, 257, 8, 'latin1');
  block.write(prefix, 345, 155, 'latin1');
  checksum(block);
  return block;
}

/** Writes the ustar checksum of `block` (the sum of its bytes, the checksum field counted as spaces). */
export function checksum(block: Buffer, at = 0): void {
  block.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 'latin1');
}

export function padded(content: Buffer): Buffer {
  return Buffer.concat([content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK)]);
}

/** PAX records, in the order given (so a key may repeat). */
export function paxRecords(records: Array<[string, string]>): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = ` ${key}=${value}\n`;
      let length = Buffer.byteLength(body) + 1;
      while (String(length).length + Buffer.byteLength(body) !== length) length++;
      return Buffer.from(`${length}${body}`);
    }),
  );
}

/** An extended header (`x`, `g`, `L` or `K`) with its content. */
export function extended(type: 'x' | 'g' | 'L' | 'K', content: Buffer | string): Buffer {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(`${content}\0`);
  const name = type === 'x' || type === 'g' ? 'PaxHeader' : '././@LongLink';
  return Buffer.concat([rawHeader({ name, size: data.length, type }), padded(data)]);
}

export function pax(records: Array<[string, string]>, type: 'x' | 'g' = 'x'): Buffer {
  return extended(type, paxRecords(records));
}

/** A whole entry: header and padded content. */
export function entry(header: RawHeader, content: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return Buffer.concat([rawHeader({ size: data.length, ...header }), padded(data)]);
}

export const END = Buffer.alloc(2 * BLOCK);
