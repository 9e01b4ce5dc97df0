/**
 * The import rule (.dependency-cruiser.cjs) is a check, not a promise: planted in a copy of the layout, a loop and an
 * upward import each fail it, and the real src/ passes it.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const cruiser = path.join(root, 'node_modules/.bin/depcruise');
const work = mkdtempSync(path.join(tmpdir(), 'dependency-rule-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the rule over `files` laid out as src/ is, with the project's configuration. */
function cruise(name: string, files: Record<string, string>): { status: number | null; output: string } {
  const dir = path.join(work, name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  cpSync(path.join(root, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  cpSync(path.join(root, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  const run = spawnSync(cruiser, ['src', '--config', '.dependency-cruiser.cjs'], { cwd: dir, encoding: 'utf8' });
  return { status: run.status, output: run.stdout + run.stderr };
}

describe('the import rule', () => {
  it.each([
    [
      'a loop',
      {
        'src/archive/a.ts': "import { b } from './b.ts';\nexport const a = (): unknown => b;\n",
        'src/archive/b.ts': "import { a } from './a.ts';\nexport const b = (): unknown => a;\n",
      },
      'no-circular',
    ],
    [
      'a wrapper importing a flow',
      {
        'src/archive/a.ts': "import { s } from '../save/s.ts';\nexport const a = s;\n",
        'src/save/s.ts': 'export const s = 1;\n',
      },
      'archive-knows-no-other-wrapper',
    ],
    [
      'a wrapper importing another wrapper',
      {
        'src/engine/e.ts': "import { a } from '../artifacts/a.ts';\nexport const e = a;\n",
        'src/artifacts/a.ts': 'export const a = 1;\n',
      },
      'engine-knows-no-other-wrapper',
    ],
    [
      'the base importing a folder',
      {
        'src/files.ts': "import { e } from './engine/e.ts';\nexport const f = e;\n",
        'src/engine/e.ts': 'export const e = 1;\n',
      },
      'base-imports-nothing-above',
    ],
    [
      'load importing save',
      {
        'src/load/l.ts': "import { s } from '../save/s.ts';\nexport const l = s;\n",
        'src/save/s.ts': 'export const s = 1;\n',
      },
      'load-not-save',
    ],
    [
      'delete importing load',
      {
        'src/delete/d.ts': "import { l } from '../load/l.ts';\nexport const d = l;\n",
        'src/load/l.ts': 'export const l = 1;\n',
      },
      'delete-not-load',
    ],
    [
      'a wrapper importing the delete flow',
      {
        'src/artifacts/a.ts': "import { d } from '../delete/d.ts';\nexport const a = d;\n",
        'src/delete/d.ts': 'export const d = 1;\n',
      },
      'artifacts-knows-no-other-wrapper',
    ],
    [
      'the action I/O importing a flow',
      {
        'src/action/o.ts': "import { l } from '../load/l.ts';\nexport const o = l;\n",
        'src/load/l.ts': 'export const l = 1;\n',
      },
      'action-io-below-the-flows',
    ],
  ])('fails on %s', (name, files, rule) => {
    const { status, output } = cruise(name.replaceAll(' ', '-'), files);
    expect(status, output).not.toBe(0);
    expect(output).toContain(`error ${rule}:`);
  });

  it('passes the same layout with the imports running down', () => {
    const { status, output } = cruise('down', {
      'src/files.ts': 'export const f = 1;\n',
      'src/archive/a.ts': "import { f } from '../files.ts';\nexport const a = f;\n",
      'src/save/s.ts': "import { a } from '../archive/a.ts';\nexport const s = a;\n",
      'src/main.ts': "import { s } from './save/s.ts';\nexport const m = s;\n",
    });
    expect(status, output).toBe(0);
  });

  it('passes on src/', () => {
    const run = spawnSync(cruiser, ['src', '--config', '.dependency-cruiser.cjs'], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });
});
