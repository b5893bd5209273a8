import type { VmState } from '@tandem/core';

/** libvirt's virDomainState values. */
export const LibvirtDomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;

/**
 * Maps libvirt's state number to the normalized set. SHUTOFF is refined by
 * {@link refineShutoff}: a managed-save image makes it `saved`, a crash makes it `crashed`.
 * PMSUSPENDED (the guest put itself to sleep) counts as `paused`: resume wakes it.
 */
export function mapDomainState(state: number): VmState {
  switch (state) {
    case LibvirtDomainState.RUNNING:
    case LibvirtDomainState.BLOCKED:
      return 'running';
    case LibvirtDomainState.PAUSED:
    case LibvirtDomainState.PMSUSPENDED:
      return 'paused';
    case LibvirtDomainState.SHUTDOWN:
      return 'stopping';
    case LibvirtDomainState.SHUTOFF:
      return 'stopped';
    case LibvirtDomainState.CRASHED:
      return 'crashed';
    default:
      return 'unknown';
  }
}

/**
 * Refines a shut-off VM's state from `virsh domstate --reason` output ("shut off (crashed)")
 * and whether it has a managed-save image.
 */
export function refineShutoff(domstateReason: string | undefined, hasManagedSave: boolean): VmState {
  if (hasManagedSave) return 'saved';
  const reason = /\(([^)]*)\)\s*$/.exec(domstateReason?.trim() ?? '')?.[1];
  if (reason === 'crashed') return 'crashed';
  if (reason === 'saved') return 'saved';
  return 'stopped';
}

/** Maps a snapshot's `<state>` to the VM state reverting brings back. */
export function mapSnapshotState(state: string | undefined): VmState {
  switch (state) {
    case 'running':
    case 'blocked':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case 'shutoff':
    case 'shutdown':
    case 'disk-snapshot':
      return 'stopped';
    case 'crashed':
      return 'crashed';
    default:
      return 'unknown';
  }
}
