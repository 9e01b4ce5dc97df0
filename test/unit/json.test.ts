/**
 * JSON as Go reads it: each expectation below is Go's encoding/json behaviour, from its source (go/src/encoding/json:
 * decode.go `object` and `literalStore`, fold.go `foldName`, `unquote`) and the package documentation ("Unmarshal
 * matches incoming object keys to the keys used by Marshal ... preferring an exact match but also accepting a
 * case-insensitive match"), and seen with Go 1.19 and 1.24. test/unit/json-oracle.test.ts checks the same against Go
 * itself.
 */
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, goFold, parseJson } from '../../src/archive/json.ts';
import { UserError } from '../../src/errors.ts';

function outcome(text: string | Buffer): unknown {
  try {
    return parseJson(typeof text === 'string' ? Buffer.from(text) : text, 'The document');
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).not.toContain('\n');
    return error;
  }
}

function refusedWith(text: string | Buffer, message: RegExp): void {
  const result = outcome(text);
  expect(result, `accepted: ${String(text)}`).toBeInstanceOf(UserError);
  expect((result as Error).message).toMatch(message);
}

describe("Go's key folding (fold.go: foldName upper-cases ASCII, maps other letters to the least of their fold orbit)", () => {
  it.each([
    ['config', 'CONFIG'],
    ['Config', 'CONFIG'],
    ['diff_ids', 'DIFF_IDS'],
    ['os.version', 'OS.VERSION'],
    // U+212A KELVIN SIGN and U+017F LATIN SMALL LETTER LONG S fold onto ASCII K and S.
    ['\u212Aey', 'KEY'],
    ['\u017Fize', 'SIZE'],
    // U+0130 and U+0131 (dotted and dotless i) have no simple folding to ASCII: Go does not match them to `i`.
    ['\u0130d', '\u0130D'],
    ['\u0131d', '\u0131D'],
    // ß and ẞ fold together (to ß, the lesser), never to "SS".
    ['stra\u00DFe', 'STRA\u00DFE'],
    ['STRA\u1E9EE', 'STRA\u00DFE'],
    // Greek sigma, final sigma and capital sigma are one orbit; its least member is Σ.
    ['\u03C2', '\u03A3'],
    ['\u03C3', '\u03A3'],
  ])('%j folds to %j', (key, folded) => {
    expect(goFold(key)).toBe(folded);
  });
});

describe('keys Go would read as another field', () => {
  it.each([
    ['config twice, in two cases', '{"config":{"digest":"a"},"Config":{"digest":"b"}}', /keys `config` and `Config`/],
    ['the case variant first', '{"LAYERS":[],"layers":[]}', /key `LAYERS`, which Go reads as the field `layers`/],
    ['a Kelvin sign for k', '{"\u212Aey":1,"key":2}', /keys `<U\+212A>ey` and `key`/],
    ['a long s for s', '{"size":1,"\u017Fize":2}', /keys `size` and `<U\+017F>ize`/],
    [
      'an escaped letter (keys compare after unescaping)',
      '{"\\u0063onfig":1,"Config":2}',
      /keys `config` and `Config`/,
    ],
    [
      'nested, in a descriptor',
      '{"manifests":[{"digest":"a","Digest":"b"}]}',
      /keys `digest` and `Digest` .* at \.manifests\[0\]/,
    ],
    [
      'two map-typed parents, which Go merges into one map',
      '{"Labels":{"a":"1"},"labels":{"b":"2"}}',
      /keys `Labels` and `labels`/,
    ],
  ])('%s is refused', (_name, text, message) => refusedWith(text, message));

  it.each([
    ['Size', '{"Size":1}'],
    ['DIGEST', '{"DIGEST":"sha256:x"}'],
    ['Annotations', '{"Annotations":{}}'],
    ['rootFS', '{"rootFS":{}}'],
    ['long s in size', '{"\u017Fize":1}'],
  ])('a field spelled %s alone is refused: Go reads it as the field, this action as an unknown key', (_name, text) =>
    refusedWith(text, /which Go reads as the field/),
  );

  it.each([
    [
      'exact duplicates in a struct (Go merges the two, JavaScript keeps the last)',
      '{"config":{"a":1},"config":{"b":2}}',
    ],
    ['exact duplicates in a map (Go keeps the last, but merges map values)', '{"annotations":{"a":"1","a":"2"}}'],
  ])('%s are refused', (_name, text) => refusedWith(text, /twice in one object/));

  it('accepts keys of a map that differ only in case: Go compares map keys exactly', () => {
    expect(outcome('{"annotations":{"a":"1","A":"2"},"config":{"Labels":{"x":"1","X":"2"}}}')).toEqual({
      annotations: { a: '1', A: '2' },
      config: { Labels: { x: '1', X: '2' } },
    });
  });

  it('refuses case twins even in an object nothing reads: one rule for every object that is not a map', () => {
    refusedWith('{"schemaVersion":2,"x-vendor":{"Anything":1,"anything":2}}', /keys `Anything` and `anything`/);
  });

  it('accepts unknown keys, which both readers ignore, and keys no field resembles', () => {
    expect(outcome('{"schemaVersion":2,"x-vendor":{"one":1,"two":2},"\u0130d":"x"}')).toEqual({
      schemaVersion: 2,
      'x-vendor': { one: 1, two: 2 },
      '\u0130d': 'x',
    });
  });
});

