import { InvalidInputError } from '../errors.js';
import type { AdapterCapabilities, HypervisorAdapter } from './types.js';

/** One capability an adapter claims without the member that implements it. */
export interface CapabilityMismatch {
  /** The capability as written in `capabilities` (`suspend.save`, `snapshots`, ...). */
  readonly capability: string;
  /** The member the capability needs (`save()`, `snapshots.revert()`, ...). */
  readonly member: string;
}

type Claim = readonly [capability: string, claimed: (c: AdapterCapabilities) => boolean, members: readonly string[]];

// Each claimed capability and the members it needs, as dotted paths on the adapter.
const CLAIMS: readonly Claim[] = [
  ['suspend.save', (c) => c.suspend.save, ['save', 'restore']],
  [
    'snapshots',
    (c) => c.snapshots !== false,
    ['snapshots.create', 'snapshots.list', 'snapshots.revert', 'snapshots.delete'],
  ],
  ['seamlessWindows', (c) => c.seamlessWindows.length > 0, ['seamless.launch']],
  ['guestChannel', (c) => c.guestChannel.length > 0, ['guestChannel.open']],
  ['diskEncryption', (c) => c.diskEncryption, ['diskEncryption.encrypt']],
  [
    'encryptedOverlays',
    (c) => c.encryptedOverlays === true,
    ['encryptedOverlays.create', 'encryptedOverlays.discard', 'encryptedOverlays.list'],
  ],
  ['liveNetwork', (c) => c.liveNetwork === true, ['setNetwork']],
];

/**
 * Lists the capabilities an adapter claims but lacks the members for (empty when they match).
 * An adapter without a readable `capabilities` object is reported as one mismatch.
 */
export function capabilityMismatches(adapter: HypervisorAdapter): CapabilityMismatch[] {
  const caps = (adapter as Partial<HypervisorAdapter>).capabilities;
  if (caps === null || typeof caps !== 'object') return [{ capability: 'capabilities', member: 'capabilities' }];
  const out: CapabilityMismatch[] = [];
  for (const [capability, claimed, members] of CLAIMS) {
    let isClaimed: boolean;
    try {
      isClaimed = claimed(caps);
    } catch {
      out.push({ capability, member: 'capabilities' });
      continue;
    }
    if (!isClaimed) continue;
    for (const member of members) {
      if (typeof memberAt(adapter, member) !== 'function') out.push({ capability, member: `${member}()` });
    }
  }
  return out;
}

/**
 * Throws InvalidInputError (fault `adapter`) naming the adapter and every missing member when
 * its capabilities claim something it does not implement. The registry and
 * {@link loadAdapterModule} call it on every adapter they create, so a wrong capabilities
 * object fails at load time instead of as a `TypeError` in the middle of a session.
 *
 * @example
 * ```ts
 * assertCapabilitiesMatchMembers(new MockAdapter()); // passes: the mock has every member
 * ```
 */
export function assertCapabilitiesMatchMembers(adapter: HypervisorAdapter): void {
  const missing = capabilityMismatches(adapter);
  if (missing.length === 0) return;
  const name = typeof adapter.name === 'string' ? adapter.name : '(unnamed)';
  const list = missing.map((m) => `${m.capability} needs ${m.member}`).join('; ');
  throw new InvalidInputError(
    `The ${name} adapter claims capabilities it does not implement: ${list}. Add the members, or set those capabilities to false in the adapter.`,
    { fault: 'adapter', details: { adapter: name, missing: missing.map((m) => ({ ...m })) } },
  );
}

function memberAt(adapter: HypervisorAdapter, path: string): unknown {
  let at: unknown = adapter;
  for (const key of path.split('.')) {
    if (at === null || (typeof at !== 'object' && typeof at !== 'function')) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}
