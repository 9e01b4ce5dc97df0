/** Artifact-name globs for `pattern`: `*` is any run of characters, `?` one character; nothing else is special. */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob]
    .map((character) => {
      if (character === '*') return '.*';
      if (character === '?') return '.';
      return character.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${body}$`, 's');
}

export function matchNames(glob: string, names: readonly string[]): string[] {
  const pattern = globToRegExp(glob);
  return names.filter((name) => pattern.test(name)).sort();
}
