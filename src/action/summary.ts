/** The job summary: what was saved or loaded, where it went, and how long each phase took. */
import * as core from '@actions/core';
import type { ArchiveReport } from '../archive/model.ts';
import { andMore } from '../display.ts';
import { messageOf } from '../errors.ts';
import type { PhaseTimer } from '../progress.ts';
import { formatBytes, formatRate } from '../progress.ts';

export interface SummaryImage {
  reference: string;
  imageId: string;
  platform: string;
}

export interface SummaryFacts {
  title: string;
  images: SummaryImage[];
  /** Label → value rows about the tarball and artifact. */
  facts: Array<[string, string]>;
  timer: PhaseTimer;
  warnings?: string[];
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** "1 image, 2 platforms", with the attestations when there are any: how the log and summary count a tarball. */
export function describeImages(report: Pick<ArchiveReport, 'images'>): string {
  const platforms = report.images.reduce((sum, image) => sum + image.platforms.length, 0);
  const attestations = report.images.reduce((sum, image) => sum + image.attestations.length, 0);
  return [
    count(report.images.length, 'image'),
    count(platforms, 'platform'),
    ...(attestations > 0 ? [count(attestations, 'attestation')] : []),
  ].join(', ');
}

/** Rows shown; a tarball may record thousands of references, and a step's summary holds 1 MiB. */
const MAX_IMAGE_ROWS = 100;

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const code = (text: string) => `<code>${escape(text)}</code>`;

export async function writeSummary({ title, images, facts, timer, warnings = [] }: SummaryFacts): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const summary = core.summary.addHeading(title, 3);
  summary.addTable([
    [
      { data: 'Reference', header: true },
      { data: 'Image ID', header: true },
      { data: 'Platform', header: true },
    ],
    ...images
      .slice(0, MAX_IMAGE_ROWS)
      .map((image) => [
        code(image.reference),
        code(image.imageId.replace(/^sha256:/, '').slice(0, 12)),
        image.platform ? code(image.platform) : '-',
      ]),
    ...(images.length > MAX_IMAGE_ROWS ? [[andMore(images.length - MAX_IMAGE_ROWS), '', '']] : []),
  ]);
  summary.addTable([
    [
      { data: 'Tarball', header: true },
      { data: '', header: true },
    ],
    ...facts.map(([label, value]) => [label, code(value)]),
  ]);
  if (timer.phases.length > 0) {
    summary.addTable([
      [
        { data: 'Phase', header: true },
        { data: 'Seconds', header: true },
        { data: 'Throughput', header: true },
      ],
      ...timer.phases.map(({ phase, ms, bytes }) => [
        phase,
        (ms / 1000).toFixed(1),
        bytes === undefined ? '-' : `${formatBytes(bytes)} at ${formatRate(bytes, ms)}`,
      ]),
    ]);
  }
  if (warnings.length > 0) summary.addList(warnings.map(escape));
  await flush();
}

/** Delete mode's summary: each artifact picked, its ID, and whether it is gone. */
export async function writeDeleteSummary(run: string, rows: Array<{ name: string; id: number; gone: boolean }>) {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  core.summary.addHeading(`Deleted from ${escape(run)}`, 3).addTable([
    [
      { data: 'Artifact', header: true },
      { data: 'ID', header: true },
      { data: 'State', header: true },
    ],
    ...rows
      .slice(0, MAX_IMAGE_ROWS)
      .map((row) => [code(row.name), String(row.id), row.gone ? 'deleted' : 'still listed']),
    ...(rows.length > MAX_IMAGE_ROWS ? [[andMore(rows.length - MAX_IMAGE_ROWS), '', '']] : []),
  ]);
  await flush();
}

async function flush(): Promise<void> {
  try {
    await core.summary.write();
  } catch (error) {
    // The summary reports the work; it is not the work. A runner without the file has still done it.
    core.summary.emptyBuffer();
    core.warning(`The job summary could not be written, the step's work is done: ${messageOf(error)}`);
  }
}
