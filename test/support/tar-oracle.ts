/**
 * What three tar readers see in one archive: the action's TarReader, GNU tar, and node-tar's Parser. Each view is
 * the ordered list of entries (normalised name, type, size, link target) and the sha256 of every regular file's
 * content. GNU tar never writes to disk here: it lists (`-tv`), and hands each file's content to sha256sum.
 */
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { TarReader } from '../../src/archive/tar.ts';

export interface SeenEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  size: number;
  link: string;
}

export interface View {
  entries: SeenEntry[];
  /** name → sha256 hex of the content, for regular files. */
  contents: Map<string, string>;
}

export type Outcome = { view: View } | { refused: string };

/** The name as the file system would place it: no `./`, no trailing or doubled `/`. */
export function normalise(name: string): string {
  return name
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

export function ours(tar: Buffer): Outcome {
  const entries: SeenEntry[] = [];
  const contents = new Map<string, string>();
  let hash: Hash | undefined;
  let current: SeenEntry | undefined;
  const reader = new TarReader({
    entry: (entry) => {
      const type =
        entry.type === 'file' || entry.type === 'directory' || entry.type === 'symlink' || entry.type === 'hardlink'
          ? entry.type
          : 'other';
      current = { name: entry.name, type, size: entry.size, link: type === 'file' ? '' : entry.linkname };
      entries.push(current);
      hash = createHash('sha256');
    },
    data: (chunk) => hash!.update(chunk),
    entryEnd: () => {
      if (current?.type === 'file') contents.set(current.name, hash!.digest('hex'));
    },
  });
  try {
    reader.write(tar);
    reader.end();
  } catch (error) {
    return { refused: (error as Error).message };
  }
  // The reader passes these on, and the inspector above it refuses every one: the action never reads past them.
  const special = entries.find((entry) => entry.type === 'hardlink' || entry.type === 'other');
  if (special) return { refused: `the inspector refuses ${special.type} ${special.name}` };
  return { view: { entries, contents } };
}

function unquote(text: string): string {
  return text.replace(/\\(\\|"|n|t|[0-7]{3})/g, (_, escape: string) =>
    escape === 'n'
      ? '\n'
      : escape === 't'
        ? '\t'
        : /^[0-7]{3}$/.test(escape)
          ? String.fromCharCode(parseInt(escape, 8))
          : escape,
  );
}

// GNU tar lists a contiguous file (type 7) as C, and reads it as a regular file.
const GNU_TYPES: Record<string, SeenEntry['type']> = {
  '-': 'file',
  C: 'file',
  d: 'directory',
  l: 'symlink',
  h: 'hardlink',
};
const QUOTED = '"((?:[^"\\\\]|\\\\.)*)"';
const LIST_LINE = new RegExp(
  `^(\\S)\\S{9}\\s+\\S+\\s+(\\S+)\\s+\\S+\\s+\\S+\\s+${QUOTED}(?: -> ${QUOTED}| link to ${QUOTED})?$`,
);

export function gnuTar(tar: Buffer): Outcome {
  const work = mkdtempSync(path.join(tmpdir(), 'handoff-oracle-'));
  try {
    const file = path.join(work, 'in.tar');
    writeFileSync(file, tar);
    const options = { encoding: 'utf8' as const, maxBuffer: 1 << 26 };
    const list = spawnSync(
      'tar',
      ['--list', '--verbose', '--numeric-owner', '--full-time', '--quoting-style=c', '-f', file],
      options,
    );
    if (list.status !== 0) return { refused: `tar -tv: ${list.stderr.trim()}` };
    const entries: SeenEntry[] = [];
    for (const line of list.stdout.split('\n').filter(Boolean)) {
      const match = LIST_LINE.exec(line);
      if (!match) return { refused: `unparsed tar -tv line: ${line}` };
      const [, kind, size, name, symlink, hardlink] = match;
      const type = GNU_TYPES[kind!] ?? 'other';
      entries.push({
        name: normalise(unquote(name!)),
        type,
        size: type === 'file' ? Number(size) : 0,
        link: unquote(symlink ?? hardlink ?? ''),
      });
    }
    const sums = spawnSync(
      'tar',
      ['-xf', file, '--to-command', 'printf "%s %s\\n" "$(sha256sum | cut -c1-64)" "$TAR_FILENAME"'],
      { ...options, cwd: work },
    );
    if (sums.status !== 0) return { refused: `tar -x: ${sums.stderr.trim()}` };
    const contents = new Map<string, string>();
    for (const line of sums.stdout.split('\n').filter(Boolean)) {
      contents.set(normalise(line.slice(65)), line.slice(0, 64));
    }
    return { view: { entries, contents } };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const NODE_TAR_TYPES: Record<string, SeenEntry['type']> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
};

export async function nodeTar(tar: Buffer): Promise<Outcome> {
  const entries: SeenEntry[] = [];
  const contents = new Map<string, string>();
  const warnings: string[] = [];
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const type = NODE_TAR_TYPES[entry.type] ?? 'other';
      const name = normalise(entry.path);
      entries.push({ name, type, size: type === 'file' ? (entry.size ?? 0) : 0, link: entry.linkpath ?? '' });
      const hash = createHash('sha256');
      entry.on('data', (chunk: Buffer) => hash.update(chunk));
      entry.on('end', () => {
        if (type === 'file') contents.set(name, hash.digest('hex'));
      });
    },
  });
  parser.on('warn', (code: string, message: string) => warnings.push(`${code}: ${message}`));
  const done = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
  });
  try {
    parser.end(tar);
    await done;
  } catch (error) {
    return { refused: `node-tar: ${(error as Error).message}` };
  }
  if (warnings.length > 0) return { refused: `node-tar warned: ${warnings.join('; ')}` };
  return { view: { entries, contents } };
}
