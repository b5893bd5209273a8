import { HypervisorError, InvalidInputError, assertArgument, type VmSpec } from '@tandem/core';
import { asList } from './parse.js';
import { allowed, macForHyperV, type HyperVContext } from './vm.js';

/** The values the set-network script takes, after checking the network. */
export function liveNetworkValues(
  vm: string,
  network: VmSpec['network'],
  defaultSwitch: string,
): Record<string, string | undefined> {
  const modes = ['nat', 'bridged', 'host-only', 'none'];
  if (!network || !modes.includes(network.mode)) {
    throw new InvalidInputError(
      `Network mode ${JSON.stringify((network as { mode?: unknown } | undefined)?.mode)} is not one of ${modes.join(', ')}.`,
      { details: { what: 'network.mode', expected: modes } },
    );
  }
  let sw: string | undefined;
  if (network.mode === 'nat') sw = network.bridge ?? defaultSwitch;
  else if (network.mode === 'bridged' || network.mode === 'host-only') {
    if (!network.bridge) {
      throw new InvalidInputError(
        `${network.mode} networking on Hyper-V needs network.bridge: the name of the ${network.mode === 'bridged' ? 'external' : 'internal'} virtual switch.`,
        { details: { what: 'network.bridge' } },
      );
    }
    sw = network.bridge;
  }
  if (sw !== undefined) assertArgument(sw, 'virtual switch name');
  return {
    name: vm,
    allowed: allowed(['running', 'paused']),
    network: network.mode,
    switch: sw,
    mac: network.macAddress ? macForHyperV(network.macAddress) : undefined,
  };
}

/**
 * Switches a running or paused VM's first network adapter (Connect-VMNetworkAdapter to the
 * mode's switch, Disconnect-VMNetworkAdapter for none; Add-VMNetworkAdapter when the VM was
 * defined without one). Hyper-V keeps the change in the VM's configuration, so the next start
 * keeps it. Checks that the adapter ended up where it was asked to.
 */
export async function setLiveNetwork(
  ctx: HyperVContext,
  values: Record<string, string | undefined>,
  vm: string,
): Promise<void> {
  const out = asList(await ctx.ps.call('set-network', values, `Switch the network of "${vm}" to ${values['network']}`));
  const first = out[0] ?? {};
  // A disconnected adapter has no switch name (null; an empty string in some builds).
  const switchName = typeof first['SwitchName'] === 'string' && first['SwitchName'] !== '' ? first['SwitchName'] : null;
  const want = values['network'] === 'none' ? null : (values['switch'] ?? null);
  if (values['network'] === 'none' ? out.length > 0 && switchName !== null : switchName !== want) {
    throw new HypervisorError(
      `Switched the network of "${vm}", but Hyper-V reports its adapter on ${switchName === null ? 'no switch' : `switch "${switchName}"`} instead of ${want === null ? 'none' : `"${want}"`}. See details.adapters.`,
      { details: { vm, adapters: out, wanted: want } },
    );
  }
}
