/**
 * The container engine, through its CLI. Every call is an argument array (nothing reaches a shell); failures
 * are judged by exit code and carry the command's own last stderr line. Short commands go through @actions/exec,
 * which logs them as `[command]…` the way the toolkit's docker actions do; `save` and `load` are streamed.
 */
import { getExecOutput } from '@actions/exec';
import { spawn } from 'node:child_process';
import { Writable, type Readable } from 'node:stream';
import type { Engine as EngineName } from './constants.ts';
import { shownList } from './display.ts';
import { UserError, messageOf } from './errors.ts';
import { platformOfParts } from './platform.ts';
import { formatDecimalBytes } from './progress.ts';
import { qualify } from './reference.ts';

export interface ImageInfo {
  id: string;
  repoTags: string[];
  created: string;
  size: number;
  platform: string;
  /** The image's diff_ids (RootFS.Layers). */
  layers: string[];
  /** Media type of what the ID names, on engines that report it (the containerd image store: index or manifest). */
  targetType: string | undefined;
}

/**
 * What decides an engine's image IDs and what it can load: Docker without the containerd image store (20.10, or
 * 25+ in graphdriver mode) keys images by config digest and loads only tarballs with a manifest.json; with the
 * containerd image store the ID is the digest of the index or manifest a tag names; podman keys by config digest.
 */
export type EngineKind = 'docker-graphdriver' | 'docker-containerd' | 'podman';

export interface ImageRow {
  /** `repository:tag`, or `<none>:<none>` for an untagged image. */
  reference: string;
  id: string;
  created: string;
  size: string;
}

export interface InspectResult {
  /** Each requested reference that exists, with its image. */
  found: Map<string, ImageInfo>;
  missing: string[];
}

export interface RunningCommand {
  stdin: Writable | null;
  stdout: Readable;
  /** Settles when the command exits: resolves with its stdout text when collected, rejects on a non-zero exit. */
  done: Promise<void>;
}

const STDERR_KEPT = 64 * 1024;
/**
 * References per `image inspect`: a tarball may record thousands of tags, and one command line holds at most 2 MiB
 * (with the environment); spawn then fails with E2BIG.
 */
export const INSPECT_BATCH = 100;
/** The most argument bytes one command is given, far below the kernel's limit (which the environment shares). */
const MAX_ARGUMENT_BYTES = 512 * 1024;
const NO_SUCH_IMAGE = /no such image|image not known|not found/i;
const UNREACHABLE =
  /cannot connect to the docker daemon|is the docker daemon running|connection refused|permission denied.*docker\.sock/i;

/** A failed engine command: `line` is its last meaningful stderr line. */
export class EngineError extends UserError {
  readonly stderr: string;

  constructor(message: string, stderr: string) {
    super(message);
    this.name = 'EngineError';
    this.stderr = stderr;
  }
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? '';
}

export class ContainerEngine {
  readonly command: EngineName;

  constructor(command: EngineName = 'docker') {
    this.command = command;
  }

  private notOnPath(): UserError {
    return new UserError(
      `The \`${this.command}\` command was not found on PATH: install it on the runner, or set \`engine\` to the CLI you have.`,
    );
  }

