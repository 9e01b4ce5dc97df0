/**
 * The container engine, through its CLI: every call goes through src/process.ts (an argument array, a deadline, a stop
 * on cancellation) and is logged as `[command]…`, the way the toolkit's docker actions log theirs; failures carry the
 * command's own last stderr line. `save` and `load` are streamed.
 */
import type { Readable, Writable } from 'node:stream';
import type { Engine as EngineName } from '../constants.ts';
import { shown, shownList } from '../display.ts';
import { UserError } from '../errors.ts';
import { job } from '../job.ts';
import { CommandFailed, lastLine, runCommand, startCommand } from '../process.ts';
import { qualify } from '../reference.ts';
import {
  isContainerdStore,
  parseImageList,
  parseInspectJson,
  type EngineKind,
  type ImageInfo,
  type ImageRow,
  type InspectResult,
} from './output.ts';

export interface RunningCommand {
  stdin: Writable | null;
  stdout: Readable;
  /** Settles when the command exits: resolves on exit 0, rejects with the engine's line otherwise. */
  done: Promise<void>;
  /** Stops it. */
  kill(): void;
  /** The last of its stderr so far. */
  stderr(): string;
}

/**
 * References per `image inspect`: a tarball may record thousands of tags, and one command line holds at most 2 MiB
 * (with the environment); spawn then fails with E2BIG.
 */
export const INSPECT_BATCH = 100;
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

export class ContainerEngine {
  readonly command: EngineName;

  constructor(command: EngineName = 'docker') {
    this.command = command;
  }

  /**
   * Starts a command with streams the caller wires (`save`, `load`): what it reads or writes is the caller's to watch
   * for progress; it is stopped when the step stops.
   */
  start(args: readonly string[], options: { stdin?: boolean } = {}): RunningCommand {
    let running: ReturnType<typeof startCommand>;
    try {
      running = startCommand(this.command, args, { stdin: options.stdin, echo: true });
    } catch (error) {
      throw this.failure(error);
    }
    const done = running.exited.catch((error: unknown) => {
      throw this.failure(error);
    });
    done.catch(() => undefined);
    return { stdin: running.stdin, stdout: running.stdout, done, kill: running.kill, stderr: running.stderr };
  }

  /**
   * Runs a short command to its end, within the stall timeout. `echo: 'command'` logs the `[command]…` line but not
   * the output, which is JSON for the action to read rather than for people.
   */
  private async exec(
    args: readonly string[],
    options: { allowFailure?: boolean; echo: 'all' | 'command' },
  ): Promise<{ stdout: string; stderr: string; ok: boolean; failure: CommandFailed | undefined }> {
    let result;
    try {
      result = await runCommand(this.command, args, { deadlineMs: job.stallMs, echo: true });
    } catch (error) {
      throw this.failure(error);
    }
    if (options.echo === 'all' && result.stdout)
      process.stdout.write(result.stdout.endsWith('\n') ? result.stdout : `${result.stdout}\n`);
    if (!result.ok && !options.allowFailure) throw this.failure(result.failure);
    return result;
  }

  /** The one line for a command that failed: the engine unreachable, the command missing, or its own last words. */
  private failure(error: unknown): unknown {
    if (!(error instanceof CommandFailed)) return error;
    if (error.notStarted === 'not-found') {
      return new UserError(
        `The \`${this.command}\` command was not found on PATH: install it on the runner, or set \`engine\` to the CLI you have.`,
      );
    }
    if (UNREACHABLE.test(error.stderr)) {
      return new EngineError(
        `Cannot reach the ${this.command} engine (${error.line}): start it (GitHub-hosted runners have it running), ` +
          'or give a tarball as `source` to save without an engine.',
        error.stderr,
      );
    }
    return new EngineError(
      `\`${this.command} ${error.args[0] ?? ''}\` failed: ${shown(error.line, 300)}`,
      error.stderr,
    );
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
      const { stdout, stderr, ok, failure } = await this.exec(['image', 'inspect', ...batch], {
        allowFailure: true,
        echo: 'command',
      });
      if (!ok) {
        const unexplained = stderr
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line && !NO_SUCH_IMAGE.test(line));
        if (unexplained.length > 0 || UNREACHABLE.test(stderr)) throw this.failure(failure);
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
