/**
 * The decisions of load mode, without an engine: which references a load must leave and the image each must name
 * (load/expected.ts), the verdict on what the engine then holds, which of several simultaneous failures is reported
 * (load/failures.ts), and the digest rules of a downloaded artifact (load/digests.ts).
 */
import { describe, expect, it } from 'vitest';
import type { DownloadedArtifact } from '../../src/artifacts/listing.ts';
import { ArchiveRefused, Stalled, UserError } from '../../src/errors.ts';
import { DigestMismatch, artifactDigest, artifactSize, compareArtifactDigest } from '../../src/load/digests.ts';
import { boundedList, expectedImages, referencesOf, tagVerdict } from '../../src/load/expected.ts';
import { engineReported, loadFailure, type LoadOutcome } from '../../src/load/failures.ts';
import type { EngineFacts } from '../../src/load/run.ts';
import { MANIFEST_TYPE, digest, modelImage as image, modelReport as report, imageInfo } from '../support/model.ts';

const containerd: EngineFacts = { kind: 'docker-containerd', platform: 'linux/amd64' };
const graphdriver: EngineFacts = { kind: 'docker-graphdriver', platform: 'linux/amd64' };

describe('expectedImages: the references a load must leave, and the ID each must have', () => {
  const multi = image(['ghcr.io/o/app:1', 'index.docker.io/library/app:latest'], { index: true });
  const untagged = image([], { seed: 'b', index: true });
  it.each([
    [
      "every recorded tag, in the engine's spelling, when none are wanted (containerd: the index digest)",
      [multi],
      [],
      containerd,
      [
        ['ghcr.io/o/app:1', digest('9'), 'linux/amd64, linux/arm64'],
        ['app:latest', digest('9'), 'linux/amd64, linux/arm64'],
      ],
    ],
    [
      "the graph driver loads the engine's platform: its config digest and its platform only",
      [multi],
      [],
      graphdriver,
      [
        ['ghcr.io/o/app:1', digest('c'), 'linux/amd64'],
        ['app:latest', digest('c'), 'linux/amd64'],
      ],
    ],
    [
      'an untagged image is expected under its ID',
      [untagged],
      [],
      containerd,
      [[digest('8'), digest('8'), 'linux/amd64, linux/arm64']],
    ],
    [
      'the wanted tags only, however spelled, each once',
      [multi],
      ['docker.io/library/app', 'app:latest', 'ghcr.io/o/app:1'],
      containerd,
      [
        ['app:latest', digest('9'), 'linux/amd64, linux/arm64'],
        ['ghcr.io/o/app:1', digest('9'), 'linux/amd64, linux/arm64'],
      ],
    ],
    [
      'a docker-archive image on the containerd store is named by its config (no manifest to name it by)',
      [image(['app:1'], { kind: 'config' })],
      [],
      containerd,
      [['app:1', digest('c'), 'linux/amd64']],
    ],
  ] as const)('%s', (_name, images, wanted, facts, rows) => {
    const expected = expectedImages(report([...images]), [...wanted], 'docker-image', facts);
    expect(expected.map((one) => [one.reference, one.imageId, one.platform])).toEqual(rows);
  });

  it.each([
    [
      ['app:2'],
      /The artifact docker-image does not hold `app:2`: it records `app:1` \(did you mean `app:1`\?\); fix `tags`/,
    ],
    [['other:1', 'app:1'], /does not hold `other:1`: it records `app:1`/],
  ])('a wanted tag the tarball does not hold (%j) fails before anything is loaded', (wanted, message) => {
    expect(() => expectedImages(report([image(['app:1'])]), wanted, 'docker-image', containerd)).toThrow(message);
  });

  it('a tarball without tags names no tag to look for', () => {
    expect(() => expectedImages(report([image([])]), ['app:1'], 'a', containerd)).toThrow(/it records no tags/);
  });
});

describe('referencesOf: the tags among the expected, not the IDs', () => {
  it('leaves out an untagged image expected under its ID', () => {
    const expected = expectedImages(
      report([image(['app:1']), image([], { seed: 'b', index: true })]),
      [],
      'a',
      containerd,
    );
    expect(referencesOf(expected)).toEqual(['app:1']);
  });
});

