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

/** What {@link openedRecord} needs: the session just opened and where it came from. */
export interface OpenedSession {
  readonly session: Session;
  readonly loaded: LoadedWorkspace;
  readonly workspace: string;
  readonly vm: string;
  readonly adapter: SessionRecord['adapter'];
  readonly layers: readonly string[];
  /** The record of the session before (an earlier `up` of the same workspace), if any. */
  readonly existing?: SessionRecord | undefined;
}

/**
 * The record of a session just opened (by `tandem up` in-process or the agent's `up`): a new
 * record, or the existing one's id, creation time and defined VM spec carried over.
 */
export function openedRecord(o: OpenedSession): SessionRecord {
  const now = new Date().toISOString();
  return recordAfter(
    {
      id: o.session.id,
      workspace: o.workspace,
      file: o.loaded.file,
      spec: o.loaded.workspace,
      adapter: o.adapter,
      vm: o.vm,
      state: o.session.state,
      ...(o.layers.length > 0 ? { layers: [...o.layers] } : {}),
      ...(o.existing?.vmSpec ? { vmSpec: o.existing.vmSpec } : {}),
      createdAt: o.existing?.createdAt ?? now,
      updatedAt: now,
    },
    o.session,
  );
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
