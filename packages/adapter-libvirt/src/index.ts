// @tandem/adapter-libvirt: the libvirt/QEMU adapter. Named exports only.
import type { AdapterModule, HypervisorAdapter } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import type { LibvirtOptions } from './options.js';

export { LibvirtAdapter } from './adapter.js';
export { LibvirtSnapshots } from './snapshots.js';
export { LibvirtGuestChannel } from './guest-channel.js';
export { LibvirtDiskEncryption } from './encryption.js';
export { LibvirtSeamless, launchXpraAttach, launchFreeRdp } from './seamless/launch.js';
export { defaultUri } from './options.js';
export type { LibvirtOptions, FreeRdpOptions, XpraOptions } from './options.js';
export { buildDomainXml, AGENT_CHANNEL, TANDEM_XMLNS } from './domain-xml.js';
export type { DomainXmlOptions } from './domain-xml.js';
export { freeRdpArgs } from './seamless/freerdp.js';
export type { FreeRdpTarget } from './seamless/freerdp.js';
export { xpraArgs, xpraAttachArgs } from './seamless/xpra.js';
export type { XpraTarget } from './seamless/xpra.js';
export { windowsCommandLine, quoteWindowsArg, posixCommandLine, quotePosix } from './seamless/quoting.js';
export { luksPassphrase, createEncryptedQcow2 } from './encryption.js';
export { libvirtEncryptedImages } from './encrypted-images.js';
export { libvirtOwnership, OWNER_XMLNS } from './owner.js';
export type { LibvirtOwnership, LibvirtOwnershipOptions } from './owner.js';
export type { EncryptedImagesOptions } from './encrypted-images.js';

/**
 * Creates the libvirt adapter. The URI defaults to `$TANDEM_LIBVIRT_URI`, else `qemu:///system`.
 *
 * @example
 * ```ts
 * import { libvirt } from '@tandem/adapter-libvirt';
 *
 * const adapter = libvirt({ uri: 'qemu:///system' });
 * const probe = await adapter.probe();
 * console.log(probe.usable ? probe.hypervisorVersion : probe.reason);
 * await adapter.close?.();
 * ```
 */
export function libvirt(options: LibvirtOptions = {}): HypervisorAdapter {
  return new LibvirtAdapter(options);
}

/**
 * The adapter module, so the core's registry and the `tandem` command load it by name
 * (`--adapter libvirt`, `--adapter-option uri=qemu+ssh://host/system`).
 *
 * @example
 * ```ts
 * import { AdapterRegistry } from '@tandem/core';
 * import { tandemAdapter } from '@tandem/adapter-libvirt';
 *
 * const adapter = new AdapterRegistry([tandemAdapter]).create('libvirt', { uri: 'qemu:///system' });
 * ```
 */
export const tandemAdapter: AdapterModule<LibvirtOptions> = {
  name: 'libvirt',
  create: (options) => new LibvirtAdapter(normalizeOptions(options)),
};

/** CLI options arrive as strings (`--adapter-option virtType=qemu`); unknown keys pass through. */
function normalizeOptions(options: LibvirtOptions | undefined): LibvirtOptions {
  if (!options) return {};
  const o: Record<string, unknown> = { ...options };
  if (typeof o['luksIterTimeMs'] === 'string') o['luksIterTimeMs'] = Number(o['luksIterTimeMs']);
  if (typeof o['networkBoot'] === 'string') o['networkBoot'] = o['networkBoot'] === 'true';
  for (const key of ['keepaliveMs', 'keepaliveTimeoutMs', 'reconnectMs', 'maxReconnectMs']) {
    if (typeof o[key] === 'string') o[key] = Number(o[key]);
  }
  return o;
}
