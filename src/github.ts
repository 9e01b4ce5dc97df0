/** GitHub's grammar for the names the action sends to it or receives from it (repositories, artifact names), and this run's repository. */
import { shown } from './display.ts';
import * as github from '@actions/github';

/** Characters GitHub refuses in artifact names. */
const FORBIDDEN_NAME_CHARACTERS = /[":<>|*?\\/\r\n]/;

/** GitHub's grammar for `owner/name`: nothing else is sent to its API with the job's token. */
export function isRepository(text: string): boolean {
  const [owner, name, ...rest] = text.split('/');
  return (
    rest.length === 0 &&
    owner !== undefined &&
    name !== undefined &&
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$/.test(owner) &&
    /^[A-Za-z0-9._-]{1,100}$/.test(name) &&
    name !== '.' &&
    name !== '..'
  );
}

export function artifactNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (FORBIDDEN_NAME_CHARACTERS.test(name))
    return 'contains one of the characters " : < > | * ? \\ / that artifact names cannot have';
  if (/\p{Cc}/u.test(name)) return 'contains a control character';
  // The library prints the name in lines of its own, where the runner reads `##[` as a workflow command.
  if (name.includes('##[')) return `contains ${shown('##[')}, which the runner reads as a workflow command`;
  // The name is also the file name of the download: `.` and `..` are directories (EISDIR), not files.
  if (/^\.+$/.test(name)) return 'is only dots, which names a directory rather than a file';
  // File names stop at 255 bytes; the tarball's suffix and its temporary `.partial-<pid>` need the rest.
  if (Buffer.byteLength(name) > 200) return 'is longer than 200 bytes, too long for a file name with its suffix';
  return undefined;
}

/** The repository of this run, `owner/name`; undefined when neither the environment nor the event names one. */
export function currentRepository(): string | undefined {
  try {
    const { owner, repo } = github.context.repo;
    return `${owner}/${repo}`;
  } catch {
    return undefined;
  }
}

/** This run's ID (GITHUB_RUN_ID); undefined outside a workflow run. */
export function currentRunId(): number | undefined {
  const id = github.context.runId;
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}
