import type { VmSpec } from '../adapter/types.js';
import type { ConformanceSubject } from './conformance-types.js';
import { MOCK_GUEST_LABEL, MockAdapter, type MockAdapterOptions } from './mock-adapter.js';

/** A small VM spec for the mock: 64 MiB, one CPU, one (simulated) qcow2 disk of its own. */
export function mockVmSpec(name: string, extra: Partial<VmSpec> = {}): VmSpec {
  return {
    name,
    memoryMiB: 64,
    cpus: 1,
    disks: [{ path: `/images/${name}.qcow2`, format: 'qcow2' }],
    network: { mode: 'none' },
    graphics: { kind: 'none' },
    osFamily: 'other',
    ...extra,
  };
}

/**
 * A conformance subject over a fresh {@link MockAdapter}, with every hook the suite can use:
 * a guest that honours a graceful stop, one that ignores it, the disk marker, the process
 * count, a killed hypervisor and a guest that powers itself off. Adapter authors can read it as an example of what their subject provides.
 *
 * @example
 * ```ts
 * import { it } from 'vitest';
 * import { adapterConformanceSuite, mockConformanceSubject } from '@tandem/core/testing';
 *
 * adapterConformanceSuite(it, async () => mockConformanceSubject(), { gracefulStopTimeoutMs: 50 });
 * ```
 */
export function mockConformanceSubject(
  options: MockAdapterOptions = {},
  adapter: MockAdapter = new MockAdapter(options),
): ConformanceSubject & { readonly adapter: MockAdapter } {
  return {
    adapter,
    vmSpec: (name) => mockVmSpec(name),
    hooks: {
      acpiGuest: { vmSpec: (name) => mockVmSpec(name) },
      deafGuest: { vmSpec: (name) => mockVmSpec(name, { labels: { [MOCK_GUEST_LABEL]: 'ignores-shutdown' } }) },
      diskMarker: {
        write: async (vm, marker) => adapter.writeDisk(vm, marker),
        read: async (vm) => adapter.readDisk(vm),
      },
      hypervisorProcesses: async (vm) => adapter.processCount(vm),
      killHypervisor: async (vm) => adapter.crash(vm),
      guestPowerOff: async (vm) => adapter.guestShutdown(vm),
    },
  };
}
