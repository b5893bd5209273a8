import type { GuestConnection } from '../guest/connection.js';
import type { RDP_POLICY_VALUES } from '../guest/protocol.js';
import { windowsGuestPolicy, type TransferPermissions } from './enforcement.js';

/**
 * Applies the data-transfer policy inside a Windows guest as well: the Remote Desktop policy
 * values `windowsGuestPolicy()` computes (fDisableClip, fDisableCdm, fDisableCpm, ...) are set
 * by the guest agent (`rdp-policy.apply`), so an RDP client of the user's own is held to the same
 * policy as Tandem's. Returns what the agent set.
 *
 * @example
 * ```ts
 * const launch = await launchApp({ session, appId: 'erp', policy });
 * await applyWindowsGuestPolicy(guest, launch.policy.permissions); // ['fDisableClip=1', ...]
 * ```
 */
export function applyWindowsGuestPolicy(
  guest: Pick<GuestConnection, 'applyRdpPolicy'>,
  permissions: TransferPermissions,
): Promise<string[]> {
  return guest.applyRdpPolicy(
    windowsGuestPolicy(permissions).map((v) => ({
      name: v.name as (typeof RDP_POLICY_VALUES)[number],
      value: v.value === 0 ? 0 : 1,
    })),
  );
}
