import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBus, SessionManager, parseWorkspace, type AnyTandemEvent } from '@tandem/core';
import { fakeVBoxHomesPerTest, FAKE_VBOXMANAGE } from './fake.test-helper.js';
import { virtualbox } from './index.js';

const newHome = fakeVBoxHomesPerTest();

const workspace = (version: string, cpus: number) =>
  parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: ${version} }
spec:
  image: { source: ./erp.vdi, format: vdi }
  hardware: { memory: { fixedMiB: 1024 }, cpus: ${cpus} }
`);

function setup(version: '6.1' | '7.1') {
  const home = newHome(version);
  const adapter = virtualbox({ vboxManage: FAKE_VBOXMANAGE, env: home.env(), pollIntervalMs: 10 });
  const events = new EventBus();
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const disk = (name: string): string => {
    const p = join(home.home, name);
    writeFileSync(p, 'fake VDI\n');
    return p;
  };
  return { home, adapter, events, seen, disk, manager: new SessionManager({ adapter, events }) };
}

describe('a new version reaches a VirtualBox VM (destroy and define: VirtualBox has no redefine)', () => {
  for (const version of ['6.1', '7.1'] as const) {
    it(`VirtualBox ${version}: the VM's folder goes with it, so createvm of the same name works; no disk is deleted`, async () => {
      const { home, adapter, manager, seen, disk } = setup(version);
      const v1Disk = disk('erp-1.0.0.vdi');
      const v2Disk = disk('erp-2.0.0.vdi');
      const v1 = await manager.open(workspace('1.0.0', 1), { diskPath: v1Disk });
      await v1.snapshot('before-update');
      await v1.snapshot('second');
      await v1.close();

      const v2 = await manager.open(workspace('2.0.0', 2), { diskPath: v2Disk });
      expect(v2.pendingUpdate?.changes.map((c) => c.field)).toEqual(['disks', 'cpus']);
      await v2.start();

      const vm = home.state().vms.find((v) => v.name === v2.vm) as unknown as {
        cpus: number;
        disks: { path: string }[];
      };
      expect(vm.cpus).toBe(2);
      expect(vm.disks.map((d) => d.path)).toEqual([v2Disk]);
      // Neither the old version's disk (its snapshots referred to it) nor the new one is gone.
      expect(existsSync(v1Disk)).toBe(true);
      expect(existsSync(v2Disk)).toBe(true);
      expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
        fromVersion: '1.0.0',
        toVersion: '2.0.0',
        snapshotsKept: 0,
        snapshotsDropped: ['before-update', 'second'],
      });
      // The snapshots went leaves first, every medium was detached, and only then --delete.
      const calls = home.calls();
      const unregister = calls.findIndex((a) => a[0] === 'unregistervm');
      expect(calls[unregister]?.slice(2)).toEqual(['--delete']);
      const before = calls.slice(0, unregister);
      expect(before.filter((a) => a[0] === 'snapshot' && a[2] === 'delete')).toHaveLength(2);
      expect(before.at(-1)).toEqual([
        'storageattach',
        calls[unregister]![1],
        '--storagectl=SATA',
        '--port=0',
        '--device=0',
        '--medium=none',
      ]);
      await v2.stop({ force: true });
      await v2.close();
      await adapter.close();
    });
  }

  it('destroy keeps the disks and frees the name: the same VM can be defined again', async () => {
    const { home, adapter, disk } = setup('7.1');
    const spec = {
      name: 'w',
      memoryMiB: 256,
      cpus: 1,
      disks: [{ path: disk('w.vdi'), format: 'vdi' as const }],
      network: { mode: 'nat' as const },
      graphics: { kind: 'rdp' as const },
      osFamily: 'windows' as const,
    };
    await adapter.define(spec);
    await adapter.snapshots.create('w', { name: 's1' });
    await adapter.destroy('w');
    expect(existsSync(spec.disks[0]!.path)).toBe(true);
    expect(await adapter.list()).toEqual([]);
    await adapter.define(spec);
    expect((await adapter.list()).map((v) => v.name)).toEqual(['w']);
    expect(home.unexpected()).toEqual([]);
    await adapter.close();
  });
});
