// @tandem/adapter-virtualbox: the public API. Named exports only.
import { envOption, numberOption, sshOptionsFromStrings, type AdapterModule } from '@tandem/core';
import { VirtualBoxAdapter, type VirtualBoxOptions } from './adapter.js';

/**
 * Creates the VirtualBox adapter.
 *
 * @example
 * ```ts
 * import { virtualbox } from '@tandem/adapter-virtualbox';
 *
 * const local = virtualbox();
 * const remote = virtualbox({ ssh: { host: 'vbox01', username: 'ops', agent: true } });
 * const probe = await local.probe();
 * ```
 */
export function virtualbox(options: VirtualBoxOptions = {}): VirtualBoxAdapter {
  return new VirtualBoxAdapter(options);
}

/**
 * Options given as flat strings, as `tandem --adapter-option key=value` passes them:
 * `vboxManage`, `timeoutMs`, `pollIntervalMs`, `env.NAME` (for example `env.VBOX_USER_HOME`),
 * and `ssh=user@host[:port]` with `sshKey`, `sshKnownHosts`, `sshFingerprint`, `sshShell`.
 */
export function virtualboxOptionsFromStrings(o: Readonly<Record<string, unknown>>): VirtualBoxOptions {
  const ssh = sshOptionsFromStrings(o);
  const env = envOption(o);
  const timeoutMs = numberOption(o, 'timeoutMs');
  const pollIntervalMs = numberOption(o, 'pollIntervalMs');
  return {
    ...(o as VirtualBoxOptions),
    ...(ssh ? { ssh } : {}),
    ...(env ? { env } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}),
  };
}

/** Lets `loadAdapterModule('@tandem/adapter-virtualbox')` and `tandem --adapter virtualbox` find the adapter. */
export const tandemAdapter: AdapterModule<VirtualBoxOptions | Record<string, string>> = {
  name: 'virtualbox',
  create: (options) => new VirtualBoxAdapter(virtualboxOptionsFromStrings((options ?? {}) as Record<string, unknown>)),
};

export { VirtualBoxAdapter, VIRTUALBOX_CAPABILITIES, TESTED_VERSIONS } from './adapter.js';
export type { VirtualBoxOptions } from './adapter.js';
export {
  parseVersion,
  parseListVms,
  parseMachineReadable,
  parseSnapshotList,
  parseExtraData,
  parseGuestProperty,
  parseHostInfo,
  mapVmState,
} from './parse.js';
export type { VBoxVersion, ListedVm, MachineReadable, ListedSnapshot } from './parse.js';
export { parseErrorLines, mapVBoxError } from './errors.js';
export type { VBoxErrorReport } from './errors.js';
export { passwordFor } from './disk-encryption.js';
export { virtualboxOwnership, OWNER_EXTRADATA_KEY } from './owner.js';
export type { VirtualBoxOwnership, VirtualBoxOwnershipOptions } from './owner.js';
export { liveNetworkCommands, DEFAULT_HOST_ONLY_ADAPTER } from './live-network.js';
