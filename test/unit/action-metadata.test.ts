/**
 * README.md documents action.yml: these tests fail when the two drift apart, in either direction.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, isScalar, isSeq, parse, parseDocument, type YAMLMap } from 'yaml';
import { Modes, type Mode } from '../../src/constants.ts';
import { ignoredInputs } from '../../src/action/ignored-inputs.ts';
import { PUBLISHED_ACTION, ROOT, isThisAction, markdownExamples } from '../../scripts/lint-workflows.ts';

interface ActionYaml {
  inputs: Record<string, { description: string; default?: string }>;
  outputs: Record<string, { description: string }>;
}

const action = parse(readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as ActionYaml;
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The rows of the first table under the `## <heading>` heading, each as trimmed cells. */
function tableUnder(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line.trim() === `## ${heading}`);
  if (start === -1) throw new Error(`README.md has no "## ${heading}" section`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('#')) break;
    if (!line.startsWith('|')) {
      if (rows.length > 0) break;
      continue;
    }
    // Split on pipes that Markdown does not escape, then drop the empty cells outside the outer pipes.
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((cell) => cell.trim().replace(/\\\|/g, '|'));
    rows.push(cells);
  }
  const [header, separator, ...body] = rows;
  expect(header, `table under ## ${heading}`).toBeDefined();
  expect(separator?.every((cell) => /^:?-+:?$/.test(cell))).toBe(true);
  return body;
}

/** `name` from a table cell that shows it as inline code. */
function code(cell: string): string {
  const match = /^`([^`]*)`$/.exec(cell);
  if (!match) throw new Error(`expected a cell of inline code, found ${JSON.stringify(cell)}`);
  return match[1]!;
}

describe('README inputs table', () => {
  const rows = tableUnder(readme, 'Inputs');

  it('lists every input of action.yml, in the same order, and nothing else', () => {
    expect(rows.map(([name]) => code(name!))).toEqual(Object.keys(action.inputs));
  });

  it.each(Object.entries(action.inputs))('documents `%s` with its description and default', (name, input) => {
    const row = rows.find(([cell]) => cell === `\`${name}\``);
    expect(row, `README row for ${name}`).toBeDefined();
    const [, description, defaultCell] = row!;
    expect(description).toBe(input.description);
    // An empty default shows as an empty cell; any other default as inline code.
    const expectedDefault = input.default ?? '';
    expect(defaultCell === '' ? '' : code(defaultCell!)).toBe(expectedDefault);
  });
});

describe('README outputs table', () => {
  const rows = tableUnder(readme, 'Outputs');

  it('lists every output of action.yml, in the same order, and nothing else', () => {
    expect(rows.map(([name]) => code(name!))).toEqual(Object.keys(action.outputs));
  });

  it.each(Object.entries(action.outputs))('documents `%s` with its description', (name, output) => {
    const row = rows.find(([cell]) => cell === `\`${name}\``);
    expect(row?.[1], `README row for ${name}`).toBe(output.description);
  });
});

describe('the examples of README.md and docs/recipes.md', () => {
  const recipes = readFileSync(path.join(ROOT, 'docs', 'recipes.md'), 'utf8');
  const examples = [...markdownExamples(readme), ...markdownExamples(recipes, 'docs/recipes.md')];
  const steps: YAMLMap[] = examples.flatMap((example) => {
    const document = parseDocument(example.text);
    const jobs = isMap(document.contents) ? document.contents.get('jobs') : undefined;
    if (!isMap(jobs)) return [];
    return jobs.items.flatMap((job) => {
      const jobSteps = isMap(job.value) ? job.value.get('steps') : undefined;
      return isSeq(jobSteps) ? jobSteps.items.flatMap((step) => (isMap(step) ? [step] : [])) : [];
    });
  });
  const usesOfThisAction = steps
    .map((step) => ({ step, uses: step.get('uses') }))
    .filter((entry): entry is typeof entry & { uses: string } => typeof entry.uses === 'string')
    .filter(({ uses }) => isThisAction(uses));

  it('use this action in several examples, so the checks below check something', () => {
    expect(usesOfThisAction.length).toBeGreaterThanOrEqual(10);
  });

  it('name this action by one published name and major version', () => {
    expect(new Set(usesOfThisAction.map(({ uses }) => uses))).toEqual(new Set([`${PUBLISHED_ACTION}@v1`]));
  });

  it('pass only inputs action.yml declares', () => {
    const keys = usesOfThisAction.flatMap(({ step }) => {
      const withBlock = step.get('with');
      return isMap(withBlock) ? withBlock.items.map((pair) => (isScalar(pair.key) ? String(pair.key.value) : '')) : [];
    });
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((key) => !(key in action.inputs))).toEqual([]);
  });

  it('pass no input their mode ignores', () => {
    const ignored = usesOfThisAction.flatMap(({ step }) => {
      const withBlock = step.get('with');
      const given = new Map(
        isMap(withBlock)
          ? withBlock.items.map((pair) => [
              String(isScalar(pair.key) ? pair.key.value : ''),
              String(isScalar(pair.value) ? pair.value.value : '?'),
            ])
          : [],
      );
      const mode = (given.get('mode') ?? 'save') as Mode;
      expect(Modes).toContain(mode);
      return ignoredInputs(mode, (name) => given.get(name) ?? '').map((name) => `${String(step.get('name'))}: ${name}`);
    });
    expect(ignored).toEqual([]);
  });
});