  /**
   * Starts a command with streams the caller wires; stderr is collected for the error message. Not @actions/exec:
   * it hands over stdout only through listeners that cannot pause the process, so a `save` faster than the
   * compression behind it would pile up in memory, and it cannot be given a stream to read `load`'s input from.
   */
  start(args: readonly string[], options: { stdin?: boolean } = {}): RunningCommand {
    this.#checkArguments(args);
    let child;
    try {
      child = spawn(this.command, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    } catch (error) {
      // Node throws some spawn failures (E2BIG) rather than emitting them.
      throw new UserError(`Could not run \`${this.command} ${args[0] ?? ''}\`: ${messageOf(error)}`);
    }
    const stdout = child.stdout!;
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_KEPT);
    });
    const done = new Promise<void>((resolve, reject) => {
      child.on('error', (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'ENOENT'
            ? this.notOnPath()
            : new UserError(`Could not run \`${this.command} ${args[0] ?? ''}\`: ${error.message}`),
        );
      });
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(this.failure(args, stderr, code === null ? `signal ${signal}` : `exit code ${code}`));
      });
    });
    return { stdin: child.stdin, stdout, done };
  }

  /**
   * Runs a short command to completion through @actions/exec. `echo: 'command'` logs the `[command]…` line but not
   * the output, which is JSON for the action to read rather than for people.
   */
  private async exec(
    args: readonly string[],
    options: { allowFailure?: boolean; echo: 'all' | 'command' },
  ): Promise<{ stdout: string; stderr: string; ok: boolean }> {
    // @actions/exec spawns inside a promise of its own: a spawn that throws there escapes as an unhandled rejection.
    this.#checkArguments(args);
    let result;
    try {
      result = await getExecOutput(this.command, [...args], {
        ignoreReturnCode: true,
        ...(options.echo === 'command' && { outStream: commandLineOnly() }),
      });
    } catch (error) {
      // exec looks the command up on PATH before it starts anything, and throws when it is not there.
      if (/Unable to locate executable file/.test(messageOf(error))) throw this.notOnPath();
      throw new UserError(`Could not run \`${this.command} ${args[0] ?? ''}\`: ${messageOf(error)}`);
    }
    const ok = result.exitCode === 0;
    if (!ok && !options.allowFailure) throw this.failure(args, result.stderr, `exit code ${result.exitCode}`);
    return { stdout: result.stdout, stderr: result.stderr, ok };
  }

  /** Refuses a command line the kernel would refuse (E2BIG), before any spawn: nothing may reach one that big. */
  #checkArguments(args: readonly string[]): void {
    const bytes = args.reduce((sum, arg) => sum + Buffer.byteLength(arg) + 1, 0);
    if (bytes > MAX_ARGUMENT_BYTES) {
      throw new UserError(
        `\`${this.command} ${args[0] ?? ''}\` would take ${bytes} bytes of arguments, more than the ${MAX_ARGUMENT_BYTES} this ` +
          'action gives one command: the list it was built from is too long; report this with the step log.',
      );
    }
  }

  private failure(args: readonly string[], stderr: string, how: string): EngineError {
    const line = lastLine(stderr) || how;
    if (UNREACHABLE.test(stderr)) {
      return new EngineError(
        `Cannot reach the ${this.command} engine (${line}): start it (GitHub-hosted runners have it running), ` +
          'or give a tarball as `source` to save without an engine.',
        stderr,
      );
    }
    return new EngineError(`\`${this.command} ${args[0] ?? ''}\` failed: ${line}`, stderr);
  }

  /** The server's version and API version, e.g. {version: "20.10.24", api: "1.41"}. */
  async serverVersion(): Promise<{ version: string; api: string }> {
    const { stdout } = await this.exec(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}'], {
      echo: 'all',
    });
    const [version = '', api = ''] = stdout.trim().split(/\s+/);
    return { version, api };
  }

  /**
   * Which kind of engine this is (see EngineKind). Docker reports the containerd image store as a storage driver
   * status `driver-type: io.containerd.snapshotter.v1`, the check docker's own tooling makes.
   */
  async kind(): Promise<EngineKind> {
    if (this.command === 'podman') return 'podman';
    const { stdout } = await this.exec(['info', '--format', '{{json .DriverStatus}}'], { echo: 'command' });
    return isContainerdStore(stdout) ? 'docker-containerd' : 'docker-graphdriver';
  }

  /** The engine's own platform, `os/architecture`, which it loads from a multi-platform image. */
  async platform(): Promise<string> {
    const format = this.command === 'podman' ? '{{.Host.OS}}/{{.Host.Arch}}' : '{{.Server.Os}}/{{.Server.Arch}}';
    const { stdout } = await this.exec([this.command === 'podman' ? 'info' : 'version', '--format', format], {
      echo: 'command',
    });
    return stdout.trim();
  }

  /** Whether the engine's API version (`1.41`) is at least `major.minor`. */
  static apiAtLeast(api: string, major: number, minor: number): boolean {
    const [hasMajor = 0, hasMinor = 0] = api.split('.').map(Number);
    return hasMajor > major || (hasMajor === major && hasMinor >= minor);
  }

  /**
   * Inspects the references, INSPECT_BATCH to a call; a reference the engine lacks is reported, not thrown. A
   * reference is found under any spelling of its name (`app` is `docker.io/library/app:latest`).
   */
  async inspect(references: readonly string[]): Promise<InspectResult> {
    const found = new Map<string, ImageInfo>();
    const missing: string[] = [];
    for (let start = 0; start < references.length; start += INSPECT_BATCH) {
      const batch = references.slice(start, start + INSPECT_BATCH);
      const { stdout, stderr, ok } = await this.exec(['image', 'inspect', ...batch], {
        allowFailure: true,
        echo: 'command',
      });
      if (!ok) {
        const unexplained = stderr
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line && !NO_SUCH_IMAGE.test(line));
        if (unexplained.length > 0 || UNREACHABLE.test(stderr)) throw this.failure(['image'], stderr, 'failed');
      }
      const byName = new Map<string, ImageInfo>();
      for (const image of parseInspectJson(stdout)) for (const tag of image.repoTags) byName.set(qualify(tag), image);
      for (const reference of batch) {
        const image = byName.get(qualify(reference));
        if (image) found.set(reference, image);
        else missing.push(reference);
      }
    }
    return { found, missing };
  }

  /**
   * Whether the engine can run `reference`: a container is created from it (its layers unpacked for the engine's
   * platform, as the containerd image store does only then) and removed at once. Undefined when it can, else the
   * engine's own line.
   */
  async usable(reference: string): Promise<string | undefined> {
    const created = await this.exec(
      ['container', 'create', '--pull', 'never', '--network', 'none', reference, '/docker-image-handoff-probe'],
      { allowFailure: true, echo: 'command' },
    );
    if (!created.ok) return lastLine(created.stderr) || 'the engine refused to create a container from it';
    await this.exec(['container', 'rm', '--force', created.stdout.trim()], { allowFailure: true, echo: 'command' });
    return undefined;
  }

  /**
   * Puts each reference back where `before` had it: re-tagged to its old image, or removed when it did not exist; then
   * looks again. Returns one sentence saying what the engine now holds, naming every tag that is not as it was.
   */
  async restoreTags(references: readonly string[], before: ReadonlyMap<string, ImageInfo>): Promise<string> {
    const failed = new Map<string, string>();
    const absent = references.filter((reference) => !before.has(reference));
    for (let start = 0; start < absent.length; start += INSPECT_BATCH) {
      const batch = absent.slice(start, start + INSPECT_BATCH);
      // Its exit says little (one already gone fails it): the engine is looked at again below.
      await this.exec(['image', 'rm', ...batch], { allowFailure: true, echo: 'all' });
    }
    for (const reference of references) {
      const previous = before.get(reference);
      if (!previous) continue;
      const { ok, stderr } = await this.exec(['tag', previous.id, reference], { allowFailure: true, echo: 'all' });
      if (!ok) failed.set(reference, lastLine(stderr));
    }
    const now = await this.inspect(references).catch(() => undefined);
    for (const reference of references) {
      const was = before.get(reference)?.id;
      const is = now ? now.found.get(reference)?.id : 'unknown';
      if (is !== was && !failed.has(reference))
        failed.set(reference, `it names ${is ?? 'nothing'}, was ${was ?? 'absent'}`);
    }
    if (failed.size === 0) return `The ${references.length === 1 ? 'tag is' : 'tags are'} put back as they were.`;
    const which = [...failed].map(([reference, why]) => `${reference} (${why})`);
    return `Could not put back ${shownList(which)}: check them with \`${this.command} image ls\`.`;
  }

  /** Every image the engine has, newest first, for the "what the daemon really has" debug output. */
  async listImages(): Promise<ImageRow[]> {
    const { stdout } = await this.exec(['image', 'ls', '--format', '{{json .}}'], { echo: 'command' });
    return parseImageList(stdout);
  }
}

