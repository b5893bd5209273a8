import {
  ConflictError,
  InvalidStateError,
  NotFoundError,
  TandemError,
  assertArgument,
  InvalidInputError,
  type SnapshotInfo,
  type SnapshotOps,
  type VmState,
} from '@tandem/core';
import { mapVBoxError, parseErrorLines } from './errors.js';
import { checkVmName, findMachine, readMachine, type Machine, type VBoxContext } from './machine.js';
import { parseExtraData, parseSnapshotList, parseSnapshotTaken, type ListedSnapshot } from './parse.js';

const META_PREFIX = 'tandem/snapshot/';
/** Shown for snapshots taken outside Tandem, whose time VBoxManage does not print. */
const UNKNOWN_TIME = new Date(0).toISOString();

interface SnapshotMeta {
  createdAt?: string;
  vmState?: VmState;
}

function checkSnapshotName(name: string, what = 'snapshot name'): void {
  assertArgument(name, what);
  if (name.trim() === '') throw new InvalidInputError(`The ${what} is empty; give a name.`, { details: { what } });
}

/**
 * VirtualBox snapshots. VBoxManage prints neither a snapshot's time nor whether it holds a
 * running VM, so Tandem records both in the VM's extradata (`tandem/snapshot/<uuid>`) when it
 * takes the snapshot.
 */
export class VBoxSnapshots implements SnapshotOps {
  constructor(readonly ctx: VBoxContext) {}

  async create(vm: string, options: { name: string; description?: string }): Promise<SnapshotInfo> {
    checkVmName(vm);
    checkSnapshotName(options.name);
    if (options.description !== undefined) assertArgument(options.description, 'snapshot description');
    return this.ctx.serial.run(vm, async () => {
      const m = await findMachine(this.ctx, vm);
      const vmState: VmState = m.state === 'crashed' ? 'stopped' : m.state;
      const args = ['snapshot', m.uuid, 'take', options.name];
      if (options.description !== undefined) args.push(`--description=${options.description}`);
      if (m.state === 'running') args.push('--live');
      const r = await this.ctx.cli.run(args, `Take snapshot "${options.name}" of "${vm}"`);
      const uuid = parseSnapshotTaken(r.stdout);
      const meta: SnapshotMeta = { createdAt: new Date(this.ctx.clock.now()).toISOString(), vmState };
      if (uuid)
        await this.ctx.cli.run(
          ['setextradata', m.uuid, META_PREFIX + uuid, JSON.stringify(meta)],
          `Record snapshot metadata of "${vm}"`,
        );
      const list = await this.#list(m);
      const made = list.find((s) => s.id === uuid) ?? list.find((s) => s.current);
      if (!made)
        throw new NotFoundError(`VirtualBox took snapshot "${options.name}" of "${vm}" but does not list it.`, {
          details: { vm, uuid },
        });
      return made;
    });
  }