describe('tagVerdict: what the engine holds after the load, against what was expected', () => {
  const tarball = image(['app:1', 'app:2'], { index: true });
  const expected = expectedImages(report([tarball]), [], 'a', containerd);
  const info = imageInfo;
  it.each([
    ['both tags name the index', { 'app:1': info(digest('9')), 'app:2': info(digest('9')) }, {}, [], []],
    [
      "a tag may name a platform's manifest or config",
      { 'app:1': info(digest('1')), 'app:2': info(digest('f')) },
      {},
      [],
      [],
    ],
    [
      'a tag that is missing, one that names another image',
      { 'app:2': info(digest('7')) },
      {},
      [
        'app:1 is not in the engine',
        `app:2 is ${digest('7')}, expected ${digest('9')} or ${digest('1')} or ${digest('c')} or ${digest('2')} or ${digest('f')}`,
      ],
      [],
    ],
    [
      'a tag taken over from another image is a warning, not wrong',
      { 'app:1': info(digest('9')), 'app:2': info(digest('9')) },
      { 'app:1': info(digest('7')) },
      [],
      [`app:1 pointed to ${digest('7')} before this load; it now names ${digest('9')}.`],
    ],
  ])('%s', (_name, now, before, wrong, moved) => {
    const verdict = tagVerdict(
      expected,
      { now: new Map(Object.entries(now)), before: new Map(Object.entries(before)) },
      containerd,
    );
    expect(verdict.wrong).toEqual(wrong);
    expect(verdict.moved).toEqual(moved);
    expect(verdict.rows.map((row) => row.reference)).toEqual(['app:1', 'app:2']);
  });

  it('shows the ID the engine reports, or the expected one for a tag it lacks', () => {
    const verdict = tagVerdict(
      expected,
      { now: new Map([['app:1', info(digest('1'), { platform: 'linux/arm64' })]]), before: new Map() },
      containerd,
    );
    expect(verdict.rows).toEqual([
      { reference: 'app:1', imageId: digest('1'), platform: 'linux/arm64' },
      { reference: 'app:2', imageId: digest('9'), platform: 'linux/amd64, linux/arm64' },
    ]);
  });

  it('a docker-archive image the containerd store re-manifested is the same image by its layers, platform and time', () => {
    const legacy = image(['app:1'], { kind: 'config' });
    const wanted = expectedImages(report([legacy]), [], 'a', containerd);
    const rewritten = info(digest('6'), {
      layers: [digest('e')],
      created: '2026-01-01T00:00:00Z',
      targetType: MANIFEST_TYPE,
    });
    const same = tagVerdict(wanted, { now: new Map([['app:1', rewritten]]), before: new Map() }, containerd);
    expect(same.wrong).toEqual([]);
    const other = tagVerdict(
      wanted,
      { now: new Map([['app:1', { ...rewritten, created: '2025-01-01T00:00:00Z' }]]), before: new Map() },
      containerd,
    );
    expect(other.wrong).toHaveLength(1);
    const graph = tagVerdict(wanted, { now: new Map([['app:1', rewritten]]), before: new Map() }, graphdriver);
    expect(graph.wrong).toHaveLength(1);
  });
});

describe('boundedList', () => {
  it.each([
    [[], ''],
    [['a'], 'a'],
    [['a', 'b', 'c', 'd', 'e'], 'a; b; c; d; e'],
    [['a', 'b', 'c', 'd', 'e', 'f', 'g'], 'a; b; c; d; e … and 2 more'],
  ])('%j', (items, text) => expect(boundedList(items)).toBe(text));
});

