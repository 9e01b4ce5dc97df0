/** The artifacts a `pattern` picks, each name checked before it reaches a line or a download. */
import * as core from '@actions/core';
import { listArtifactNames } from '../artifacts/listing.ts';
import type { ArtifactLocation } from '../artifacts/listing.ts';
import { shown, shownList, token } from '../display.ts';
import { UserError } from '../errors.ts';
import { artifactNameProblem } from '../github.ts';
import { matchNames } from '../glob.ts';

export async function namesMatching(pattern: string, location: ArtifactLocation): Promise<string[]> {
  const all = await listArtifactNames(location);
  const names = matchNames(pattern, all);
  if (names.length === 0) {
    throw new UserError(
      `No artifact matches \`pattern\` ${token(pattern)}: expected at least one, found ${all.length === 0 ? 'no artifacts at all' : shownList(all)} ` +
        `in ${location.runId ? `run ${location.runId}` : 'this run'}; check the save step's \`name\`.`,
    );
  }
  for (const name of names) {
    // Names another uploader chose: the library prints them in lines of its own.
    const problem = artifactNameProblem(name);
    if (problem) {
      throw new UserError(
        `The artifact ${shown(name)}, which \`pattern\` ${token(pattern)} matches, ${problem}; nothing was downloaded: ` +
          'narrow `pattern` to the artifacts the save steps made.',
      );
    }
  }
  core.info(`pattern ${token(pattern)} matches: ${shownList(names)}`);
  return names;
}
