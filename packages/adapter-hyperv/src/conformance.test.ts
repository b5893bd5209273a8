import { it } from 'vitest';
import { adapterConformanceSuite } from '@tandem/core/testing';
import { FAKE_PWSH, fakeHyperVHome } from './fake.test-helper.js';
import { HYPERV_SCRIPTS, hyperv } from './index.js';

// Windows PowerShell 5.1 (powershell.exe) and PowerShell 7 (pwsh) print JSON differently; the
// suite runs against both through the fake.
for (const flavor of ['5.1', '7'] as const) {
  adapterConformanceSuite(
    it,
    async () => {
      const home = fakeHyperVHome(flavor);
      const adapter = hyperv({ powershell: FAKE_PWSH, env: home.env() });
      return {
        adapter,
        vmSpec: (name) => ({
          name,
          memoryMiB: 64,
          cpus: 1,
          disks: [{ path: `C:\\Hyper-V\\${name}.vhdx`, format: 'vhdx' }],
          network: { mode: 'nat' },
          graphics: { kind: 'rdp' },
          osFamily: 'windows',
        }),
        cleanup: async () => {
          const unexpected = home.unexpected();
          // Every script that ran is one of the adapter's fixed scripts: no data was spliced in.
          const foreign = home.calls().filter((c) => !Object.values(HYPERV_SCRIPTS).includes(c.script));
          home.remove();
          if (unexpected.length) throw new Error(`the fake pwsh refused calls: ${JSON.stringify(unexpected)}`);
          if (foreign.length)
            throw new Error(`scripts that are not the adapter's: ${foreign.map((c) => c.op).join(', ')}`);
        },
      };
    },
    { prefix: `tandem-conf-ps${flavor}` },
  );
}
