/** Running bytes through stream stages in tests. */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** `input` fed through `stages` in pieces of `chunkSize` bytes; resolves with everything that came out. */
export async function collect(
  stages: NodeJS.ReadWriteStream[],
  input: Buffer,
  chunkSize = input.length,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let at = 0; at < input.length; at += Math.max(1, chunkSize)) pieces.push(input.subarray(at, at + chunkSize));
  await pipeline([
    Readable.from(pieces),
    ...stages,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  ]);
  return Buffer.concat(chunks);
}