describe('values Go reads otherwise', () => {
  it.each([
    ['1.0', '{"size":1.0}'],
    ['1e3', '{"size":1e3}'],
    ['2.0 as schemaVersion', '{"schemaVersion":2.0}'],
  ])(
    'an integer field written %s is refused (literalStore: strconv.ParseInt fails, JavaScript reads a number)',
    (_n, text) => refusedWith(text, /where Go reads only a whole number/),
  );

  it('a fraction in a field Go does not decode into an integer is left alone', () => {
    expect(outcome('{"x-ratio":1.5}')).toEqual({ 'x-ratio': 1.5 });
  });

  it.each([
    ['a lone high surrogate', '{"a":"\\ud800"}'],
    ['a lone low surrogate', '{"a":"\\udc00x"}'],
    ['a high surrogate before a non-surrogate escape', '{"a":"\\ud800\\u0041"}'],
    ['a lone surrogate in a key', '{"\\ud800":"x"}'],
  ])('%s is refused (unquote: Go writes U+FFFD, JavaScript keeps the code unit)', (_name, text) =>
    refusedWith(text, /escaped lone surrogate/),
  );

  it('a surrogate pair is one character to both', () => {
    expect(outcome('{"a":"\\ud83d\\ude00"}')).toEqual({ a: '\u{1F600}' });
  });

  it.each([
    ['a stray continuation byte', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d])],
    ['a cut-short sequence', Buffer.from([0x7b, 0x22, 0xe2, 0x82, 0x22, 0x3a, 0x31, 0x7d])],
    ['an encoded surrogate', Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d])],
  ])('invalid UTF-8 (%s) is refused: Go replaces each bad byte, decoders differ on how many', (_name, bytes) =>
    refusedWith(bytes, /is not valid UTF-8/),
  );

  it('a byte-order mark is refused, as json.Unmarshal refuses it', () => {
    refusedWith(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]), /is not valid JSON/);
  });

  it("data after the document is refused (json.Decoder, docker's manifest.json reader, would ignore it)", () => {
    refusedWith('[{"x":"a"}] [{"x":"b"}]', /is not valid JSON/);
  });

  it(`nesting deeper than ${MAX_JSON_DEPTH} levels is refused before anything parses it`, () => {
    refusedWith('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1), /nests more than 64 levels/);
    expect(outcome('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH))).toBeInstanceOf(Array);
  });

  it('a real OCI manifest, index and image config read the same to both', () => {
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1234 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'b'.repeat(64)}`, size: 99 },
      ],
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    };
    expect(outcome(JSON.stringify(manifest, null, 2))).toEqual(manifest);
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['sh'], Labels: { 'a.b': 'c' }, ExposedPorts: { '80/tcp': {} } },
      rootfs: { type: 'layers', diff_ids: [`sha256:${'c'.repeat(64)}`] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'x', empty_layer: true }],
    };
    expect(outcome(JSON.stringify(config))).toEqual(config);
  });
});
