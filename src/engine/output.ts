/**
 * What the engine's CLI prints, read without I/O: `image inspect`, `image ls`, `info`, `load`. Docker and podman each
 * have their own forms; what the action cannot read yields nothing rather than a guess.
 */
import { platformOfParts } from '../platform.ts';
import { formatDecimalBytes } from '../progress.ts';

export interface ImageInfo {
  id: string;
  repoTags: string[];
  created: string;
  size: number;
  platform: string;
  /** The image's diff_ids (RootFS.Layers). */
  layers: string[];
  /** Media type of what the ID names, on engines that report it (the containerd image store: index or manifest). */
  targetType: string | undefined;
}

/**
 * What decides an engine's image IDs and what it can load: Docker without the containerd image store (20.10, or
 * 25+ in graphdriver mode) keys images by config digest and loads only tarballs with a manifest.json; with the
 * containerd image store the ID is the digest of the index or manifest a tag names; podman keys by config digest.
 */
export type EngineKind = 'docker-graphdriver' | 'docker-containerd' | 'podman';

export interface ImageRow {
  /** `repository:tag`, or `<none>:<none>` for an untagged image. */
  reference: string;
  id: string;
  created: string;
  size: string;
}

export interface InspectResult {
  /** Each requested reference that exists, with its image. */
  found: Map<string, ImageInfo>;
  missing: string[];
}

interface InspectJson {
  Id?: string;
  RepoTags?: string[] | null;
  Created?: string;
  Size?: number;
  Os?: string;
  Architecture?: string;
  Variant?: string;
  RootFS?: { Layers?: string[] | null } | null;
  Descriptor?: { mediaType?: string } | null;
}

/** Parses `image inspect` output; an engine that printed nothing useful yields no images. */
export function parseInspectJson(stdout: string): ImageInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout || '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return (parsed as InspectJson[]).map((image) => ({
    id: normalizeImageId(image.Id ?? ''),
    repoTags: image.RepoTags ?? [],
    created: image.Created ?? '',
    size: image.Size ?? 0,
    platform: platformOfParts([image.Os, image.Architecture, image.Variant]),
    layers: (image.RootFS?.Layers ?? []).filter((layer) => typeof layer === 'string'),
    targetType: typeof image.Descriptor?.mediaType === 'string' ? image.Descriptor.mediaType : undefined,
  }));
}

/**
 * Parses `image ls --format '{{json .}}'`: docker prints one object a line (Repository, Tag, ID, CreatedAt, Size as
 * text); podman prints one JSON array of images (Names, Id, CreatedAt, Size in bytes), a row per name here.
 */
export function parseImageList(stdout: string): ImageRow[] {
  const trimmed = stdout.trim();
  if (trimmed.startsWith('[')) {
    let images: unknown;
    try {
      images = JSON.parse(trimmed);
    } catch {
      return [];
    }
    if (!Array.isArray(images)) return [];
    const objects = images.filter(
      (image): image is Record<string, unknown> => typeof image === 'object' && image !== null,
    );
    return objects.flatMap((image) => {
      const names = Array.isArray(image.Names) ? image.Names.filter((name) => typeof name === 'string') : [];
      const id = normalizeImageId(typeof image.Id === 'string' ? image.Id : '')
        .replace(/^sha256:/, '')
        .slice(0, 12);
      const created = typeof image.CreatedAt === 'string' ? image.CreatedAt : '';
      const size = typeof image.Size === 'number' ? formatDecimalBytes(image.Size) : String(image.Size ?? '');
      return (names.length > 0 ? names : ['<none>:<none>']).map((reference) => ({ reference, id, created, size }));
    });
  }
  const rows: ImageRow[] = [];
  for (const line of trimmed.split('\n')) {
    if (!line.trim()) continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const text = (key: string) => (typeof row[key] === 'string' ? (row[key] as string) : String(row[key] ?? ''));
    rows.push({
      reference: `${text('Repository') || '<none>'}:${text('Tag') || '<none>'}`,
      id: text('ID') || text('Id'),
      created: text('CreatedAt') || text('CreatedSince'),
      size: text('Size'),
    });
  }
  return rows;
}

/** Reads `docker info --format '{{json .DriverStatus}}'`: pairs of strings, one of them the snapshotter's type. */
export function isContainerdStore(driverStatus: string): boolean {
  let pairs: unknown;
  try {
    pairs = JSON.parse(driverStatus.trim() || 'null');
  } catch {
    return false;
  }
  if (!Array.isArray(pairs)) return false;
  return pairs.some(
    (pair) =>
      Array.isArray(pair) &&
      pair[0] === 'driver-type' &&
      typeof pair[1] === 'string' &&
      pair[1].startsWith('io.containerd.snapshotter'),
  );
}

/** Podman reports image IDs as bare hex; docker as `sha256:<hex>`. Both become the latter. */
export function normalizeImageId(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? `sha256:${id}` : id;
}

export interface LoadOutput {
  /** References the engine says it loaded, in order. */
  references: string[];
  /** Image IDs of images loaded without a tag. */
  ids: string[];
  /**
   * Failures the engine printed while it still exited 0: Docker on the containerd image store imports the content and
   * reports an image it then cannot unpack as `Error unpacking image …`, on stdout.
   */
  errors: string[];
}

/** Reads `docker load` / `podman load` output: `Loaded image: ref`, `Loaded image ID: sha256:…`, `Loaded image(s): a,b`. */
export function parseLoadOutput(text: string): LoadOutput {
  const references: string[] = [];
  const ids: string[] = [];
  const errors: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*Error\b/.test(line)) {
      errors.push(line.trim());
      continue;
    }
    const id = /^Loaded image ID:\s*(\S+)/.exec(line.trim());
    if (id) {
      ids.push(id[1]!);
      continue;
    }
    const loaded = /^Loaded image(?:\(s\))?:\s*(.+)$/.exec(line.trim());
    if (loaded)
      references.push(
        ...loaded[1]!
          .split(',')
          .map((reference) => reference.trim())
          .filter(Boolean),
      );
  }
  return { references, ids, errors };
}
