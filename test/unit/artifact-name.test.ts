import { describe, expect, it } from 'vitest';
import { artifactNamedAfterFile } from '../../src/artifacts/index.ts';

describe('artifactNamedAfterFile', () => {
  it.each([
    ['docker-image', ['image.tar'], 'image.tar'],
    ['docker-image', ['build-record', 'app.tar.zst'], 'app.tar.zst'],
    ['docker-image', ['image.tgz', 'docker-image-api'], 'image.tgz'],
    // Nothing named after a file, or no way to tell which of several was meant.
    ['docker-image', ['docker-image-api', 'docker-image-web'], undefined],
    ['docker-image', ['a.tar', 'b.tar'], undefined],
    ['docker-image', [], undefined],
    // A file name asked for: the artifact is simply not there.
    ['image.tar', ['other.tar'], undefined],
  ])('%s among %j', (name, names, expected) => {
    expect(artifactNamedAfterFile(name, names)).toBe(expected);
  });
});
