import { InvalidInputError, InvalidStateError, assertArgument, type VmSpec } from '@tandem/core';
import { macForVBox } from './define.js';
import { expectState, type Machine, type VBoxContext } from './machine.js';

/** The host-only interface `host-only` uses when the spec names none (as `define` does). */
export const DEFAULT_HOST_ONLY_ADAPTER = 'vboxnet0';

/**
 * The `controlvm` calls that switch the first card of a running VM to `network`, in order.
 * `none` keeps the card (VirtualBox cannot unplug one from a running VM) and takes its cable
 * out, then detaches it (`null`); every other mode attaches first and plugs the cable back in.
 * VirtualBox saves both changes in the VM's settings, so the next start keeps them.
 */
export function liveNetworkCommands(uuid: string, network: VmSpec['network']): string[][] {
  switch (network.mode) {
    case 'nat':
      return [
        ['controlvm', uuid, 'nic1', 'nat'],
        ['controlvm', uuid, 'setlinkstate1', 'on'],
      ];
    case 'bridged':
      return [
        ['controlvm', uuid, 'nic1', 'bridged', network.bridge ?? ''],
        ['controlvm', uuid, 'setlinkstate1', 'on'],
      ];
    case 'host-only':
      return [
        ['controlvm', uuid, 'nic1', 'hostonly', network.bridge ?? DEFAULT_HOST_ONLY_ADAPTER],
        ['controlvm', uuid, 'setlinkstate1', 'on'],
      ];
    case 'none':
      return [
        ['controlvm', uuid, 'setlinkstate1', 'off'],
        ['controlvm', uuid, 'nic1', 'null'],
      ];
  }
}

/** Checks a network for a live switch before any process starts. */
export function checkLiveNetwork(network: VmSpec['network']): void {
  const modes = ['nat', 'bridged', 'host-only', 'none'];
  if (!network || !modes.includes(network.mode)) {
    throw new InvalidInputError(
      `Network mode ${JSON.stringify((network as { mode?: unknown } | undefined)?.mode)} is not one of ${modes.join(', ')}.`,
      { details: { what: 'network.mode', expected: modes } },
    );
  }
  if (network.mode === 'bridged' && !network.bridge) {
    throw new InvalidInputError(
      'Bridged networking needs network.bridge: the host interface to bridge to (for example eth0).',
      { details: { what: 'network.bridge' } },
    );
  }
  if (network.bridge !== undefined) assertArgument(network.bridge, 'network bridge');
  if (network.macAddress !== undefined) macForVBox(network.macAddress);
}

/**
 * Switches a running or paused VM's first card to `network` with `controlvm nic1` and
 * `setlinkstate1`. Refuses, with the reason, what VirtualBox cannot do to a running VM: a VM
 * defined without a card (`nic1="none"`: a disabled card cannot be enabled while it runs), and a
 * different MAC address (`modifyvm --macaddress1` needs the VM off).
 */
export async function setLiveNetwork(ctx: VBoxContext, m: Machine, network: VmSpec['network']): Promise<void> {
  expectState(m, ['running', 'paused'], 'switch the network of');
  const nic = m.info.values.get('nic1') ?? 'none';
  if (nic === 'none') {
    throw new InvalidStateError(
      `VM "${m.name}" has no enabled network card (it was defined with network mode none), and VirtualBox cannot enable one while the VM runs. Stop it and define it again with a network mode, or wait for the next start.`,
      m.state,
      { details: { vm: m.name, nic1: nic, wanted: network.mode } },
    );
  }
  if (network.macAddress !== undefined) {
    const current = m.info.values.get('macaddress1') ?? '';
    const wanted = macForVBox(network.macAddress);
    if (current.toUpperCase() !== wanted) {
      throw new InvalidInputError(
        `VirtualBox cannot change the MAC address of running VM "${m.name}" (it has ${current || 'none'}, the network asks for ${wanted}). Leave network.macAddress out to keep the current one, or stop the VM and redefine it.`,
        { details: { what: 'network.macAddress', vm: m.name, current, wanted } },
      );
    }
  }
  for (const args of liveNetworkCommands(m.uuid, network)) {
    const r = await ctx.cli.run(args, `Switch the network of "${m.name}" to ${network.mode}`);
    // verifyHostNetworkInterfaceName(): VirtualBox accepts an interface it does not know and warns.
    for (const line of `${r.stderr}\n${r.stdout}`.split(/\r?\n/)) {
      const w = /^VBoxManage(?:\.exe)?: warning: (.*)$/.exec(line)?.[1];
      if (w) ctx.warn(`VirtualBox, switching the network of "${m.name}": ${w}`);
    }
  }
}
