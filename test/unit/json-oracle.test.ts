/**
 * The differential oracle at the JSON level: documents made to be read two ways (keys in other cases, a Kelvin sign or
 * a long s for a letter, escaped keys, keys given twice, integers with a fraction, lone surrogates) go to this action's
 * reader and to Go's encoding/json (test/support/go-oracle, built here with the Go that scripts/setup.sh installs).
 * Whatever this action accepts, Go must decode without error to the same values in every field the action reads.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/archive/json.ts';
import { ROOT } from '../support/action.ts';

const work = mkdtempSync(path.join(tmpdir(), 'handoff-go-oracle-'));
const oracle = path.join(work, 'go-oracle');
execFileSync('go', ['build', '-o', oracle, '.'], {
  cwd: path.join(ROOT, 'test/support/go-oracle'),
  env: { ...process.env, GO111MODULE: 'off', GOCACHE: path.join(work, 'cache'), GOPATH: path.join(work, 'gopath') },
  stdio: ['ignore', 'ignore', 'inherit'],
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Target = 'manifest' | 'index' | 'image' | 'manifestJson';
type GoResult = Record<Target, { err: string | null; value: unknown }>;

/** Every document through one Go process, in order. */
async function goDecode(documents: readonly string[]): Promise<GoResult[]> {
  const child = spawn(oracle, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const results: GoResult[] = [];
  lines.on('line', (line) => results.push(JSON.parse(line) as GoResult));
  for (const document of documents) child.stdin.write(`${Buffer.from(document).toString('base64')}\n`);
  child.stdin.end();
  await new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(code) : reject(code))));
  return results;
}

// ---- documents written two ways ------------------------------------------------------------------------------------

type Value = { object: Array<[string, Value]> } | { array: Value[] } | { string: string } | { number: string };

/** How a key is written: as is, or as a key Go reads as the same field. */
const KEY_FORMS = [
  ...Array.from({ length: 60 }, () => 'exact' as const),
  'escaped',
  'upper',
  'capital',
  'kelvin',
  'long-s',
] as const;
type KeyForm = (typeof KEY_FORMS)[number];

function writeKey(key: string, form: KeyForm): string {
  switch (form) {
    case 'exact':
      return JSON.stringify(key);
    case 'upper':
      return JSON.stringify(key.toUpperCase());
    case 'capital':
      return JSON.stringify(key.charAt(0).toUpperCase() + key.slice(1));
    case 'kelvin':
      return JSON.stringify(key.replace(/k/i, '\u212A'));
    case 'long-s':
      return JSON.stringify(key.replace(/s/i, '\u017F'));
    case 'escaped':
      return `"${[...key].map((c, i) => (i === 0 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)).join('')}"`;
  }
}

/** A value written with the key forms and duplicates `twists` picks, one after another. */
function write(value: Value, twists: () => number): string {
  if ('string' in value) return JSON.stringify(value.string);
  if ('number' in value) return value.number;
  if ('array' in value) return `[${value.array.map((item) => write(item, twists)).join(',')}]`;
  const members: string[] = [];
  for (const [key, member] of value.object) {
    const twist = twists();
    members.push(`${writeKey(key, KEY_FORMS[twist % KEY_FORMS.length]!)}:${write(member, twists)}`);
    // Now and then the key again, in another form, with the value written again (so it can differ in its own twists).
    if (twist % 29 === 0)
      members.push(`${writeKey(key, KEY_FORMS[(twist >> 4) % KEY_FORMS.length]!)}:${write(member, twists)}`);
  }
  return `{${members.join(',')}}`;
}

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const digest = hex.map((h) => ({ string: `sha256:${h}` }) as Value);
const size = fc
  .tuple(
    fc.integer({ min: 0, max: 1_000_000 }),
    fc.constantFrom('int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'fraction', 'exponent'),
  )
  .map(([n, form]) => ({ number: form === 'int' ? String(n) : form === 'fraction' ? `${n}.0` : `${n}e0` }) as Value);
// Lone surrogates reach the text as escapes: JSON.stringify writes them so.
const text = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.constantFrom('linux', 'amd64', 'arm64', 'v8', 'app:1', 'application/vnd.oci.image.layer.v1.tar+gzip'),
  },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', 'a\udc00', '\ud83d\ude00') },
);
const annotations = fc
  .dictionary(fc.constantFrom('org.opencontainers.image.ref.name', 'io.containerd.image.name', 'Key', 'key'), text, {
    maxKeys: 3,
  })
  .map((record) => ({ object: Object.entries(record).map(([k, v]) => [k, { string: v }]) }) as Value);
const platform = fc.record({ os: text, architecture: text, variant: fc.option(text, { nil: undefined }) }).map(
  ({ os, architecture, variant }) =>
    ({
      object: [
        ['os', { string: os }],
        ['architecture', { string: architecture }],
        ...(variant === undefined ? [] : ([['variant', { string: variant }]] as Array<[string, Value]>)),
      ],
    }) as Value,
);
const descriptor = fc
  .record({
    mediaType: text,
    digest,
    size,
    annotations: fc.option(annotations, { nil: undefined }),
    platform: fc.option(platform, { nil: undefined }),
  })
  .map(
    ({ mediaType, digest, size, annotations, platform }) =>
      ({
        object: [
          ['mediaType', { string: mediaType }],
          ['digest', digest],
          ['size', size],
          ...(annotations ? ([['annotations', annotations]] as Array<[string, Value]>) : []),
          ...(platform ? ([['platform', platform]] as Array<[string, Value]>) : []),
        ],
      }) as Value,
  );

