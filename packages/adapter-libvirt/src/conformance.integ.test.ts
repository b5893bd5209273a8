// The adapter conformance suite against a real libvirtd with QEMU (software emulation):
// a 64 MiB VM with an empty qcow2 disk, which boots into firmware and stays there.
import { describe, it } from 'vitest';
import { adapterConformanceSuite } from '@tandem/core/testing';
import { LibvirtAdapter } from './adapter.js';
import { emptyDisk, imageDir, QEMU_URI, qemuGate, smallSpec } from './testing/fixtures.test.helpers.js';

const gate = await qemuGate();

describe.skipIf(!gate.enabled)('conformance: libvirt on qemu:///system', () => {
  adapterConformanceSuite(
    it,
    async () => {
      const images = await imageDir();
      return {
        adapter: new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' }),
        vmSpec: async (name) => smallSpec(name, await emptyDisk(images.dir, name)),
        cleanup: images.remove,
      };
    },
    // A firmware-only guest ignores ACPI: the graceful stop runs into its timeout and is forced,
    // which the suite accepts; the graceful path itself is tested with an ACPI guest elsewhere.
    { prefix: 'tandem-it-conf', timeoutMs: 120_000, gracefulStopTimeoutMs: 1_000 },
  );
});