  async list(vm: string): Promise<SnapshotInfo[]> {
    checkVmName(vm);
    return this.ctx.serial.run(vm, async () => this.#list(await findMachine(this.ctx, vm)));
  }

  async revert(vm: string, snapshot: string): Promise<void> {
    checkVmName(vm);
    checkSnapshotName(snapshot, 'snapshot');
    return this.ctx.serial.run(vm, async () => {
      const m = await findMachine(this.ctx, vm);
      const target = pick(await this.#list(m), snapshot, vm);
      const { cli } = this.ctx;
      if (m.state === 'running' || m.state === 'paused')
        await cli.run(['controlvm', m.uuid, 'poweroff'], `Power off "${vm}"`);
      else if (m.state === 'saved') await cli.run(['discardstate', m.uuid], `Discard the saved state of "${vm}"`);
      await cli.run(['snapshot', m.uuid, 'restore', target.id], `Restore snapshot "${target.name}" of "${vm}"`);
      // A snapshot of a running VM comes back as a saved state; start it to bring back "running".
      const after = await readMachine(this.ctx, vm, m.uuid);
      const wanted =
        target.vmState === 'unknown' ? (after.state === 'saved' ? 'running' : after.state) : target.vmState;
      if ((wanted === 'running' || wanted === 'paused') && after.state !== 'running') {
        await cli.run(['startvm', m.uuid, '--type=headless'], `Start "${vm}" from snapshot "${target.name}"`);
        if (wanted === 'paused') await cli.run(['controlvm', m.uuid, 'pause'], `Pause "${vm}"`);
      }
    });
  }

  async delete(vm: string, snapshot: string, options: { children?: boolean } = {}): Promise<void> {
    checkVmName(vm);
    checkSnapshotName(snapshot, 'snapshot');
    return this.ctx.serial.run(vm, async () => {
      const m = await findMachine(this.ctx, vm);
      const list = await this.#list(m);
      const target = pick(list, snapshot, vm);
      // VirtualBox deletes one snapshot at a time and refuses one with several children, so a
      // subtree goes leaves first.
      const order = options.children ? [...descendants(list, target.id), target] : [target];
      for (const s of order) await this.#deleteOne(m, s);
    });
  }

  async #deleteOne(m: Machine, s: SnapshotInfo): Promise<void> {
    try {
      await this.ctx.cli.run(['snapshot', m.uuid, 'delete', s.id], `Delete snapshot "${s.name}" of "${m.name}"`);
    } catch (err) {
      if (TandemError.is(err, 'TANDEM_INVALID_STATE') && /child snapshot/i.test(String(err.details['output']))) {
        throw new InvalidStateError(
          `VirtualBox cannot delete snapshot "${s.name}" of "${m.name}" on its own: it refuses a snapshot with more than one child, or the current snapshot when it has a child. Delete it with its children, or delete or revert past the others first.`,
          m.state,
          { cause: err, details: { ...err.details, vm: m.name, snapshot: s.id, reason: 'snapshot-children' } },
        );
      }
      throw err;
    }
    await this.ctx.cli.run(['setextradata', m.uuid, META_PREFIX + s.id], `Remove snapshot metadata of "${m.name}"`);
  }

  async #list(m: Machine): Promise<SnapshotInfo[]> {
    const r = await this.ctx.cli.exec(['snapshot', m.uuid, 'list', '--machinereadable']);
    let listed: ListedSnapshot[];
    if (r.exitCode !== 0 && /does not have any snapshots/.test(r.stdout + r.stderr)) listed = [];
    else {
      const report = parseErrorLines(`${r.stderr}\n${r.stdout}`);
      if (r.exitCode !== 0 || report) throw mapVBoxError(r, `List snapshots of "${m.name}"`, report);
      listed = parseSnapshotList(r.stdout);
    }
    if (listed.length === 0) return [];
    const extra = parseExtraData(
      (await this.ctx.cli.run(['getextradata', m.uuid, 'enumerate'], `Read metadata of "${m.name}"`)).stdout,
    );
    return listed.map((s) => {
      let meta: SnapshotMeta = {};
      try {
        meta = JSON.parse(extra.get(META_PREFIX + s.uuid) ?? '{}') as SnapshotMeta;
      } catch {
        // metadata written by someone else; ignore it
      }
      return {
        id: s.uuid,
        name: s.name,
        ...(s.description !== undefined ? { description: s.description } : {}),
        createdAt: meta.createdAt ?? UNKNOWN_TIME,
        parentId: s.parentUuid,
        current: s.current,
        vmState: meta.vmState ?? 'unknown',
      };
    });
  }
}

/** Finds a snapshot by id, or else by its name when that is unique. */
function pick(list: readonly SnapshotInfo[], snapshot: string, vm: string): SnapshotInfo {
  const byId = list.find((s) => s.id === snapshot.toLowerCase());
  if (byId) return byId;
  const byName = list.filter((s) => s.name === snapshot);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new ConflictError(`VM "${vm}" has ${byName.length} snapshots named "${snapshot}"; use the snapshot's id.`, {
      details: { vm, snapshot, ids: byName.map((s) => s.id) },
    });
  }
  throw new NotFoundError(`VM "${vm}" has no snapshot "${snapshot}". List its snapshots to see what exists.`, {
    details: { vm, snapshot },
  });
}

/** Descendants of a snapshot, deepest first. */
function descendants(list: readonly SnapshotInfo[], id: string): SnapshotInfo[] {
  const out: SnapshotInfo[] = [];
  for (const child of list.filter((s) => s.parentId === id)) out.push(...descendants(list, child.id), child);
  return out;
}
