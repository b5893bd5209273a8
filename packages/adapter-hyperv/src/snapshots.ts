import {
  ConflictError,
  NotFoundError,
  assertArgument,
  InvalidInputError,
  type SnapshotInfo,
  type SnapshotOps,
} from '@tandem/core';
import { asList, guid, mapHyperVState, parsePsDate } from './parse.js';
import { allowed, checkVmName, type HyperVContext } from './vm.js';

function checkSnapshotName(name: string, what = 'checkpoint name'): void {
  assertArgument(name, what);
  if (name.trim() === '') throw new InvalidInputError(`The ${what} is empty; give a name.`, { details: { what } });
}

/** Reads the `{ Current, Snapshots }` object the snapshot scripts print. */
export function toSnapshots(value: unknown): SnapshotInfo[] {
  const o = (value ?? {}) as { Current?: unknown; Snapshots?: unknown };
  const current = guid(o.Current);
  return asList(o.Snapshots).map((s) => {
    const id = guid(s['Id']) ?? '';
    return {
      id,
      name: String(s['Name']),
      createdAt: parsePsDate(s['CreationTime']) ?? new Date(0).toISOString(),
      parentId: guid(s['ParentSnapshotId']),
      current: id === current,
      // The state the VM was in when the checkpoint was taken (Standard checkpoints keep memory).
      vmState: mapHyperVState(s['State']),
    };
  });
}

/**
 * Hyper-V checkpoints (Checkpoint-VM, Get-VMSnapshot, Restore-VMSnapshot, Remove-VMSnapshot).
 * Tandem defines VMs with Standard checkpoints, which keep memory, so a checkpoint of a running
 * VM comes back running. Checkpoint names need not be unique; ids (GUIDs) are.
 */
export class HyperVSnapshots implements SnapshotOps {
  constructor(readonly ctx: HyperVContext) {}

  async create(vm: string, options: { name: string; description?: string }): Promise<SnapshotInfo> {
    checkVmName(vm);
    checkSnapshotName(options.name);
    if (options.description !== undefined) this.ctx.warn('Hyper-V checkpoints have no description; it is not stored.');
    return this.ctx.serial.run(vm, async () => {
      const out = toSnapshots(
        await this.ctx.ps.call(
          'snapshot-create',
          { name: vm, snapshot: options.name, allowed: allowed(['running', 'paused', 'stopped', 'saved']) },
          `Checkpoint "${vm}"`,
        ),
      );
      const made = out.find((s) => s.current);
      if (!made)
        throw new NotFoundError(
          `Hyper-V took checkpoint "${options.name}" of "${vm}" but does not list it as current.`,
          { details: { vm } },
        );
      return made;
    });
  }

  async list(vm: string): Promise<SnapshotInfo[]> {
    checkVmName(vm);
    return this.ctx.serial.run(vm, async () => this.#list(vm));
  }

  async revert(vm: string, snapshot: string): Promise<void> {
    checkVmName(vm);
    checkSnapshotName(snapshot, 'checkpoint');
    return this.ctx.serial.run(vm, async () => {
      const target = pick(await this.#list(vm), snapshot, vm);
      const then = target.vmState === 'running' ? 'start' : target.vmState === 'paused' ? 'pause' : 'none';
      await this.ctx.ps.call(
        'snapshot-revert',
        { name: vm, snapshot: target.id, then },
        `Apply checkpoint "${target.name}" to "${vm}"`,
      );
    });
  }

  async delete(vm: string, snapshot: string, options: { children?: boolean } = {}): Promise<void> {
    checkVmName(vm);
    checkSnapshotName(snapshot, 'checkpoint');
    return this.ctx.serial.run(vm, async () => {
      const target = pick(await this.#list(vm), snapshot, vm);
      await this.ctx.ps.call(
        'snapshot-delete',
        { name: vm, snapshot: target.id, children: !!options.children },
        `Remove checkpoint "${target.name}" of "${vm}"`,
      );
    });
  }

  async #list(vm: string): Promise<SnapshotInfo[]> {
    return toSnapshots(await this.ctx.ps.call('snapshot-list', { name: vm }, `List checkpoints of "${vm}"`));
  }
}

/** Finds a checkpoint by id, or else by its name when that is unique. */
function pick(list: readonly SnapshotInfo[], snapshot: string, vm: string): SnapshotInfo {
  const byId = list.find((s) => s.id === snapshot.toLowerCase());
  if (byId) return byId;
  const byName = list.filter((s) => s.name === snapshot);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new ConflictError(
      `VM "${vm}" has ${byName.length} checkpoints named "${snapshot}"; use the checkpoint's id.`,
      {
        details: { vm, snapshot, ids: byName.map((s) => s.id) },
      },
    );
  }
  throw new NotFoundError(`VM "${vm}" has no checkpoint "${snapshot}". List its checkpoints to see what exists.`, {
    details: { vm, snapshot },
  });
}
