import {
  ConflictError,
  InvalidStateError,
  type KeyedQueue,
  NotFoundError,
  assertArgument,
  InvalidInputError,
  TandemError,
  type Clock,
  type VmState,
} from '@tandem/core';
import { mapVmState, parseListVms, parseMachineReadable, type ListedVm, type MachineReadable } from './parse.js';
import type { VBoxManageCli } from './vboxmanage.js';

/** A VM found by name, with what `showvminfo` says about it now. */
export interface Machine {
  readonly name: string;
  readonly uuid: string;
  readonly info: MachineReadable;
  /** VirtualBox's own state word (`poweroff`, `running`, ...). */
  readonly vboxState: string;
  readonly state: VmState;
}

/** What the adapter's parts share: the CLI, per-VM serialization, the clock and warnings. */
export interface VBoxContext {
  readonly cli: VBoxManageCli;
  readonly serial: KeyedQueue;
  readonly clock: Clock;
  readonly pollIntervalMs: number;
  /** Name to UUID, as last seen; always checked against showvminfo before use. */
  readonly uuids: Map<string, string>;
  warn(message: string): void;
}

/** Checks a VM name before any process starts. */
export function checkVmName(vm: string): void {
  assertArgument(vm, 'VM name');
  if (vm.trim() === '')
    throw new InvalidInputError('The VM name is empty; give the name of a VM.', { details: { what: 'VM name' } });
}

/** Lists registered VMs. */
export async function listMachines(ctx: VBoxContext): Promise<ListedVm[]> {
  const r = await ctx.cli.run(['list', 'vms'], 'List VirtualBox VMs');
  const vms = parseListVms(r.stdout);
  ctx.uuids.clear();
  for (const vm of vms) if (!vm.inaccessible) ctx.uuids.set(vm.name, vm.uuid);
  return vms;
}

/**
 * Finds a VM by its exact name (never by a UUID-looking name, never by prefix) and reads its
 * state. Commands then address the VM by UUID, so a name that starts with `-` or equals another
 * VM's UUID cannot be misread.
 */
export async function findMachine(ctx: VBoxContext, vm: string): Promise<Machine> {
  checkVmName(vm);
  // Fast path: the UUID seen last time, confirmed by the name showvminfo prints for it.
  const known = ctx.uuids.get(vm);
  if (known) {
    try {
      const m = await readMachine(ctx, vm, known);
      if (m.info.values.get('name') === vm) return m;
    } catch (err) {
      if (!TandemError.is(err, 'TANDEM_NOT_FOUND')) throw err;
    }
    ctx.uuids.delete(vm);
  }
  const matches = (await listMachines(ctx)).filter((m) => !m.inaccessible && m.name === vm);
  if (matches.length === 0) {
    throw new NotFoundError(`VirtualBox has no VM named "${vm}". Check the name with \`VBoxManage list vms\`.`, {
      details: { vm },
    });
  }
  if (matches.length > 1) {
    throw new ConflictError(
      `VirtualBox has ${matches.length} VMs named "${vm}"; rename all but one so Tandem can tell them apart.`,
      {
        details: { vm, uuids: matches.map((m) => m.uuid) },
      },
    );
  }
  const uuid = matches[0]!.uuid;
  return readMachine(ctx, vm, uuid);
}

/** Reads `showvminfo` for a known UUID. */
export async function readMachine(ctx: VBoxContext, name: string, uuid: string): Promise<Machine> {
  const r = await ctx.cli.run(['showvminfo', uuid, '--machinereadable'], `Read VM "${name}"`);
  const info = parseMachineReadable(r.stdout);
  const vboxState = info.values.get('VMState') ?? 'inaccessible';
  return { name, uuid, info, vboxState, state: mapVmState(vboxState) };
}

/** Throws InvalidStateError naming the current state unless it is one of `allowed`. */
export function expectState(m: Machine, allowed: readonly VmState[], action: string): void {
  if (!allowed.includes(m.state)) {
    throw new InvalidStateError(
      `Cannot ${action} VM "${m.name}": it is ${m.state} (VirtualBox: ${m.vboxState}); expected ${allowed.join(' or ')}.`,
      m.state,
      { details: { vm: m.name, expected: allowed, vboxState: m.vboxState } },
    );
  }
}

/**
 * Waits until the VM reaches one of `states` or `timeoutMs` passes (on the adapter's clock).
 * Returns the last machine read.
 */
export async function waitForState(
  ctx: VBoxContext,
  m: Machine,
  states: readonly VmState[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Machine> {
  const deadline = ctx.clock.now() + timeoutMs;
  let current = m;
  while (!states.includes(current.state) && ctx.clock.now() < deadline) {
    await ctx.clock.sleep(Math.min(ctx.pollIntervalMs, Math.max(0, deadline - ctx.clock.now())), signal);
    current = await readMachine(ctx, m.name, m.uuid);
  }
  return current;
}
