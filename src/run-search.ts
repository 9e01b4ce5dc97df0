/**
 * Load mode's search for a workflow run (`workflow`, `branch`, `commit`, `conclusion`): GitHub's grammar for each, and
 * a run as its REST API lists it. Pure.
 */
import { describeCharacter } from './display.ts';

/**
 * The conclusions the runs API filters by (its `status` parameter, docs.github.com/rest/actions/workflow-runs), and
 * `any`: any completed run, whatever its conclusion.
 */
export const Conclusions = [
  'success',
  'failure',
  'neutral',
  'cancelled',
  'skipped',
  'timed_out',
  'action_required',
  'stale',
  'any',
] as const;
export type Conclusion = (typeof Conclusions)[number];

export interface RunSearch {
  /** A workflow's file name (`pr.yml`) or numeric ID, as the API takes it. */
  workflow: string;
  branch: string | undefined;
  /** A full head SHA, lowercase. */
  commit: string | undefined;
  conclusion: Conclusion;
}

/** A workflow run as the runs API lists it, with the fields the search and its log lines use. */
export interface WorkflowRun {
  id: number;
  runNumber: number;
  event: string;
  /** `head_branch`: null for a run of a tag or of no branch. */
  branch: string | null;
  headSha: string;
  status: string;
  conclusion: string | null;
  createdAt: string;
  htmlUrl: string;
}

export type Parsed = { ok: true; value: string } | { ok: false; problem: string };

const WORKFLOWS_DIRECTORY = '.github/workflows/';
/** File names stop at 255 bytes. */
const MAX_FILE_NAME_BYTES = 255;

/** `pr.yml`, `.github/workflows/pr.yml` (as the file name) or a numeric ID. */
export function parseWorkflow(text: string): Parsed {
  if (/^[0-9]+$/.test(text)) {
    const id = Number(text);
    return Number.isSafeInteger(id) && id > 0 ? { ok: true, value: String(id) } : { ok: false, problem: 'is no ID' };
  }
  const name = text.replace(/^\.\//, '').startsWith(WORKFLOWS_DIRECTORY)
    ? text.replace(/^\.\//, '').slice(WORKFLOWS_DIRECTORY.length)
    : text;
  const expected = "must be a workflow's file name (`pr.yml`, in .github/workflows) or its numeric ID";
  if (/[/\\]/.test(name)) return { ok: false, problem: `${expected}, without a directory` };
  const control = /\p{Cc}/u.exec(name);
  if (control) return { ok: false, problem: `${expected}; it contains ${describeCharacter(control[0])}` };
  if (!/\.ya?ml$/.test(name) || Buffer.byteLength(name) > MAX_FILE_NAME_BYTES) {
    return { ok: false, problem: `${expected} (the API does not take a workflow's \`name:\`)` };
  }
  return { ok: true, value: name };
}

/** Longest branch name taken: far beyond any in use, and short enough to print whole. */
const MAX_BRANCH_CHARACTERS = 400;

/** A branch name, as `git check-ref-format --branch` allows it; `refs/heads/NAME` is taken as NAME. */
export function parseBranch(text: string): Parsed {
  const name = text.startsWith('refs/heads/') ? text.slice('refs/heads/'.length) : text;
  if (name.startsWith('refs/')) {
    return {
      ok: false,
      problem:
        "must be a branch's name; a pull request's branch is `github.head_ref`, and a ref outside refs/heads/ is no branch",
    };
  }
  const refused = /[\p{Cc} ~^:?*[\\]/u.exec(name);
  const problem = refused
    ? `contains ${/[!-~]/.test(refused[0]) ? `"${refused[0]}"` : describeCharacter(refused[0])}`
    : name === '' || name === '@'
      ? 'is no name'
      : /\.\.|@\{|\/\/|^\/|\/$|\.$|\.lock$|\.lock\/|(^|\/)\.|^-/.test(name)
        ? 'has "..", "@{", "//", a part that starts with "." or ends with ".lock", a leading "-" or "/", or a trailing "/" or "."'
        : [...name].length > MAX_BRANCH_CHARACTERS
          ? `is longer than ${MAX_BRANCH_CHARACTERS} characters`
          : undefined;
  return problem === undefined
    ? { ok: true, value: name }
    : { ok: false, problem: `${problem}, which git refuses in a branch name (git check-ref-format)` };
}

/** A full commit SHA; the runs API matches `head_sha` only whole. */
export function parseCommit(text: string): Parsed {
  if (/^[0-9a-f]{40}$/i.test(text)) return { ok: true, value: text.toLowerCase() };
  const abbreviated = /^[0-9a-f]{4,39}$/i.test(text) ? ` (an abbreviated SHA of ${text.length} digits)` : '';
  return {
    ok: false,
    problem:
      `must be a full commit SHA, 40 hex digits${abbreviated}, which the API matches against a run's head SHA: ` +
      "`github.sha`, or a pull request's `github.event.pull_request.head.sha`",
  };
}
