import { loadPolicy, type LoadedWorkspace, type PolicyEngine, type Session, type Workspace } from '@tandem/core';
import { dirname } from 'node:path';
import type { SessionRecord } from './state-dir.js';

/** The record of `session` after an operation: its state, the VM spec in force and any pending update. */
export function recordAfter(record: SessionRecord, session: Session): SessionRecord {
  const pending = session.pendingUpdate;
  const { pendingUpdate: _old, vmSpec: _spec, ...rest } = record;
  const vmSpec = pending ? record.vmSpec : session.vmSpec;
  return {
    ...rest,
    state: session.state,
    ...(vmSpec ? { vmSpec } : {}),
    ...(pending
      ? {
          pendingUpdate: {
            fromVersion: pending.fromVersion,
            toVersion: pending.toVersion,
            changes: [...pending.changes],
          },
        }
      : {}),
    updatedAt: new Date().toISOString(),
  };
}

/** The policy engine for a workspace and the layer files recorded with its session. */
export async function policyFor(loaded: LoadedWorkspace, layerFiles: readonly string[] = []): Promise<PolicyEngine> {
  return (await loadPolicy({ workspace: loaded, layerFiles })).engine;
}

/** The workspace a record holds, as a loaded workspace (the file may have moved since). */
export function loadedOf(record: SessionRecord): LoadedWorkspace {
  return { workspace: record.spec, file: record.file, baseDir: dirname(record.file) };
}

/** True when the workspace's image is encrypted (its disk keys are released by the CLI). */
export function isEncrypted(workspace: Workspace): boolean {
  return workspace.spec.image.encryption !== undefined;
}
