import { describe, expect, it } from 'vitest';
import type { HypervisorAdapter } from '../adapter/types.js';
import { VirtualClock } from '../clock.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { brokenCopy } from '../testing/conformance-collector.test-helper.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { buildVmSpec } from '../workspace/vm-spec.js';
import { SessionManager } from './manager.js';
import { diffVmSpec } from './vm-update.js';

const version = (v: string, cpus = 1, usage = '{}') =>
  parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: ${v} }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 1024 }, cpus: ${cpus} }
  usage: ${usage}
`);

function setup(options: { redefine?: boolean } = {}) {
  const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
  const adapter = new MockAdapter({ clock, ...(options.redefine === false ? { redefine: false } : {}) });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  return { adapter, events, seen, manager: new SessionManager({ adapter, events, clock }) };
}

describe('updates reach the VM', () => {
  it('a new version redefines the VM at the next start, keeping its snapshots, and says what changed', async () => {
    const { adapter, manager, seen } = setup();
    const v1 = await manager.open(version('1.0.0'), { diskPath: '/images/erp-1.0.0.qcow2' });
    await v1.snapshot('before-update');
    await v1.close();
    const defines = adapter.calls.filter((c) => c.op === 'define').length;

    const v2 = await manager.open(version('2.0.0', 2), { diskPath: '/images/erp-2.0.0.qcow2' });
    expect(v2.pendingUpdate?.changes).toEqual([
      {
        field: 'disks',
        from: '/images/erp-1.0.0.qcow2 (qcow2)',
        to: '/images/erp-2.0.0.qcow2 (qcow2)',
      },
      { field: 'cpus', from: '1 CPU', to: '2 CPUs' },
    ]);
    expect(seen.find((e) => e.type === 'session.update-pending')?.data).toMatchObject({
      fromVersion: '1.0.0',
      toVersion: '2.0.0',
    });
    // Nothing changes before the start: the old VM is untouched.
    expect((await adapter.list())[0]?.disks?.[0]?.path).toBe('/images/erp-1.0.0.qcow2');

    await v2.start();
    const vm = (await adapter.list())[0];
    expect(vm?.disks?.[0]?.path).toBe('/images/erp-2.0.0.qcow2');
    expect(vm?.cpus).toBe(2);
    expect(vm?.labels?.['tandem.version']).toBe('2.0.0');
    expect(adapter.calls.filter((c) => c.op === 'define').length).toBe(defines); // redefined in place
    expect(adapter.calls.some((c) => c.op === 'redefine')).toBe(true);
    expect((await v2.snapshots()).map((s) => s.name)).toEqual(['before-update']);
    expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
      fromVersion: '1.0.0',
      toVersion: '2.0.0',
      snapshotsKept: 1,
      snapshotsDropped: [],
    });
    expect(v2.pendingUpdate).toBeUndefined();
  });

  it('an adapter that cannot redefine in place gets a new definition, and the event names the snapshots dropped', async () => {
    const { adapter, manager, seen } = setup({ redefine: false });
    const v1 = await manager.open(version('1.0.0'));
    await v1.snapshot('one');
    await v1.snapshot('two');
    await v1.close();
    const v2 = await manager.open(version('1.1.0', 4));
    await v2.start();
    expect((await adapter.list())[0]?.cpus).toBe(4);
    expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
      snapshotsKept: 0,
      snapshotsDropped: ['one', 'two'],
      changes: [{ field: 'cpus', from: '1 CPU', to: '4 CPUs' }],
    });
  });

  it('without redefine, a revertible VM goes back to its baseline before its definition goes (so the kept disk holds no session leftovers)', async () => {
    const { adapter, manager, seen } = setup({ redefine: false });
    const v1 = await manager.open(version('1.0.0', 1, '{ mode: revertible }'), { diskPath: '/images/a.qcow2' });
    await v1.close();
    // A session that crashed before its end: its changes are still on the disk.
    adapter.writeDisk(v1.vm, 'left by the last session');
    // What the disk holds when the definition goes is what a destroy that keeps disks keeps.
    const kept: string[] = [];
    const destroy = adapter.destroy.bind(adapter);
    Object.assign(adapter, {
      destroy: async (vm: string, o?: { deleteDisks?: boolean }) => {
        kept.push(adapter.readDisk(vm));
        return destroy(vm, o);
      },
    });
    const v2 = await manager.open(version('1.1.0', 2, '{ mode: revertible }'), { diskPath: '/images/a.qcow2' });
    await v2.start();
    expect(kept).toEqual(['']); // the baseline's contents: the image as delivered
    expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
      snapshotsDropped: ['tandem-baseline'],
    });
    expect((await adapter.snapshots.list(v2.vm)).map((s) => s.name)).toEqual(['tandem-baseline']);
  });

  it('a running VM keeps running the old version until it is stopped and started again', async () => {
    const { adapter, manager } = setup();
    const v1 = await manager.open(version('1.0.0'));
    await v1.start();
    await v1.close();
    const v2 = await manager.open(version('1.1.0', 2));
    expect(v2.state).toBe('running');
    expect(v2.pendingUpdate).toBeDefined();
    expect((await adapter.list())[0]?.cpus).toBe(1);
    await v2.stop({ force: true });
    await v2.start();
    expect((await adapter.list())[0]?.cpus).toBe(2);
  });

  it('the same version with the same spec attaches without an update', async () => {
    const { manager } = setup();
    await (await manager.open(version('1.0.0'))).close();
    expect((await manager.open(version('1.0.0'))).pendingUpdate).toBeUndefined();
  });

  it('a revertible workspace with a new image gets a baseline of the new image', async () => {
    const { adapter, manager } = setup();
    const v1 = await manager.open(version('1.0.0', 1, '{ mode: revertible }'), { diskPath: '/images/a.qcow2' });
    await v1.close();
    const v2 = await manager.open(version('2.0.0', 1, '{ mode: revertible }'), { diskPath: '/images/b.qcow2' });
    await v2.start();
    const snaps = await adapter.snapshots.list(v2.vm);
    expect(snaps.map((s) => s.name)).toEqual(['tandem-baseline']);
    expect(adapter.calls.filter((c) => c.op === 'snapshot.create').length).toBe(2);
  });

  it('an adapter that cannot read disks back: the manager remembers what it defined, a new one is told', async () => {
    const clock = new VirtualClock(0);
    const mock = new MockAdapter({ clock });
    // Like an adapter whose VmInfo has memory and CPUs only.
    const adapter: HypervisorAdapter = brokenCopy(mock, {
      list: async () =>
        (await mock.list()).map(({ name, id, state, memoryMiB, cpus }) => ({ name, id, state, memoryMiB, cpus })),
    });
    const manager = new SessionManager({ adapter, clock });
    const v1 = await manager.open(version('1.0.0'), { diskPath: '/images/a.qcow2' });
    const definedSpec = v1.vmSpec;
    await v1.close();
    const v2 = await manager.open(version('2.0.0'), { diskPath: '/images/b.qcow2' });
    expect(v2.pendingUpdate?.changes.map((c) => c.field)).toEqual(['disks']);
    await v2.close();

    const fresh = new SessionManager({ adapter, clock });
    expect((await fresh.open(version('2.0.0'), { diskPath: '/images/b.qcow2' })).pendingUpdate).toBeUndefined();
    const told = new SessionManager({ adapter, clock });
    const s = await told.open(version('2.0.0'), {
      diskPath: '/images/b.qcow2',
      ...(definedSpec ? { definedSpec } : {}),
    });
    expect(s.pendingUpdate?.fromVersion).toBe('1.0.0');
  });

  it('snapshots an in-place redefinition deletes (a replaced disk) are reported as dropped', async () => {
    const { adapter, manager, seen } = setup();
    // Like libvirt: internal snapshots live in the disk, so a new disk takes them away.
    const inPlace = adapter.redefine!;
    Object.assign(adapter, {
      redefine: async (spec: Parameters<typeof inPlace>[0]) => {
        for (const s of await adapter.snapshots.list(spec.name)) await adapter.snapshots.delete(spec.name, s.id);
        return inPlace(spec);
      },
    });
    const v1 = await manager.open(version('1.0.0', 1, '{ mode: revertible }'), { diskPath: '/images/a.qcow2' });
    await v1.snapshot('mine');
    await v1.close();
    const v2 = await manager.open(version('2.0.0', 1, '{ mode: revertible }'), { diskPath: '/images/b.qcow2' });
    await v2.start();
    expect(seen.find((e) => e.type === 'session.vm-updated')?.data).toMatchObject({
      snapshotsKept: 0,
      snapshotsDropped: ['tandem-baseline', 'mine'],
    });
    expect((await adapter.snapshots.list(v2.vm)).map((s) => s.name)).toEqual(['tandem-baseline']);
  });

  it('compares only what is known of the defined VM', () => {
    const spec = buildVmSpec(version('1.0.0', 2), { hostMemoryMiB: 4096, baseDir: '/ws' });
    expect(diffVmSpec({ cpus: 2 }, spec)).toEqual([]);
    expect(diffVmSpec({ memoryMiB: 512 }, spec)).toEqual([{ field: 'memoryMiB', from: '512 MiB', to: '1024 MiB' }]);
    expect(diffVmSpec({ network: { mode: 'bridged', bridge: 'br0' } }, spec)).toEqual([
      { field: 'network', from: 'bridged, bridge br0', to: 'nat' },
    ]);
    // Booting from the disks (null) is a fact; an adapter that cannot tell (undefined) is not compared.
    expect(diffVmSpec({ boot: null }, spec)).toEqual([]);
    expect(diffVmSpec({ boot: { kernel: '/k' } }, spec)).toEqual([
      { field: 'boot', from: 'kernel /k', to: 'from its disks' },
    ]);
    expect(diffVmSpec({ boot: null }, { ...spec, boot: { kernel: '/k', cmdline: '' } })).toEqual([
      { field: 'boot', from: 'from its disks', to: 'kernel /k, cmdline ""' },
    ]);
  });

  it('a workspace that starts booting a kernel directly redefines the VM at the next start', async () => {
    const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
    const adapter = new MockAdapter({ clock, capabilities: { directKernelBoot: true } });
    const events = new EventBus({ clock });
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const manager = new SessionManager({ adapter, events, clock });
    const v1 = await manager.open(version('1.0.0'), { diskPath: '/images/erp.qcow2' });
    await v1.close();
    const booted = parseWorkspace(
      `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.1.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  boot: { kernel: ./vmlinuz, cmdline: console=ttyS0 }
  hardware: { memory: { fixedMiB: 1024 }, cpus: 1 }
`,
      { file: '/ws/tandem.workspace.yaml' },
    );
    const v2 = await manager.open(
      { workspace: booted, file: '/ws/tandem.workspace.yaml', baseDir: '/ws' },
      { diskPath: '/images/erp.qcow2' },
    );
    expect(v2.pendingUpdate?.changes).toEqual([
      { field: 'boot', from: 'from its disks', to: 'kernel /ws/vmlinuz, cmdline "console=ttyS0"' },
    ]);
    await v2.start();
    expect((await adapter.list())[0]?.boot).toEqual({ kernel: '/ws/vmlinuz', cmdline: 'console=ttyS0' });
    expect(seen.some((e) => e.type === 'session.vm-updated')).toBe(true);
  });
});
