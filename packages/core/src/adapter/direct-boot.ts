import { UnsupportedCapabilityError } from '../errors.js';
import type { HypervisorAdapter, VmSpec } from './types.js';

/**
 * Throws UnsupportedCapabilityError when the spec boots a kernel directly ({@link VmSpec.boot})
 * and the adapter cannot (`capabilities.directKernelBoot` absent or false). Adapters call it
 * first thing in `define` and `redefine`, so such a VM is never half-defined.
 *
 * @example
 * ```ts
 * requireDirectKernelBoot(adapter, spec); // before defining anything
 * ```
 */
export function requireDirectKernelBoot(
  adapter: Pick<HypervisorAdapter, 'name' | 'capabilities'>,
  spec: Pick<VmSpec, 'name' | 'boot'>,
): void {
  if (spec.boot === undefined || adapter.capabilities.directKernelBoot === true) return;
  throw new UnsupportedCapabilityError(
    `VM "${spec.name}" boots a kernel directly (boot.kernel ${spec.boot.kernel}), which the ${adapter.name} adapter cannot do. Use the libvirt adapter, or boot from the disk (remove spec.boot from the workspace).`,
    { details: { vm: spec.name, adapter: adapter.name, capability: 'directKernelBoot' } },
  );
}
