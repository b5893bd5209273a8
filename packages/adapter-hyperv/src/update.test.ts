import { describe, expect, it } from 'vitest';
import { EventBus, SessionManager, parseWorkspace, type AnyTandemEvent, type VmSpec } from '@tandem/core';
import { fakeHyperVHomesPerTest, fixture, FAKE_PWSH } from './fake.test-helper.js';
import { hyperv, type HyperVAdapter } from './index.js';
import { parseJson } from './parse.js';
import { toRemovedVm } from './vm.js';

const newHome = fakeHyperVHomesPerTest();

function setup(flavor: '5.1' | '7') {
  const home = newHome(flavor);
  const warnings: string[] = [];
  const adapter = hyperv({ powershell: FAKE_PWSH, env: home.env(), onWarning: (w) => warnings.push(w) });
  return { home, adapter, warnings };
}

const V1 = 'C:\\Tandem\\erp\\erp-1.0.0.vhdx';
const V2 = 'C:\\Tandem\\erp\\erp-2.0.0.vhdx';
const spec = (disk: string, cpus: number): VmSpec => ({
  name: 'tandem-erp',
  memoryMiB: 1024,
  cpus,
  disks: [{ path: disk, format: 'vhdx' }],
  network: { mode: 'nat' },
  graphics: { kind: 'rdp' },
  osFamily: 'windows',
});

// What the core's update does on an adapter without redefine() (applyVmUpdate in
// @tandem/core; its event naming the dropped snapshots is tested there): destroy keeping the
// disks, then define the new spec.
async function update(adapter: HyperVAdapter, next: VmSpec): Promise<void> {
  await adapter.destroy(next.name, { deleteDisks: false });
  await adapter.define(next);
}

describe('a new version reaches a Hyper-V VM with checkpoints (destroy and define: Hyper-V has no redefine)', () => {
  for (const flavor of ['5.1', '7'] as const) {
    it(`PowerShell ${flavor}: the new VM gets the new version's disk; the old chain is merged into its own disk before the VM goes, nothing is deleted`, async () => {
      const { home, adapter, warnings } = setup(flavor);
      await adapter.define(spec(V1, 1));
      await adapter.snapshots.create('tandem-erp', { name: 'one' });
      await adapter.snapshots.create('tandem-erp', { name: 'two' });
      // The VM runs on the newest .avhdx of its chain, not on the .vhdx it was defined with.
      const running = home.state().vms[0]!.Disks;
      expect(running[0]).toMatch(/^C:\\Tandem\\erp\\erp-1\.0\.0_[0-9A-F-]{36}\.avhdx$/);

      await update(adapter, spec(V2, 2));
      const state = home.state();
      expect(state.vms.map((v) => [v.Disks, v.ProcessorCount])).toEqual([[[V2], 2]]);
      // No file deleted; every .avhdx of the old chain merged, none left dangling.
      expect(state.removedFiles).toEqual([]);
      expect(state.mergedFiles).toEqual(expect.arrayContaining(running));
      expect(Object.keys(state.files ?? {})).toEqual([]);
      expect(warnings.join('\n')).toContain(`merging its checkpoints (one, two) into ${V1}`);
      await adapter.close();
    });
  }

  it('a hardware change on the same disk: the new VM runs on the state the old one had, not on its first checkpoint', async () => {
    const { home, adapter } = setup('7');
    await adapter.define(spec(V1, 1));
    await adapter.snapshots.create('tandem-erp', { name: 'one' });
    const current = home.state().vms[0]!.Disks[0]!;
    await update(adapter, spec(V1, 4));
    const state = home.state();
    expect(state.vms.map((v) => [v.Disks, v.ProcessorCount])).toEqual([[[V1], 4]]);
    // The state since the checkpoint (in the .avhdx) went into the .vhdx before the VM did.
    expect(state.mergedFiles).toContain(current);
    expect(state.files?.[current]).toBeUndefined();
    await adapter.close();
  });

  it('a destroy that deletes the disks takes the checkpoint files too, and merges nothing', async () => {
    const { home, adapter } = setup('5.1');
    await adapter.define(spec(V1, 1));
    await adapter.snapshots.create('tandem-erp', { name: 'one' });
    const current = home.state().vms[0]!.Disks[0]!;
    await adapter.destroy('tandem-erp', { deleteDisks: true });
    expect(home.state().removedFiles.sort()).toEqual([V1, current].sort());
    expect(home.state().mergedFiles ?? []).toEqual([]);
  });

  it('reads what the destroy script prints (Windows PowerShell 5.1 and PowerShell 7)', () => {
    for (const dir of ['ps51', 'ps7']) {
      expect(toRemovedVm(parseJson(fixture(`${dir}/destroy-merged.json`)))).toEqual({
        id: '5d2a3b1c-7e8f-4a9b-8c0d-1e2f3a4b5c6d',
        files: [],
        checkpoints: ['tandem-baseline', 'session-end-2026-11-21T10-00-00Z'],
        merged: ['C:\\Tandem\\erp\\erp-1.0.0_8E3A2B65-3E1D-4F0C-9F0B-0D8B1C2C1A9E.avhdx'],
        disks: ['C:\\Tandem\\erp\\erp-1.0.0.vhdx'],
      });
    }
  });
});

describe('through the session manager, from a Linux or macOS endpoint driving Hyper-V', () => {
  const workspace = (version: string, cpus: number) =>
    parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: ${version} }
spec:
  image: { source: ./erp.vhdx, format: vhdx }
  hardware: { memory: { fixedMiB: 1024 }, cpus: ${cpus} }
`);

  it('a new version with a Windows disk path is redefined at the next start; the event names the dropped checkpoints', async () => {
    const home = newHome('7');
    const adapter = hyperv({ powershell: FAKE_PWSH, env: home.env() });
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const manager = new SessionManager({ adapter, events });
    const v1 = await manager.open(workspace('1.0.0', 1), { diskPath: V1 });
    expect(v1.vmSpec?.disks[0]?.path).toBe(V1); // a Windows path stays as it is on a POSIX endpoint
    await v1.snapshot('installed');
    await v1.close();
    const v2 = await manager.open(workspace('2.0.0', 2), { diskPath: V2 });
    expect(v2.pendingUpdate?.changes.map((c) => c.field)).toEqual(['disks', 'cpus']);
    await v2.start();
    expect(home.state().vms.map((v) => [v.Disks, v.ProcessorCount])).toEqual([[[V2], 2]]);
    expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
      fromVersion: '1.0.0',
      toVersion: '2.0.0',
      snapshotsKept: 0,
      snapshotsDropped: ['installed'],
    });
    await v2.stop({ force: true });
    await v2.close();
    await adapter.close();
  });
});
