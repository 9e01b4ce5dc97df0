/**
 * What a save produced, decided without I/O: each tag's image as the tarball holds it (whose ID is the `image-id`
 * output), a tag that moved between the check and the save, tags the engine dropped, and the images a `source` holds.
 */
import type { Selection } from '../archive/canonical.ts';
import type { ArchiveReport } from '../archive/model.ts';
import type { WrittenTarball } from '../archive/tarball.ts';
import { shown, shownList } from '../display.ts';
import type { EngineKind, ImageInfo } from '../engine/output.ts';
import { UserError } from '../errors.ts';
import { idsOf, imageIdOn } from '../images.ts';
import { qualify } from '../reference.ts';

export interface SavedImage {
  reference: string;
  imageId: string;
  platform: string;
}

export interface Saved {
  tarball: WrittenTarball;
  tags: string[];
  imageIds: string[];
  images: SavedImage[];
  warnings: string[];
}

/**
 * Each tag's image as the tarball holds it. A tag that names another image than the one checked moved between the
 * check and the save (another step retagged it): the tarball is not what was asked. `after`, for a save of one
 * platform (whose tarball names that platform's manifest, not what the tag names), is the engine asked again.
 */
export function savedImages(
  selections: readonly Selection[],
  tags: readonly string[],
  checked: { before: ReadonlyMap<string, ImageInfo>; after: ReadonlyMap<string, ImageInfo> | undefined },
  kind: EngineKind,
): SavedImage[] {
  const moved: string[] = [];
  const images = tags.map((tag) => {
    const selection = selections.find(({ references }) => references.some((one) => qualify(one) === qualify(tag)))!;
    const before = checked.before.get(tag)!;
    const now = checked.after ? checked.after.get(tag)?.id : undefined;
    if (checked.after ? now !== before.id : !idsOf(selection.image).includes(before.id))
      moved.push(`${shown(tag)} was ${before.id}, saved ${now ?? selection.image.digest}`);
    return { reference: tag, imageId: imageIdOn(kind, selection.image), platform: before.platform };
  });
  if (moved.length > 0) {
    throw new UserError(
      `${moved.length} tag${moved.length === 1 ? '' : 's'} named another image when saved than when checked (${moved.slice(0, 5).join('; ')}): ` +
        'another step retagged them meanwhile; nothing was uploaded. Run the job again, or keep other steps from tagging the image while this one runs.',
    );
  }
  return images;
}

/** The tarball must name every tag saved: proof the engine wrote what was asked. */
export function requireReferences(report: ArchiveReport, tags: readonly string[], what: string): void {
  const present = new Set(report.references.map(qualify));
  const absent = tags.filter((tag) => !present.has(qualify(tag)));
  if (absent.length > 0) {
    throw new UserError(
      `${what} does not record ${shownList(absent)} (it records ${shownList(report.references) || 'no tags'}): ` +
        'the engine dropped tags; report this with the engine version.',
    );
  }
}

/** The images of a `source` tarball, each under its references, as an engine of `kind` would name them once loaded. */
export function sourceImages(selections: readonly Selection[], kind: EngineKind): SavedImage[] {
  return selections.flatMap(({ image, references }) =>
    (references.length > 0 ? references : ['<untagged>']).map((reference) => ({
      reference,
      imageId: imageIdOn(kind, image),
      platform: image.platforms.map((one) => one.platform ?? '').join(', '),
    })),
  );
}

export function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}
