// redefine() on a real libvirtd with QEMU: a new definition under the same UUID keeps the
// snapshots (and carries a stopped VM's snapshots over to the new hardware); a new disk drops
// them. Checked behind the adapter's back with virsh.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, SessionManager, TandemError, parseWorkspace, type AnyTandemEvent } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import {
  emptyDisk,
  imageDir,
  itName,
  purge,
  QEMU_URI,
  qemuGate,
  smallSpec,
  virsh,
} from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const gate = await qemuGate();
const SLOW = 300_000;

/** `Max memory` in MiB and `CPU(s)` as virsh dominfo prints them (the persistent definition when stopped). */
async function hardware(vm: string): Promise<{ memoryMiB: number; cpus: number }> {
  const info = await virsh('dominfo', '--domain', vm);
  const memKiB = Number(/^Max memory:\s+(\d+) KiB/m.exec(info)?.[1]);
  const cpus = Number(/^CPU\(s\):\s+(\d+)/m.exec(info)?.[1]);
  return { memoryMiB: memKiB / 1024, cpus };
}

/** name -> parent as `virsh snapshot-list --parent` prints them. */
async function snapshotTree(vm: string): Promise<Record<string, string>> {
  const out = await virsh('snapshot-list', '--domain', vm, '--parent');
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const cols = l.trim().split(/\s+/);
        // name, date, time, zone, state, [parent]
        return [cols[0]!, cols[5] ?? ''];
      }),
  );
}

