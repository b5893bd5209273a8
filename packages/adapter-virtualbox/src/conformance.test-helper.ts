import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestAPI } from 'vitest';
import { adapterConformanceSuite } from '@tandem/core/testing';
import { fakeVBoxHome, FAKE_VBOXMANAGE } from './fake.test-helper.js';
import { virtualbox } from './index.js';

/**
 * The conformance suite against the fake VBoxManage of one VirtualBox version. Each version has
 * a test file of its own (conformance-6.1.test.ts, conformance-7.1.test.ts), so the two run in
 * parallel: every check starts the fake as a real process many times.
 */
export function virtualBoxConformance(it: TestAPI, version: '6.1' | '7.0' | '7.1'): void {
  adapterConformanceSuite(
    it,
    async () => {
      const home = fakeVBoxHome(version);
      const adapter = virtualbox({ vboxManage: FAKE_VBOXMANAGE, env: home.env(), pollIntervalMs: 20 });
      return {
        adapter,
        vmSpec: (name) => {
          const disk = join(home.home, `${name}.vdi`);
          writeFileSync(disk, 'fake VDI\n');
          return {
            name,
            memoryMiB: 64,
            cpus: 1,
            disks: [{ path: disk, format: 'vdi' }],
            network: { mode: 'nat' },
            graphics: { kind: 'none' },
            osFamily: 'linux',
          };
        },
        cleanup: async () => {
          const unexpected = home.unexpected();
          home.remove();
          if (unexpected.length) throw new Error(`the fake VBoxManage refused calls: ${JSON.stringify(unexpected)}`);
        },
      };
    },
    // VirtualBox refuses to delete a snapshot with several children ("more than the one snapshot
    // allowed for deletion", SnapshotImpl.cpp); the adapter's own tests check that refusal.
    // Each check starts the fake dozens of times; the limit catches hangs, and on a machine
    // kept busy (CI runs under stress-ng) a deep snapshot tree took over the default 60 s.
    {
      prefix: `tandem-conf-${version}`,
      timeoutMs: 180_000,
      gracefulStopTimeoutMs: 2_000,
      skip: { deleteWithSeveralChildren: true },
    },
  );
}
