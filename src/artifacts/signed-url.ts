/**
 * The signed URL an artifact's blob is read from, asked for the way @actions/artifact asks for it (its download
 * functions take no deadline and cannot resume, so download.ts reads the blob itself): this run's through the Results
 * service's GetSignedArtifactURL, another run's through the REST API's redirect. docs/decisions.md says why.
 */
import * as core from '@actions/core';
import * as github from '@actions/github';
import { HttpClient } from '@actions/http-client';
import { messageOf } from '../errors.ts';
import { job } from '../job.ts';

/** The service does not speak the protocol this was written for: the caller falls back to the library. */
export class UnknownProtocol extends Error {}

/** An answer that says trying again will not help (a 4xx other than 408 and 429). */
export class Refused extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const ATTEMPTS = 5;

/** Backoff before attempt `n` (from 2): 1, 2, 4, 8 s, cut short when the step stops. */
export async function backoff(attempt: number): Promise<void> {
  const ms = Math.min(8_000, 1_000 * 2 ** (attempt - 2));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    job.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  job.check();
}

/** This run's and job's backend ids, from the runtime token's `Actions.Results:<run>:<job>` scope. */
function backendIds(token: string): { run: string; job: string } {
  const payload = token.split('.')[1];
  if (!payload) throw new UnknownProtocol('ACTIONS_RUNTIME_TOKEN is not a JWT');
  let claims: { scp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { scp?: unknown };
  } catch {
    throw new UnknownProtocol('ACTIONS_RUNTIME_TOKEN does not hold JSON claims');
  }
  const scope = String(claims.scp ?? '')
    .split(' ')
    .map((part) => part.split(':'))
    .find((parts) => parts[0] === 'Actions.Results' && parts.length === 3);
  if (!scope) throw new UnknownProtocol('ACTIONS_RUNTIME_TOKEN has no Actions.Results scope');
  return { run: scope[1]!, job: scope[2]! };
}

/** One Twirp call with a deadline per attempt, retried as the library retries (5xx, 429, a network failure). */
async function twirp(method: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const token = process.env.ACTIONS_RUNTIME_TOKEN;
  const results = process.env.ACTIONS_RESULTS_URL;
  if (!token || !results) throw new UnknownProtocol('ACTIONS_RUNTIME_TOKEN or ACTIONS_RESULTS_URL is not set');
  const url = `${new URL(results).origin}/twirp/github.actions.results.api.v1.ArtifactService/${method}`;
  let last = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (attempt > 1) await backoff(attempt);
    const client = new HttpClient('docker-image-handoff', [], { socketTimeout: job.stallMs, allowRetries: false });
    const stop = () => client.dispose();
    job.signal.addEventListener('abort', stop);
    try {
      const response = await client.post(url, JSON.stringify(body), {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${token}`,
      });
      const text = await response.readBody();
      const status = response.message.statusCode ?? 0;
      if (status === 404 && /bad_route/.test(text))
        throw new UnknownProtocol(`${method} is not a method of the service`);
      if (status >= 200 && status < 300) {
        try {
          return JSON.parse(text) as Record<string, unknown>;
        } catch {
          last = `${method} answered ${status} with a body that is not JSON`;
          continue;
        }
      }
      last = `${method} answered ${status}${text ? ` (${text.slice(0, 200)})` : ''}`;
      if (status < 500 && status !== 408 && status !== 429) throw new Refused(status, last);
    } catch (error) {
      if (error instanceof UnknownProtocol || error instanceof Refused) throw error;
      job.check();
      last = `${method}: ${messageOf(error)}`;
    } finally {
      job.signal.removeEventListener('abort', stop);
      client.dispose();
    }
  }
  throw new Error(`${last}, after ${ATTEMPTS} attempts`);
}

/** Where another run's artifact is read: the repository, the run, and a token with `actions: read`. */
export interface OtherRun {
  owner: string;
  repository: string;
  token: string;
}

/**
 * A fresh signed URL for the blob of artifact `name` (`id`), of this run or of `other`, its signature masked in the log
 * as the library masks it. Signed URLs expire; a download that finds one refused asks again.
 */
export async function signedUrl(artifact: { id: number; name: string }, other: OtherRun | undefined): Promise<string> {
  const url = await askForUrl(artifact, other);
  const signature = URL.canParse(url) ? new URL(url).searchParams.get('sig') : null;
  if (signature) {
    core.setSecret(signature);
    core.setSecret(encodeURIComponent(signature));
  }
  return url;
}

async function askForUrl(artifact: { id: number; name: string }, other: OtherRun | undefined): Promise<string> {
  if (!other) {
    const token = process.env.ACTIONS_RUNTIME_TOKEN ?? '';
    const ids = backendIds(token);
    const answer = await twirp('GetSignedArtifactURL', {
      workflow_run_backend_id: ids.run,
      workflow_job_run_backend_id: ids.job,
      name: artifact.name,
    });
    const url = answer['signed_url'] ?? answer['signedUrl'];
    if (typeof url !== 'string' || url === '') throw new UnknownProtocol('GetSignedArtifactURL answered no signed_url');
    return url;
  }
  const octokit = github.getOctokit(other.token);
  let last = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (attempt > 1) await backoff(attempt);
    try {
      const { headers, status } = await octokit.rest.actions.downloadArtifact({
        owner: other.owner,
        repo: other.repository,
        artifact_id: artifact.id,
        archive_format: 'zip',
        request: { redirect: 'manual', signal: AbortSignal.any([job.signal, AbortSignal.timeout(job.stallMs)]) },
      });
      if (status === 302 && typeof headers.location === 'string') return headers.location;
      throw new UnknownProtocol(`the REST API answered ${status} without a redirect to the artifact's blob`);
    } catch (error) {
      if (error instanceof UnknownProtocol) throw error;
      job.check();
      const status = (error as { status?: number }).status;
      last = messageOf(error).split('\n')[0] ?? '';
      if (status !== undefined && status < 500 && status !== 408 && status !== 429) throw new Refused(status, last);
    }
  }
  throw new Error(`${last}, after ${ATTEMPTS} attempts`);
}
