/** docker save's manifest.json (Docker ≤ 24, skopeo and podman `docker-archive`, and Docker 25+ beside its OCI layout). */
import { shown } from '../display.ts';
import { refuse } from '../errors.ts';
import type { ArchiveContents } from './contents.ts';
import { asObject } from './descriptor.ts';
import type { JsonObject } from './json.ts';
import type { FileRecord } from './model.ts';
import { checkTag } from './names.ts';

/** The image config at `path`, with its digest checked against its file name when the name is a digest. */
export function readConfig(
  contents: ArchiveContents,
  path: string,
  where: string,
): { record: FileRecord; config: JsonObject } {
  const record = contents.find(path);
  if (!record) refuse(`${where} names the image config ${shown(path)}, which is not in the tarball.`);
  return { record, config: asObject(contents.json(record, 'The image config'), `The image config ${shown(path)}`) };
}

export interface ManifestItem {
  config: string;
  repoTags: string[];
  layers: string[];
}

export function readManifestJson(contents: ArchiveContents): ManifestItem[] {
  const value = contents.json(contents.find('manifest.json')!, 'manifest.json');
  if (!Array.isArray(value) || value.length === 0) {
    refuse('manifest.json is not a non-empty list of images; the tarball is corrupt.');
  }
  return value.map((item: unknown, index): ManifestItem => {
    const where = `manifest.json entry ${index + 1}`;
    if (typeof item !== 'object' || item === null) refuse(`${where} is not an object; the tarball is corrupt.`);
    const { Config, RepoTags, Layers } = item as JsonObject;
    if (typeof Config !== 'string' || Config === '') refuse(`${where} has no Config path; the tarball is corrupt.`);
    if (!Array.isArray(Layers) || Layers.some((layer) => typeof layer !== 'string')) {
      refuse(`${where} has no Layers list of paths; the tarball is corrupt.`);
    }
    if (RepoTags !== null && RepoTags !== undefined && !Array.isArray(RepoTags)) {
      refuse(`${where} has RepoTags that is not a list; the tarball is corrupt.`);
    }
    const repoTags = ((RepoTags as unknown[] | null | undefined) ?? []).map((tag) => checkTag(tag, where));
    return { config: Config, repoTags, layers: Layers as string[] };
  });
}