describe('loadFailure: the one failure reported when several parts of a load fail at once', () => {
  const ok: PromiseSettledResult<unknown> = { status: 'fulfilled', value: undefined };
  const no = (reason: unknown): PromiseSettledResult<unknown> => ({ status: 'rejected', reason });
  const refused = new ArchiveRefused('The tar entry `x` is refused.');
  const stalled = new Stalled('`docker load` took no byte for 60 s');
  const engineSaid = new UserError('`docker load` failed: `no space left on device`');
  const pipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  const outcome = (parts: Partial<LoadOutcome>): LoadOutcome => ({
    late: undefined,
    written: ok,
    fed: ok,
    exited: ok,
    what: '`docker load`',
    stderr: '',
    ...parts,
  });
  it.each([
    ['nothing failed', outcome({}), undefined],
    [
      'the engine never finished: that, whatever else',
      outcome({ late: stalled, written: no(refused), exited: no(engineSaid) }),
      stalled,
    ],
    [
      "the archive refused: the engine's complaint is only its result",
      outcome({ written: no(refused), fed: no(pipe), exited: no(engineSaid) }),
      refused,
    ],
    ["a stall of the feed before the engine's failure", outcome({ fed: no(stalled), exited: no(engineSaid) }), stalled],
    [
      "the engine's own failure before the broken pipe it caused",
      outcome({ fed: no(pipe), exited: no(engineSaid) }),
      engineSaid,
    ],
  ])('%s', (_name, parts, expected) => {
    expect(loadFailure(parts)).toBe(expected);
  });

  it('a broken pipe with nothing else to say is the engine that stopped reading, in its own last words', () => {
    const failure = loadFailure(
      outcome({ fed: no(pipe), exited: no(new Error('exit 1')), stderr: 'starting\nerror: disk full\n' }),
    );
    expect(failure).toBeInstanceOf(UserError);
    expect((failure as Error).message).toMatch(
      /^`docker load` stopped reading the tarball \(EPIPE\): `error: disk full`; the engine failed or was stopped\./,
    );
  });
});

describe("engineReported: the engine's own verdict in what it printed", () => {
  it.each([
    [[], undefined],
    [
      ['Error unpacking image x: failed'],
      /^`docker load` reported `Error unpacking image x: failed`: the engine could not use/,
    ],
  ])('%j', (errors, message) => {
    const reported = engineReported('`docker load`', errors);
    if (message === undefined) expect(reported).toBeUndefined();
    else expect(reported?.message).toMatch(message);
  });
});

describe('the digest rules of a downloaded artifact', () => {
  const raw = (recorded: string | undefined): DownloadedArtifact => ({
    id: 1,
    name: 'docker-image',
    file: '/t/docker-image.tar.zst',
    size: 10,
    downloaded: Promise.resolve(),
    arriving: false,
    recordedDigest: recorded,
    zip: undefined,
    abort: () => undefined,
  });
  const zipped = (recorded: string | undefined): DownloadedArtifact => ({
    ...raw(undefined),
    zip: { digest: digest('a'), size: 20, recordedDigest: recorded },
  });
  it("a zip artifact's digest and size are the zip's; a raw one's the file's", () => {
    expect(artifactDigest(raw(undefined), digest('1'))).toBe(digest('1'));
    expect(artifactSize(raw(undefined))).toBe(10);
    expect(artifactDigest(zipped(undefined), digest('1'))).toBe(digest('a'));
    expect(artifactSize(zipped(undefined))).toBe(20);
  });
  it.each([
    [
      'recorded and matching',
      raw(digest('1')),
      digest('1'),
      undefined,
      undefined,
      /^sha256 matches the recorded digest: /,
    ],
    [
      'matching both',
      raw(digest('1')),
      digest('1'),
      digest('1'),
      undefined,
      /^sha256 matches the recorded digest and expected-digest/,
    ],
    [
      'nothing to compare with',
      raw(undefined),
      digest('1'),
      undefined,
      undefined,
      /not compared: the artifact service recorded no digest/,
    ],
    [
      'recorded differs',
      raw(digest('2')),
      digest('1'),
      undefined,
      /hashes to sha256:1{64}, but the artifact service recorded sha256:2{64}: the bytes are not the ones uploaded/,
      undefined,
    ],
    [
      'expected-digest differs',
      raw(digest('1')),
      digest('1'),
      digest('3'),
      /but `expected-digest` is sha256:3{64}/,
      undefined,
    ],
    [
      "a zip held to the zip's digest",
      zipped(digest('a')),
      digest('a'),
      digest('1'),
      /\(a zip\) hashes to sha256:a{64}, but `expected-digest` is sha256:1{64}: .*upload-artifact's `artifact-digest` output/,
      undefined,
    ],
  ])('%s', (_name, artifact, actual, expectedDigest, mismatch, line) => {
    const result = compareArtifactDigest(artifact, actual, expectedDigest);
    if (mismatch) {
      expect(result.mismatch).toBeInstanceOf(DigestMismatch);
      expect(result.mismatch?.actual).toBe(actual);
      expect(result.mismatch?.message).toMatch(mismatch);
    } else {
      expect(result.mismatch).toBeUndefined();
      expect(result.line).toMatch(line!);
    }
  });
});