const documents: Record<Target, fc.Arbitrary<Value>> = {
  manifest: fc
    .record({
      config: descriptor,
      layers: fc.array(descriptor, { maxLength: 3 }),
      annotations: fc.option(annotations, { nil: undefined }),
    })
    .map(
      ({ config, layers, annotations }) =>
        ({
          object: [
            ['schemaVersion', { number: '2' }],
            ['mediaType', { string: 'application/vnd.oci.image.manifest.v1+json' }],
            ['config', config],
            ['layers', { array: layers }],
            ...(annotations ? ([['annotations', annotations]] as Array<[string, Value]>) : []),
          ],
        }) as Value,
    ),
  index: fc.array(descriptor, { maxLength: 3 }).map(
    (manifests) =>
      ({
        object: [
          ['schemaVersion', { number: '2' }],
          ['manifests', { array: manifests }],
        ],
      }) as Value,
  ),
  image: fc.record({ platform, diffIds: fc.array(digest, { maxLength: 3 }) }).map(
    ({ platform, diffIds }) =>
      ({
        object: [
          ...(platform as { object: Array<[string, Value]> }).object,
          [
            'rootfs',
            {
              object: [
                ['type', { string: 'layers' }],
                ['diff_ids', { array: diffIds }],
              ],
            },
          ],
        ],
      }) as Value,
  ),
  manifestJson: fc
    .array(
      fc.record({ config: text, tags: fc.array(text, { maxLength: 2 }), layers: fc.array(text, { maxLength: 2 }) }),
      { minLength: 1, maxLength: 2 },
    )
    .map(
      (items) =>
        ({
          array: items.map(({ config, tags, layers }) => ({
            object: [
              ['Config', { string: config }],
              ['RepoTags', { array: tags.map((tag) => ({ string: tag })) }],
              ['Layers', { array: layers.map((layer) => ({ string: layer })) }],
            ],
          })),
        }) as Value,
    ),
};

// ---- what the action reads of each, from JavaScript's value and from Go's ------------------------------------------

type Json = Record<string, unknown>;
const str = (value: unknown) => (typeof value === 'string' ? value : '');
const num = (value: unknown) => (typeof value === 'number' ? value : 0);
const map = (value: unknown) => (value && typeof value === 'object' && Object.keys(value).length > 0 ? value : null);
const platformOf = (value: unknown) => {
  const p = (value ?? {}) as Json;
  return value ? { os: str(p['os']), architecture: str(p['architecture']), variant: str(p['variant']) } : null;
};
const descriptorOf = (value: unknown) => {
  const d = (value ?? {}) as Json;
  return {
    mediaType: str(d['mediaType']),
    digest: str(d['digest']),
    size: num(d['size']),
    annotations: map(d['annotations']),
    platform: platformOf(d['platform']),
  };
};
const read: Record<Target, (value: unknown) => unknown> = {
  manifest: (value) => {
    const m = value as Json;
    return {
      config: descriptorOf(m['config']),
      layers: ((m['layers'] as unknown[]) ?? []).map(descriptorOf),
      annotations: map(m['annotations']),
    };
  },
  index: (value) => ({ manifests: (((value as Json)['manifests'] as unknown[]) ?? []).map(descriptorOf) }),
  image: (value) => {
    const i = value as Json;
    const rootfs = (i['rootfs'] ?? {}) as Json;
    return { ...platformOf(i), diffIds: rootfs['diff_ids'] ?? [] };
  },
  manifestJson: (value) =>
    (value as Json[]).map((item) => ({
      Config: str(item['Config']),
      RepoTags: item['RepoTags'] ?? [],
      Layers: item['Layers'] ?? [],
    })),
};

describe("the action's JSON reader against Go's encoding/json", () => {
  for (const target of Object.keys(documents) as Target[]) {
    it(`${target}: whatever the action accepts, Go reads the same, and the ways to read it twice are refused`, async () => {
      const samples = fc.sample(fc.tuple(documents[target], fc.array(fc.nat(), { minLength: 64, maxLength: 64 })), {
        numRuns: 800,
        seed: 20261206 + target.length,
      });
      const texts = samples.map(([value, twists]) => {
        let next = 0;
        return write(value, () => twists[next++ % twists.length]!);
      });
      const go = await goDecode(texts);
      let accepted = 0;
      let refused = 0;
      texts.forEach((text, i) => {
        let ours: unknown;
        try {
          ours = parseJson(Buffer.from(text), 'doc', target === 'manifestJson' ? 'manifest.json' : 'image');
        } catch {
          refused++;
          return;
        }
        accepted++;
        const theirs = go[i]![target];
        expect(theirs.err, `Go failed on a document the action accepted: ${text}`).toBeNull();
        expect(read[target](theirs.value), text).toEqual(read[target](ours));
      });
      // Both outcomes must occur, or the generator tests nothing.
      expect(accepted).toBeGreaterThan(20);
      expect(refused).toBeGreaterThan(20);
    });
  }
});
