import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import { TandemError } from '@tandem/core';
import { adapterConformanceSuite, type ConformanceIt } from '@tandem/core/testing';
import { fakeVBoxHome, FAKE_VBOXMANAGE } from './fake.test-helper.js';
import { virtualbox } from './index.js';

/**
 * Where real VirtualBox cannot do what the suite asks. The test must fail for exactly this reason;
 * if it ever passes, VirtualBox changed and the entry must go.
 */
const KNOWN_DIVERGENCES: Record<string, (err: unknown) => boolean> = {
  // The suite deletes snapshot "a", which has two children. VirtualBox refuses to delete a snapshot
  // with more than one child (SnapshotImpl.cpp: "... which is more than the one snapshot allowed
  // for deletion"); a VirtualBox snapshot tree also always has a single root.
  'snapshot tree: revert to a non-current snapshot, branch, delete without children': (err) =>
    TandemError.is(err, 'TANDEM_INVALID_STATE') && err.details['reason'] === 'snapshot-children',
};

function conformanceIt(): ConformanceIt {
  return (name, fn, timeout) => {
    const divergence = KNOWN_DIVERGENCES[name];
    if (!divergence) return it(name, fn, timeout);
    return it(
      `${name} (VirtualBox refuses this; the refusal is checked)`,
      async () => {
        let failure: unknown;
        try {
          await fn();
        } catch (err) {
          failure = err;
        }
        if (failure === undefined)
          throw new Error('VirtualBox divergence no longer happens: remove it from KNOWN_DIVERGENCES');
        if (!divergence(failure)) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
      },
      timeout,
    );
  };
}

// The oldest and the newest supported versions; 7.0's output quirks are covered by the parser
// and adapter tests.
for (const version of ['6.1', '7.1'] as const) {
  adapterConformanceSuite(
    conformanceIt(),
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
    { prefix: `tandem-conf-${version}`, gracefulStopTimeoutMs: 2_000 },
  );
}