describe.skipIf(!gate.enabled)('libvirt redefine on qemu:///system', () => {
  let images: Awaited<ReturnType<typeof imageDir>>;
  const vms: string[] = [];
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });

  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => {
    await adapter.close();
    for (const vm of vms) await purge(vm);
    await images.remove();
  }, SLOW);

  it(
    'new memory and CPUs under the same UUID and MAC; snapshots stay listed, in their tree, and revert',
    async () => {
      const vm = itName('redef');
      vms.push(vm);
      const disk = await emptyDisk(images.dir, vm);
      const v1 = smallSpec(vm, disk, { network: { mode: 'nat' }, labels: { 'tandem.version': '1.0.0' } });
      const defined = await adapter.define(v1);
      const mac = /<mac address='([^']+)'/.exec(await virsh('dumpxml', '--domain', vm, '--inactive'))?.[1];
      expect(mac).toBeDefined();
      await adapter.snapshots.create(vm, { name: 'off' });
      await adapter.start(vm);
      await adapter.snapshots.create(vm, { name: 'live' });
      await adapter.stop(vm, { force: true });
      await adapter.snapshots.create(vm, { name: 'off-2' });
      await adapter.snapshots.revert(vm, 'live');
      await adapter.stop(vm, { force: true });

      // The adapter refuses a VM that is not stopped.
      await adapter.start(vm);
      await expect(adapter.redefine({ ...v1, memoryMiB: 128 })).rejects.toMatchObject({
        code: 'TANDEM_INVALID_STATE',
        details: { current: 'running' },
      });
      await adapter.stop(vm, { force: true });

      const v2 = { ...v1, memoryMiB: 128, cpus: 2, labels: { 'tandem.version': '2.0.0' } };
      const info = await adapter.redefine(v2);
      expect(info).toMatchObject({ name: vm, id: defined.id, state: 'stopped', memoryMiB: 128, cpus: 2 });
      expect(await hardware(vm)).toEqual({ memoryMiB: 128, cpus: 2 });
      expect((await virsh('domuuid', '--domain', vm)).trim()).toBe(defined.id);
      const xml = await virsh('dumpxml', '--domain', vm, '--inactive');
      expect(xml).toContain(`<mac address='${mac}'/>`);
      expect((await adapter.list()).find((v) => v.name === vm)).toMatchObject({
        memoryMiB: 128,
        cpus: 2,
        disks: [{ path: disk, format: 'qcow2' }],
        network: { mode: 'nat' },
        labels: { 'tandem.version': '2.0.0' },
      });

      // Every snapshot is still there, with its parent, and the current one is still current.
      expect(await snapshotTree(vm)).toEqual({ off: '', live: 'off', 'off-2': 'live' });
      expect((await virsh('snapshot-current', '--domain', vm, '--name')).trim()).toBe('live');
      expect((await adapter.snapshots.list(vm)).map((s) => [s.name, s.parentId, s.current])).toEqual([
        ['live', 'off', true],
        ['off', null, false],
        ['off-2', 'live', false],
      ]);

      // A snapshot of the stopped VM reverts its disk and keeps the new hardware.
      await adapter.snapshots.revert(vm, 'off');
      expect(await adapter.state(vm)).toBe('stopped');
      expect(await hardware(vm)).toEqual({ memoryMiB: 128, cpus: 2 });
      // A snapshot of the running VM brings back the hardware its memory image was taken on.
      await adapter.snapshots.revert(vm, 'live');
      expect(await adapter.state(vm)).toBe('running');
      await adapter.stop(vm, { force: true });
      expect(await hardware(vm)).toEqual({ memoryMiB: 64, cpus: 1 });
      expect(await snapshotTree(vm)).toEqual({ off: '', live: 'off', 'off-2': 'live' });
    },
    SLOW,
  );

  it(
    'a new disk drops the snapshots, from the metadata and from the old image',
    async () => {
      const vm = itName('redefdisk');
      vms.push(vm);
      const oldDisk = await emptyDisk(images.dir, `${vm}-a`);
      const newDisk = await emptyDisk(images.dir, `${vm}-b`);
      const v1 = smallSpec(vm, oldDisk);
      await adapter.define(v1);
      await adapter.snapshots.create(vm, { name: 'one' });
      await adapter.snapshots.create(vm, { name: 'two' });
      await adapter.redefine({ ...v1, disks: [{ path: newDisk, format: 'qcow2' }] });
      expect(await adapter.snapshots.list(vm)).toEqual([]);
      expect(await virsh('dumpxml', '--domain', vm, '--inactive')).toContain(`<source file='${newDisk}'/>`);
      const { stdout } = await run('qemu-img', ['snapshot', '-l', '-U', oldDisk]);
      expect(stdout).not.toMatch(/\bone\b|\btwo\b/);
      await adapter.start(vm);
      expect(await adapter.state(vm)).toBe('running');
      await adapter.stop(vm, { force: true });
    },
    SLOW,
  );

  it('an unknown VM is NotFoundError', async () => {
    const err = await adapter.redefine(smallSpec(itName('nope'), '/nonexistent.qcow2')).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_NOT_FOUND')).toBe(true);
  });

  it(
    'a session opened for a new workspace version redefines the VM at its start and keeps its snapshots',
    async () => {
      const vm = itName('redefws');
      vms.push(vm);
      const disk = await emptyDisk(images.dir, vm);
      const workspace = (v: string, cpus: number) =>
        parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: redef, version: ${v} }
spec:
  guestOs: linux
  image: { source: ${disk}, format: qcow2 }
  hardware: { memory: { fixedMiB: 64 }, cpus: ${cpus}, guestChannel: false }
  network: { mode: none }
`);
      const events = new EventBus();
      const seen: AnyTandemEvent[] = [];
      events.on('*', (e) => seen.push(e));
      const manager = new SessionManager({ adapter, events });
      const s1 = await manager.open(workspace('1.0.0', 1), { vmName: vm });
      await s1.snapshot('before-update');
      await s1.close();
      // A new manager: what it knows of the VM comes from libvirt alone.
      const s2 = await new SessionManager({ adapter, events }).open(workspace('1.1.0', 2), { vmName: vm });
      expect(s2.pendingUpdate?.changes.map((c) => c.field)).toEqual(['cpus']);
      await s2.start();
      expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
        snapshotsKept: 1,
        snapshotsDropped: [],
      });
      expect(await hardware(vm)).toMatchObject({ cpus: 2 });
      await s2.stop({ force: true });
      await s2.close();
      expect((await virsh('snapshot-list', '--domain', vm, '--name')).trim()).toBe('before-update');
    },
    SLOW,
  );
});
