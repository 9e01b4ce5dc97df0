/** The values each choice input allows, and the defaults, in one place. */

export const Modes = ['save', 'load', 'delete'] as const;
export type Mode = (typeof Modes)[number];

export const Compressions = ['zstd', 'gzip', 'none'] as const;
export type Compression = (typeof Compressions)[number];

export const IfMissingPolicies = ['error', 'warn'] as const;
export type IfMissing = (typeof IfMissingPolicies)[number];

export const Engines = ['docker', 'podman'] as const;
export type Engine = (typeof Engines)[number];

export const DEFAULT_ARTIFACT_NAME = 'docker-image';

/** Levels each compressor accepts, and the default when `compression-level` is empty. */
export const CompressionLevels: Record<Exclude<Compression, 'none'>, { min: number; max: number; default: number }> = {
  zstd: { min: 1, max: 19, default: 3 },
  gzip: { min: 1, max: 9, default: 6 },
};

/** File name suffix of the tarball for each compression, so tools that go by name (and people) know it. */
export const TarballSuffix: Record<Compression, string> = {
  zstd: '.tar.zst',
  gzip: '.tar.gz',
  none: '.tar',
};

/**
 * Size of the chunks every streaming stage reads, writes and (de)compresses into: zlib's 16 KiB default makes a GiB
 * 65,536 hand-offs between stages (docs/performance.md, "Chunk size").
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;
