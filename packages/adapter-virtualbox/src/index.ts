// @tandem/adapter-virtualbox: the public API. Named exports only.
import type { AdapterModule } from '@tandem/core';
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

/** Lets `loadAdapterModule('@tandem/adapter-virtualbox')` find the adapter by name. */
export const tandemAdapter: AdapterModule<VirtualBoxOptions> = {
  name: 'virtualbox',
  create: (options?: VirtualBoxOptions) => new VirtualBoxAdapter(options ?? {}),
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
