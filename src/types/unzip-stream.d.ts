/** The part of unzip-stream (the zip reader @actions/artifact uses) that artifact-download.ts uses. */
declare module 'unzip-stream' {
  import type { Duplex, PassThrough } from 'node:stream';

  export interface Entry extends PassThrough {
    path: string;
    type: 'File' | 'Directory';
    size?: number;
    autodrain(): void;
  }

  export function Parse(options?: { debug?: boolean }): Duplex;
  const unzip: { Parse: typeof Parse };
  export default unzip;
}