/**
 * The log stream for a command whose output is not for the log: exec writes its `[command]…` line to it first, in
 * one write before the process starts, then the output, which is dropped.
 */
function commandLineOnly(): Writable {
  let echoed = false;
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      if (!echoed) {
        echoed = true;
        process.stdout.write(chunk);
      }
      done();
    },
  });
}

interface InspectJson {
  Id?: string;
  RepoTags?: string[] | null;
  Created?: string;
  Size?: number;
  Os?: string;
  Architecture?: string;
  Variant?: string;
  RootFS?: { Layers?: string[] | null } | null;
  Descriptor?: { mediaType?: string } | null;
}

/** Parses `image inspect` output; an engine that printed nothing useful yields no images. */
export function parseInspectJson(stdout: string): ImageInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout || '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return (parsed as InspectJson[]).map((image) => ({
    id: normalizeImageId(image.Id ?? ''),
    repoTags: image.RepoTags ?? [],
    created: image.Created ?? '',
    size: image.Size ?? 0,
    platform: platformOfParts([image.Os, image.Architecture, image.Variant]),
    layers: (image.RootFS?.Layers ?? []).filter((layer) => typeof layer === 'string'),
    targetType: typeof image.Descriptor?.mediaType === 'string' ? image.Descriptor.mediaType : undefined,
  }));
}

