import type { DiskSpec, HypervisorAdapter, VmInfo, VmSpec } from '../adapter/types.js';
import type { VmSpecChange } from '../events/types.js';

/** What is known of a defined VM: what the adapter reads back, and what the caller recorded. */
export type DefinedVm = Pick<VmInfo, 'memoryMiB' | 'cpus' | 'disks' | 'network' | 'labels' | 'boot'>;

/** A VM spec change waiting for the session's next start. */
export interface VmUpdate {
  /** The spec the VM gets. */
  readonly spec: VmSpec;
  /** The workspace version the VM was defined for, when known. */
  readonly fromVersion: string | null;
  readonly toVersion: string;
  readonly changes: readonly VmSpecChange[];
}

const disks = (list: readonly DiskSpec[]): string =>
  list.map((d) => `${d.path} (${d.format}${d.encryption ? ', encrypted' : ''})`).join(', ') || 'none';

const boot = (b: VmSpec['boot'] | null): string =>
  b
    ? [
        `kernel ${b.kernel}`,
        b.initrd ? `initrd ${b.initrd}` : '',
        b.cmdline !== undefined ? `cmdline "${b.cmdline}"` : '',
      ]
        .filter(Boolean)
        .join(', ')
    : 'from its disks';

const network = (n: VmSpec['network']): string =>
  [n.mode, n.bridge ? `bridge ${n.bridge}` : '', n.macAddress ? `MAC ${n.macAddress}` : ''].filter(Boolean).join(', ');

/**
 * What differs between a defined VM and the spec a workspace version asks for: disks, memory,
 * CPUs, network, direct kernel boot. Only what is known of the defined VM is compared (an adapter that cannot read
 * disks back reports no disk change unless the caller recorded the spec it defined).
 *
 * @example
 * ```ts
 * diffVmSpec({ memoryMiB: 1024, cpus: 1 }, spec);
 * // [{ field: 'cpus', from: '1 CPU', to: '2 CPUs' }]
 * ```
 */
export function diffVmSpec(defined: DefinedVm, wanted: VmSpec): VmSpecChange[] {
  const changes: VmSpecChange[] = [];
  if (defined.disks !== undefined) {
    const same =
      defined.disks.length === wanted.disks.length &&
      defined.disks.every((d, i) => {
        const w = wanted.disks[i]!;
        return d.path === w.path && d.format === w.format && d.encryption?.keyId === w.encryption?.keyId;
      });
    if (!same) changes.push({ field: 'disks', from: disks(defined.disks), to: disks(wanted.disks) });
  }
  if (defined.memoryMiB !== undefined && defined.memoryMiB !== wanted.memoryMiB)
    changes.push({ field: 'memoryMiB', from: `${defined.memoryMiB} MiB`, to: `${wanted.memoryMiB} MiB` });
  if (defined.cpus !== undefined && defined.cpus !== wanted.cpus) {
    const cpus = (n: number): string => `${n} CPU${n === 1 ? '' : 's'}`;
    changes.push({ field: 'cpus', from: cpus(defined.cpus), to: cpus(wanted.cpus) });
  }
  if (defined.network !== undefined && network(defined.network) !== network(wanted.network))
    changes.push({ field: 'network', from: network(defined.network), to: network(wanted.network) });
  if (defined.boot !== undefined && boot(defined.boot) !== boot(wanted.boot ?? null))
    changes.push({ field: 'boot', from: boot(defined.boot), to: boot(wanted.boot ?? null) });
  return changes;
}

/** One line for people: `cpus: 1 CPU -> 2 CPUs; memoryMiB: 1024 MiB -> 2048 MiB`. */
export function describeVmChanges(changes: readonly VmSpecChange[]): string {
  return changes.map((c) => `${c.field}: ${c.from} -> ${c.to}`).join('; ');
}

/** Merges what the adapter reads back with a recorded spec: the adapter's facts win. */
export function definedVm(info: VmInfo, recorded?: VmSpec): DefinedVm {
  const pick = <K extends keyof DefinedVm>(key: K): Partial<DefinedVm> => {
    const value = info[key] ?? recorded?.[key];
    return value === undefined ? {} : { [key]: value };
  };
  // `null` (boots from its disks) is a fact the adapter read, not a gap for the record to fill.
  const bootFact = info.boot !== undefined ? info.boot : recorded ? (recorded.boot ?? null) : undefined;
  return {
    ...pick('memoryMiB'),
    ...pick('cpus'),
    ...pick('disks'),
    ...pick('network'),
    ...pick('labels'),
    ...(bootFact === undefined ? {} : { boot: bootFact }),
  };
}

/**
 * Redefines a stopped VM for `update`: in place when the adapter can (`redefine`, snapshots
 * kept), else by destroying the definition (disks are kept, holding the VM's current state) and
 * defining it again with the new spec's disks, which loses its snapshots (a revertible VM goes
 * back to its baseline first). A revertible workspace whose disks changed gets a new baseline of the new disk.
 * Returns the snapshots kept and the names of those dropped.
 */
export async function applyVmUpdate(
  adapter: HypervisorAdapter,
  vm: string,
  update: VmUpdate,
  options: { revertible: boolean; baseline: string },
): Promise<{ snapshotsKept: number; snapshotsDropped: string[] }> {
  const snapshotOps = adapter.capabilities.snapshots !== false ? adapter.snapshots : undefined;
  const before = snapshotOps ? await snapshotOps.list(vm) : [];
  let kept = before.length;
  let dropped: string[] = [];
  let after = before;
  if (adapter.redefine) {
    await adapter.redefine(update.spec);
    // An adapter drops what cannot survive the new definition (libvirt: internal snapshots of
    // a disk that was replaced); what is gone is reported as dropped.
    if (snapshotOps) {
      after = await snapshotOps.list(vm);
      const left = new Set(after.map((s) => s.id));
      dropped = before.filter((s) => !left.has(s.id)).map((s) => s.name);
      kept = after.length;
    }
  } else {
    // A destroy that keeps the disks leaves them holding the VM's current state (VirtualBox and
    // Hyper-V merge snapshot chains into them). A revertible workspace's current state is
    // whatever the last session left: go back to the baseline first, so none of it is merged
    // into the image.
    const baseline = options.revertible ? before.find((s) => s.name === options.baseline) : undefined;
    if (baseline && snapshotOps) await snapshotOps.revert(vm, baseline.id);
    await adapter.destroy(vm, { deleteDisks: false });
    await adapter.define(update.spec);
    dropped = before.map((s) => s.name);
    kept = 0;
  }
  const disksChanged = update.changes.some((c) => c.field === 'disks');
  if (options.revertible && snapshotOps && (disksChanged || kept === 0)) {
    // The baseline must be the new image as delivered, never booted.
    const old = kept > 0 ? after.find((s) => s.name === options.baseline) : undefined;
    if (old) {
      await snapshotOps.delete(vm, old.id);
      kept -= 1;
      dropped = [...dropped, old.name];
    }
    await snapshotOps.create(vm, { name: options.baseline, description: 'revertible workspace baseline' });
  }
  return { snapshotsKept: kept, snapshotsDropped: dropped };
}
