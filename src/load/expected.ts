/**
 * The images a load must leave in the engine, and the verdict on what it did, without I/O: which references the
 * engine is expected to hold afterwards and the image each must name there; then, against what it holds, which tags
 * are wrong, which moved from another image, and what the summary shows.
 */
import type { SummaryImage } from '../action/summary.ts';
import { loadedPlatform, type ArchiveImage, type ArchiveReport } from '../archive/model.ts';
import { cappedList, shownList } from '../display.ts';
import type { ImageInfo } from '../engine/output.ts';
import { UserError } from '../errors.ts';
import { idsOf, imageIdOn, isSameImage } from '../images.ts';
import { familiar, qualify } from '../reference.ts';
import { suggest } from '../suggest.ts';
import type { EngineFacts } from './run.ts';

/** A reference expected after loading, and the image in the tarball it must name. */
export interface ExpectedImage extends SummaryImage {
  image: ArchiveImage;
}

/**
 * The references expected in the engine after loading `report` (the artifact `name`), each with the image it must name
 * there: the `wanted` tags, or every tag the tarball records (and its untagged images by ID) when none are wanted.
 */
export function expectedImages(
  report: ArchiveReport,
  wanted: readonly string[],
  name: string,
  facts: EngineFacts,
): ExpectedImage[] {
  const expectation = (reference: string, image: ArchiveImage): ExpectedImage => {
    const loaded = facts.kind === 'docker-containerd' ? undefined : loadedPlatform(image, facts.platform);
    const platforms = loaded ? [loaded] : image.platforms;
    return {
      reference,
      image,
      imageId: imageIdOn(facts.kind, image, facts.platform),
      platform: platforms.map((one) => one.platform ?? '').join(', '),
    };
  };
  // Named as the engine names them: the tarball may spell a tag another way (`index.docker.io/library/app`).
  const recorded = report.images.flatMap((image) =>
    image.references.map((reference) => expectation(familiar(reference), image)),
  );
  if (wanted.length === 0) {
    const untagged = report.images.filter((image) => image.references.length === 0);
    return [...recorded, ...untagged.map((image) => expectation(imageIdOn(facts.kind, image, facts.platform), image))];
  }
  const byName = new Map(recorded.map((image) => [qualify(image.reference), image]));
  const missing = wanted.filter((tag) => !byName.has(qualify(tag)));
  if (missing.length > 0) {
    const available = recorded.map((image) => image.reference);
    const hint = suggest(missing[0]!, available);
    throw new UserError(
      `The artifact ${name} does not hold ${shownList(missing)}: it records ${shownList(available) || 'no tags'}` +
        `${hint ? ` (did you mean \`${hint.reference}\`?)` : ''}; fix \`tags\` or leave it empty to load every tag recorded. Nothing was loaded.`,
    );
  }
  return [...new Set(wanted.map(familiar))].map((tag) => ({ ...byName.get(qualify(tag))!, reference: tag }));
}

/** The tags among `expected`: an untagged image is expected under its ID, which no tag check applies to. */
export function referencesOf(expected: readonly ExpectedImage[]): string[] {
  return expected.map((image) => image.reference).filter((reference) => !reference.startsWith('sha256:'));
}

/** What the engine holds after a load, against what it was expected to. */
export interface TagVerdict {
  /** Tags that do not name the tarball's image: each with what it is and what it should be. */
  wrong: string[];
  /** Tags that named another image before the load (a warning: the load took them over). */
  moved: string[];
  /** The summary's rows: each expected reference as the engine now names it. */
  rows: SummaryImage[];
}

/** Each expected tag against what the engine now holds (`now`) and held (`before`), as an engine of `facts.kind`. */
export function tagVerdict(
  expected: readonly ExpectedImage[],
  engine: { now: ReadonlyMap<string, ImageInfo>; before: ReadonlyMap<string, ImageInfo> },
  facts: EngineFacts,
): TagVerdict {
  const wrong: string[] = [];
  const moved: string[] = [];
  for (const image of expected) {
    if (image.reference.startsWith('sha256:')) continue;
    const actual = engine.now.get(image.reference);
    if (!actual) wrong.push(`${image.reference} is not in the engine`);
    else if (!isSameImage(image.image, actual, facts.kind))
      wrong.push(`${image.reference} is ${actual.id}, expected ${idsOf(image.image).join(' or ')}`);
    else {
      const previous = engine.before.get(image.reference);
      if (previous && previous.id !== actual.id) {
        moved.push(`${image.reference} pointed to ${previous.id} before this load; it now names ${actual.id}.`);
      }
    }
  }
  const rows = expected.map((image) => {
    const actual = engine.now.get(image.reference);
    return actual
      ? { reference: image.reference, imageId: actual.id, platform: actual.platform || image.platform }
      : { reference: image.reference, imageId: image.imageId, platform: image.platform };
  });
  return { wrong, moved, rows };
}

/** At most a few of `items` (each a sentence of its own making), then how many more. */
export function boundedList(items: readonly string[]): string {
  return cappedList(items, (item) => item, { max: 5, separator: '; ' });
}