/**
 * Parses `image ls --format '{{json .}}'`: docker prints one object a line (Repository, Tag, ID, CreatedAt, Size as
 * text); podman prints one JSON array of images (Names, Id, CreatedAt, Size in bytes), a row per name here.
 */
export function parseImageList(stdout: string): ImageRow[] {
  const trimmed = stdout.trim();
  if (trimmed.startsWith('[')) {
    let images: unknown;
    try {
      images = JSON.parse(trimmed);
    } catch {
      return [];
    }
    if (!Array.isArray(images)) return [];
    const objects = images.filter(
      (image): image is Record<string, unknown> => typeof image === 'object' && image !== null,
    );
    return objects.flatMap((image) => {
      const names = Array.isArray(image.Names) ? image.Names.filter((name) => typeof name === 'string') : [];
      const id = normalizeImageId(typeof image.Id === 'string' ? image.Id : '')
        .replace(/^sha256:/, '')
        .slice(0, 12);
      const created = typeof image.CreatedAt === 'string' ? image.CreatedAt : '';
      const size = typeof image.Size === 'number' ? formatDecimalBytes(image.Size) : String(image.Size ?? '');
      return (names.length > 0 ? names : ['<none>:<none>']).map((reference) => ({ reference, id, created, size }));
    });
  }
  const rows: ImageRow[] = [];
  for (const line of trimmed.split('\n')) {
    if (!line.trim()) continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const text = (key: string) => (typeof row[key] === 'string' ? (row[key] as string) : String(row[key] ?? ''));
    rows.push({
      reference: `${text('Repository') || '<none>'}:${text('Tag') || '<none>'}`,
      id: text('ID') || text('Id'),
      created: text('CreatedAt') || text('CreatedSince'),
      size: text('Size'),
    });
  }
  return rows;
}

/** Reads `docker info --format '{{json .DriverStatus}}'`: pairs of strings, one of them the snapshotter's type. */
export function isContainerdStore(driverStatus: string): boolean {
  let pairs: unknown;
  try {
    pairs = JSON.parse(driverStatus.trim() || 'null');
  } catch {
    return false;
  }
  if (!Array.isArray(pairs)) return false;
  return pairs.some(
    (pair) =>
      Array.isArray(pair) &&
      pair[0] === 'driver-type' &&
      typeof pair[1] === 'string' &&
      pair[1].startsWith('io.containerd.snapshotter'),
  );
}

/** Podman reports image IDs as bare hex; docker as `sha256:<hex>`. Both become the latter. */
export function normalizeImageId(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? `sha256:${id}` : id;
}

export interface LoadOutput {
  /** References the engine says it loaded, in order. */
  references: string[];
  /** Image IDs of images loaded without a tag. */
  ids: string[];
  /**
   * Failures the engine printed while it still exited 0: Docker on the containerd image store imports the content and
   * reports an image it then cannot unpack as `Error unpacking image …`, on stdout.
   */
  errors: string[];
}

/** Reads `docker load` / `podman load` output: `Loaded image: ref`, `Loaded image ID: sha256:…`, `Loaded image(s): a,b`. */
export function parseLoadOutput(text: string): LoadOutput {
  const references: string[] = [];
  const ids: string[] = [];
  const errors: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*Error\b/.test(line)) {
      errors.push(line.trim());
      continue;
    }
    const id = /^Loaded image ID:\s*(\S+)/.exec(line.trim());
    if (id) {
      ids.push(id[1]!);
      continue;
    }
    const loaded = /^Loaded image(?:\(s\))?:\s*(.+)$/.exec(line.trim());
    if (loaded)
      references.push(
        ...loaded[1]!
          .split(',')
          .map((reference) => reference.trim())
          .filter(Boolean),
      );
  }
  return { references, ids, errors };
}
