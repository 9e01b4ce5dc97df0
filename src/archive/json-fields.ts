/**
 * The fields Go decodes the documents of an image into, and how Go compares an object's keys with them (case folded):
 * what json.ts needs to refuse a key that Go would read as a field this action does not see.
 */

/**
 * The fields of the documents an engine reads (OCI image-spec's Index, Manifest, Descriptor, Platform and Image, the
 * docker image config with its container config and health check, and oci-layout), as Go spells them. Go
 * matches an object's key to a field without regard to case, so a key that differs from one of these only in case is read by Go as that field, and by this action as an unknown key.
 */
export const FIELDS = [
  // image-spec Index, Manifest, Descriptor, Platform
  'schemaVersion',
  'mediaType',
  'artifactType',
  'manifests',
  'config',
  'layers',
  'subject',
  'annotations',
  'digest',
  'size',
  'urls',
  'data',
  'platform',
  'architecture',
  'os',
  'os.version',
  'os.features',
  'variant',
  'features',
  // image-spec Image and the docker image config around it
  'created',
  'author',
  'rootfs',
  'history',
  'type',
  'diff_ids',
  'created_by',
  'comment',
  'empty_layer',
  'id',
  'parent',
  'container',
  'container_config',
  'docker_version',
  'User',
  'ExposedPorts',
  'Env',
  'Entrypoint',
  'Cmd',
  'Volumes',
  'WorkingDir',
  'Labels',
  'StopSignal',
  'ArgsEscaped',
  'Hostname',
  'Domainname',
  'AttachStdin',
  'AttachStdout',
  'AttachStderr',
  'Tty',
  'OpenStdin',
  'StdinOnce',
  'Image',
  'OnBuild',
  'Healthcheck',
  'Shell',
  'NetworkDisabled',
  'MacAddress',
  'StopTimeout',
  'Test',
  'Interval',
  'Timeout',
  'StartPeriod',
  'StartInterval',
  'Retries',
  // the OCI layout's marker
  'imageLayoutVersion',
];
/** docker save's manifest.json (moby image/tarexport manifestItem), its layer sources being descriptors. */
export const MANIFEST_JSON_FIELDS = [
  'Config',
  'RepoTags',
  'Layers',
  'Parent',
  'LayerSources',
  'mediaType',
  'digest',
  'size',
  'urls',
];
/** Fields whose value Go decodes into a map: its keys are compared exactly, not folded. */
export const MAP_FIELDS = ['annotations', 'Labels', 'ExposedPorts', 'Volumes', 'LayerSources'];
/** Fields Go decodes into an int64 or int: a fraction or an exponent there fails in Go, where JavaScript reads a number. */
export const INTEGER_FIELDS = ['size', 'schemaVersion'];

const FOLD_CACHE = new Map<string, string>();

/**
 * The smallest code point among those Unicode's simple case folding makes equal to `character`: what Go's
 * encoding/json compares object keys by (fold.go, foldRune), so two keys are one field to Go when their folds match.
 */
function foldCharacter(character: string): string {
  const cached = FOLD_CACHE.get(character);
  if (cached !== undefined) return cached;
  // JavaScript's case-insensitive Unicode regular expressions compare by the same simple case folding.
  const same = new RegExp(`^${character.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')}$`, 'iu');
  const orbit = new Set([character]);
  for (let grew = true; grew;) {
    grew = false;
    for (const member of [...orbit]) {
      for (const candidate of [member.toLowerCase(), member.toUpperCase()]) {
        if ([...candidate].length === 1 && !orbit.has(candidate) && same.test(candidate)) {
          orbit.add(candidate);
          grew = true;
        }
      }
    }
  }
  const folded = [...orbit].reduce((least, member) =>
    member.codePointAt(0)! < least.codePointAt(0)! ? member : least,
  );
  FOLD_CACHE.set(character, folded);
  return folded;
}

/** A key as Go's encoding/json compares it with a field name: ASCII letters in upper case, others by foldCharacter. */
export function goFold(key: string): string {
  let folded = '';
  for (const character of key) {
    const code = character.codePointAt(0)!;
    if (code < 0x80) folded += code >= 0x61 && code <= 0x7a ? String.fromCharCode(code - 0x20) : character;
    else folded += foldCharacter(character);
  }
  return folded;
}

/** Which fields a document has: manifest.json's, or those of every other document an image holds. */
export type JsonSchema = 'manifest.json' | 'image';

export interface Fields {
  exact: Set<string>;
  folded: Map<string, string>;
}

function fields(names: readonly string[]): Fields {
  return { exact: new Set(names), folded: new Map(names.map((name) => [goFold(name), name])) };
}

export const SCHEMAS: Record<JsonSchema, Fields> = {
  image: fields(FIELDS),
  'manifest.json': fields(MANIFEST_JSON_FIELDS),
};
export const MAP_FOLDED = new Set(MAP_FIELDS.map(goFold));
export const INTEGER_FOLDED = new Set(INTEGER_FIELDS.map(goFold));
