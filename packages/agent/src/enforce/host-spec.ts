import {
  applyVmUpdate,
  BASELINE_SNAPSHOT,
  computeMemoryMiB,
  diffVmSpec,
  type EventBus,
  type Session,
  type VmSpec,
  type VmSpecChange,
} from '@tandem/core';
import { chooseNetwork, type HostLocation, type NetworkChoice } from './location.js';

/** What the host rules asked for at a start, and what was done. */
export interface HostSpecOutcome {
  readonly memoryMiB: number;
  readonly hostMemoryMiB: number;
  readonly network: NetworkChoice;
  /** What differed from the defined VM. */
  readonly changes: readonly VmSpecChange[];
  /**
   * `redefined`: the stopped VM got the new spec; `live`: the running VM's network was switched
   * at once (the adapter's `setNetwork`; a memory change still waits); `next-start`: it runs,
   * the change waits.
   */
  readonly applied: 'unchanged' | 'redefined' | 'live' | 'next-start';
}

/**
 * The VM spec for this host now: memory sized by the host's RAM (the adapter's probe, read at
 * every call) and the network chosen by where the host is.
 */
export async function hostSpec(
  session: Session,
  location: HostLocation,
): Promise<{ spec: VmSpec; hostMemoryMiB: number; network: NetworkChoice } | undefined> {
  const base = session.pendingUpdate?.spec ?? session.vmSpec;
  if (!base) return undefined;
  const probe = await session.adapter.probe();
  if (!probe.usable) return undefined;
  const network = chooseNetwork(session.workspace, location);
  const spec: VmSpec = {
    ...base,
    memoryMiB: computeMemoryMiB(session.workspace.spec.hardware.memory, probe.host.memoryMiB),
    network: {
      mode: network.mode,
      ...(network.bridge !== undefined ? { bridge: network.bridge } : {}),
      ...(base.network.macAddress !== undefined ? { macAddress: base.network.macAddress } : {}),
    },
  };
  return { spec, hostMemoryMiB: probe.host.memoryMiB, network };
}

/**
 * Applies memory by host RAM and network by location to the session's VM: a stopped VM is
 * redefined when either differs (snapshots kept where the adapter can redefine in place); a VM
 * that runs gets the new network at once where the adapter can (`capabilities.liveNetwork`),
 * else keeps its definition until its next start, as does a memory change. Publishes a `policy.decision` for each
 * (`hardware.memory`, `network.location`).
 */
export async function applyHostSpec(
  session: Session,
  location: HostLocation,
  events: EventBus | undefined,
): Promise<HostSpecOutcome | undefined> {
  const wanted = await hostSpec(session, location);
  if (!wanted) return undefined;
  const { spec, hostMemoryMiB, network } = wanted;
  const info = (await session.adapter.list()).find((v) => v.name === session.vm);
  const defined = {
    memoryMiB: info?.memoryMiB ?? session.vmSpec?.memoryMiB,
    network: info?.network ?? session.vmSpec?.network,
  };
  const changes = diffVmSpec(
    {
      ...(defined.memoryMiB !== undefined ? { memoryMiB: defined.memoryMiB } : {}),
      ...(defined.network !== undefined ? { network: defined.network } : {}),
    },
    spec,
  );
  const idle = session.state === 'stopped' || session.state === 'crashed';
  let applied: HostSpecOutcome['applied'] = 'unchanged';
  // A pending version update redefines the VM itself at the start; it carries its own spec.
  if (changes.length > 0 && info && idle && !session.pendingUpdate) {
    await applyVmUpdate(
      session.adapter,
      session.vm,
      {
        spec,
        fromVersion: info.labels?.['tandem.version'] ?? null,
        toVersion: session.workspace.metadata.version,
        changes,
      },
      { revertible: session.policy.settings.mode.value === 'revertible', baseline: BASELINE_SNAPSHOT },
    );
    applied = 'redefined';
  } else if (changes.length > 0) {
    applied = 'next-start';
  }
  const networkChanged = changes.some((c) => c.field === 'network');
  let networkWhen = applied === 'next-start' ? ' (the VM runs: applied at its next start)' : '';
  if (applied === 'next-start' && networkChanged && !session.pendingUpdate && info) {
    const adapter = session.adapter;
    const vmState = await adapter.state(session.vm).catch(() => 'unknown' as const);
    if (vmState !== 'running' && vmState !== 'paused') {
      // Starting, stopping, saved: the next start picks the network up.
    } else if (adapter.capabilities.liveNetwork === true && adapter.setNetwork) {
      try {
        await adapter.setNetwork(session.vm, spec.network);
        networkWhen = ' (applied live: the running VM switched without a restart)';
        if (changes.every((c) => c.field === 'network')) applied = 'live';
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        networkWhen = ` (the live change failed: ${why}; applied at its next start)`;
      }
    } else {
      networkWhen = ` (the VM runs and the ${adapter.name} adapter cannot change its network live: applied at its next start)`;
    }
  }
  const context = { workspace: session.workspace.metadata.name, session: session.id };
  const when = applied === 'next-start' || applied === 'live' ? ' (the VM runs: applied at its next start)' : '';
  events?.publish(
    'policy.decision',
    {
      kind: 'hardware.memory',
      subject: session.vm,
      outcome: `${spec.memoryMiB} MiB`,
      reason: `host RAM ${hostMemoryMiB} MiB, rule ${JSON.stringify(session.workspace.spec.hardware.memory)}: ${spec.memoryMiB} MiB${changes.some((c) => c.field === 'memoryMiB') ? when : ''}`,
    },
    context,
  );
  events?.publish(
    'policy.decision',
    {
      kind: 'network.location',
      subject: session.vm,
      outcome: network.mode,
      ...(network.profile !== null ? { rule: `spec.network.profiles[${network.profile}]` } : {}),
      reason: `${network.reason}${networkChanged ? networkWhen : ''}`,
    },
    context,
  );
  return { memoryMiB: spec.memoryMiB, hostMemoryMiB, network, changes, applied };
}
