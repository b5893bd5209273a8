// The adapter conformance suite against a real libvirtd with QEMU (software emulation): 64 MiB
// VMs with a small qcow2 disk each, and every hook of the suite: a boot-sector guest that
// honours the ACPI power button, a firmware-only one that ignores it, a disk marker read and
// written with qemu-io, and QEMU processes counted with pgrep.
import { describe, it } from 'vitest';
import { adapterConformanceSuite } from '@tandem/core/testing';
import { LibvirtAdapter } from './adapter.js';
import { ConformanceDisks, libvirtConformanceHooks } from './testing/conformance-hooks.test.helpers.js';
import { imageDir, QEMU_URI, qemuGate } from './testing/fixtures.test.helpers.js';

const gate = await qemuGate();

describe.skipIf(!gate.enabled)('conformance: libvirt on qemu:///system', () => {
  adapterConformanceSuite(
    it,
    async () => {
      const images = await imageDir();
      const disks = new ConformanceDisks(images.dir);
      return {
        adapter: new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' }),
        vmSpec: (name) => disks.empty(name),
        hooks: libvirtConformanceHooks(disks),
        cleanup: images.remove,
      };
    },
    // The firmware-only guest ignores ACPI, so graceful stops of it run into this timeout.
    { prefix: 'tandem-it-conf', timeoutMs: 120_000, gracefulStopTimeoutMs: 1_000, acpiStopTimeoutMs: 60_000 },
  );
});
