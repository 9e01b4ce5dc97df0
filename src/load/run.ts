/** What one load works with: its inputs, the engine and what is known of it, the phases' timer, where to read from. */
import * as core from '@actions/core';
import type { Inputs } from '../action/inputs.ts';
import { selectReferences, type Selection } from '../archive/canonical.ts';
import type { OciLayout } from '../archive/layout.ts';
import type { ArchiveReport } from '../archive/model.ts';
import type { ArtifactLocation } from '../artifacts/listing.ts';
import type { ContainerEngine } from '../engine/engine.ts';
import type { EngineKind } from '../engine/output.ts';
import type { PhaseTimer } from '../progress.ts';

/** What the action knows of the engine it loads into (or, with `load: false`, would). */
export interface EngineFacts {
  kind: EngineKind;
  /** `os/architecture` of the engine, which decides the platform an engine without the containerd store loads. */
  platform: string | undefined;
}

export interface LoadRun {
  inputs: Inputs;
  engine: ContainerEngine;
  facts: EngineFacts;
  timer: PhaseTimer;
  location: ArtifactLocation;
  /** The tags expected back (`tags`); empty: every tag the tarball records. */
  wanted: string[];
  /** The OCI layout the verified images are also written to (`oci-layout`), if any. */
  layout: OciLayout | undefined;
}

/** The images of `report` a load names, each under the references it is named by: the wanted tags, or every tag. */
export function selectionOf(run: LoadRun, report: ArchiveReport): Selection[] {
  return selectReferences(report, run.wanted.length > 0 ? run.wanted : undefined);
}

/** The engine to load into, asked before anything is downloaded: no engine, no download. */
export async function engineFacts(engine: ContainerEngine): Promise<EngineFacts> {
  const { version, api } = await engine.serverVersion();
  const [kind, platform] = await Promise.all([engine.kind(), engine.platform()]);
  const store = kind === 'docker-containerd' ? 'containerd image store' : kind === 'podman' ? '' : 'graph driver';
  core.info(`${engine.command} engine ${version} (API ${api}${store ? `, ${store}` : ''}, ${platform})`);
  return { kind, platform };
}

/**
 * With `load: false` no engine is needed, but `image-id` still names what this runner's engine would show: the
 * engine is asked when one answers, else the containerd image store is assumed (ubuntu-latest's Docker 29).
 */
export async function likelyEngine(engine: ContainerEngine): Promise<EngineFacts> {
  try {
    const [kind, platform] = await Promise.all([engine.kind(), engine.platform()]);
    return { kind, platform };
  } catch {
    return { kind: engine.command === 'podman' ? 'podman' : 'docker-containerd', platform: undefined };
  }
}
