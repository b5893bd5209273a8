import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SnapshotInfo, VmSpec, VmState } from '../adapter/types.js';

/** One VM inside the mock hypervisor. */
export interface MockVmRecord {
  name: string;
  id: string;
  spec: VmSpec;
  state: VmState;
  snapshots: SnapshotInfo[];
  currentSnapshot: string | null;
  /** SHA-256 (hex) of the key each encrypted disk was encrypted with, by disk path. */
  diskKeys: Record<string, string>;
  /** The simulated disk's contents (written by `MockAdapter.writeDisk`). */
  disk?: string;
  /** The disk's contents each snapshot holds, by snapshot id. */
  snapshotDisks?: Record<string, string>;
  /** Encrypted overlays on, with the disk's contents as the base held them when each was made. */
  overlays?: { base: string; overlay: string; baseDisk: string }[];
}

/** The whole mock hypervisor, as persisted in its state file. */
export interface MockHypervisorState {
  version: 1;
  nextId: number;
  vms: MockVmRecord[];
}

export function emptyState(): MockHypervisorState {
  return { version: 1, nextId: 1, vms: [] };
}

export function readState(file: string): MockHypervisorState {
  if (!existsSync(file)) return emptyState();
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as MockHypervisorState;
  return parsed.version === 1 ? parsed : emptyState();
}

/** Writes atomically (temporary file, then rename), so a crash never leaves a torn file. */
export function writeState(file: string, state: MockHypervisorState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2));
  renameSync(tmp, file);
}
