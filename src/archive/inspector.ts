/** The archive reader as a stream: a Writable a plain tar is piped into, whose report settles once it has ended. */
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError, messageOf } from '../errors.ts';
import { Collector, DEFAULT_MAX_JSON_BYTES } from './contents.ts';
import type { ArchiveReport } from './model.ts';
import { TarReader } from './tar.ts';
import { verifyContents } from './verify.ts';

export interface InspectorOptions {
  /** Largest JSON document (manifest, index, config) accepted; 8 MiB by default. */
  maxJsonBytes?: number;
  /** Every layer, uncompressed, together (`max-image-size`); DEFAULT_MAX_IMAGE_BYTES by default. */
  maxImageBytes?: number;
}

/** A Writable you pipe a plain (already decompressed) tar into; `report` settles when it finishes. */
export function createArchiveInspector(options: InspectorOptions = {}): {
  stream: Writable;
  report: Promise<ArchiveReport>;
} {
  const maxJsonBytes = options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const collector = new Collector(maxJsonBytes, options.maxImageBytes);
  const reader = new TarReader(collector);
  let settle: { resolve: (report: ArchiveReport) => void; reject: (error: unknown) => void };
  const report = new Promise<ArchiveReport>((resolve, reject) => (settle = { resolve, reject }));
  // Errors reach the caller through `report`; these keep an unobserved one from crashing the process.
  report.catch(() => {});
  let done = false;
  const finish = (outcome: () => ArchiveReport): void => {
    if (done) return;
    done = true;
    try {
      settle.resolve(outcome());
    } catch (error) {
      settle.reject(error);
    }
  };
  const failed = (error: unknown, callback: (error: Error) => void) => {
    collector.destroy();
    finish(() => {
      throw error;
    });
    callback(error as Error);
  };
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        reader.write(chunk);
      } catch (error) {
        failed(error, callback);
        return;
      }
      const room = collector.room();
      if (room)
        room.then(
          () => callback(),
          (error: unknown) => failed(error, callback),
        );
      else callback();
    },
    final(callback) {
      const end = async () => {
        reader.end();
        await collector.settled();
        return verifyContents(collector.contents, reader.offset, collector.entries);
      };
      end().then(
        (result) => {
          finish(() => result);
          callback();
        },
        (error: unknown) => failed(error, callback),
      );
    },
  });
  stream.on('error', () => {});
  stream.on('close', () => {
    collector.destroy();
    finish(() => {
      throw new UserError(
        `The tarball stream stopped after ${reader.offset} bytes, before its end; the image could not be verified.`,
      );
    });
  });
  return { stream, report };
}

/** Inspects a whole plain tar from a stream or an async iterable of chunks. */
export async function inspectArchive(
  input: Readable | AsyncIterable<Buffer>,
  options: InspectorOptions = {},
): Promise<ArchiveReport> {
  const { stream, report } = createArchiveInspector(options);
  try {
    await pipeline(input, stream);
  } catch (error) {
    // A UserError is the inspector's own verdict; anything else is the input failing (a read or decompression error).
    throw error instanceof UserError ? error : new UserError(`Reading the tarball failed: ${messageOf(error)}`);
  }
  return report;
}
