/**
 * Hostile-name fuzzing of the VirtualBox adapter, shared by the local run (fuzz.test.ts) and the
 * run over SSH (fuzz.integ.test.ts). Each case puts one generated VM name (with a snapshot name,
 * app path, arguments, password, key id) through one command path of the adapter, against the
 * fake VBoxManage, and checks the effect on the fake's state and the exact argv it received.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { VirtualBoxAdapter } from './adapter.js';
import type { FakeVBoxHome } from './fake.test-helper.js';

export const FUZZ_PATHS = [
  'define',
  'list',
  'state',
  'start',
  'start-with-keys',
  'stop-force',
  'stop-graceful',
  'suspend',
  'resume',
  'save',
  'restore',
  'destroy',
  'snapshot-create',
  'snapshot-list',
  'snapshot-revert',
  'snapshot-delete',
  'snapshot-delete-children',
  'launch',
  'encrypt',
  'guest-address',
  'set-network',
] as const;
export type FuzzPath = (typeof FUZZ_PATHS)[number];

export interface FuzzCase {
  path: FuzzPath;
  vm: string;
  snapshot: string;
  description: string;
  command: string;
  args: string[];
  password: string;
  keyId: string;
}

/** Cases built from a generator of hostile strings. */
/** Generated cases for the given command paths (all of them unless told). */
export function fuzzCases(
  hostile: (min: number) => fc.Arbitrary<string>,
  paths: readonly FuzzPath[] = FUZZ_PATHS,
): fc.Arbitrary<FuzzCase> {
  const name = hostile(1).filter((s) => s.trim() !== '');
  return fc.record({
    path: fc.constantFrom(...paths),
    vm: name,
    snapshot: name,
    description: hostile(0),
    command: name,
    args: fc.array(hostile(0), { maxLength: 4 }),
    password: hostile(0).filter((s) => !/[\r\n]/.test(s)),
    keyId: name,
  });
}

const VM_UUID = '11111111-2222-4333-8444-555555555555';
const SNAP_UUIDS = ['aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002'];

/** The state the path needs, written as the fake's state file (the "hypervisor" before the call). */
function seed(home: FakeVBoxHome, c: FuzzCase): void {
  const state: Record<FuzzPath, string> = {
    define: '',
    list: 'poweroff',
    state: 'paused',
    start: 'poweroff',
    'start-with-keys': 'poweroff',
    'stop-force': 'running',
    'stop-graceful': 'running',
    suspend: 'running',
    resume: 'paused',
    save: 'running',
    restore: 'saved',
    destroy: 'running',
    'snapshot-create': 'running',
    'snapshot-list': 'poweroff',
    'snapshot-revert': 'running',
    'snapshot-delete': 'poweroff',
    'snapshot-delete-children': 'poweroff',
    launch: 'running',
    encrypt: '',
    'guest-address': 'running',
    'set-network': 'running',
  };
  const snapshots =
    c.path.startsWith('snapshot-') && c.path !== 'snapshot-create'
      ? [
          { uuid: SNAP_UUIDS[0], name: c.snapshot, description: c.description, parent: null, online: false },
          { uuid: SNAP_UUIDS[1], name: `${c.snapshot} child`, description: '', parent: SNAP_UUIDS[0], online: false },
        ]
      : [];
  const vms = state[c.path]
    ? [
        {
          uuid: VM_UUID,
          name: c.vm,
          ostype: 'Windows10_64',
          memory: 256,
          cpus: 1,
          nic1: 'nat',
          mac: '080027A1B2C3',
          disks: [],
          controller: null,
          extradata: {},
          snapshots,
          currentSnapshot: snapshots.length ? SNAP_UUIDS[1] : null,
          encPasswords: {},
          state: state[c.path],
          stateChangedAt: '2026-01-01T00:00:00.000000000',
        },
      ]
    : [];
  writeFileSync(join(home.home, 'fake-virtualbox.json'), JSON.stringify({ vms, media: {} }));
}

/** A file name from a hostile string (a file name cannot hold `/` or NUL). */
const fileName = (s: string): string => s.replace(/\//g, '_').slice(0, 80) || '_';

/** Runs one case and checks its effect. */
export async function runCase(adapter: VirtualBoxAdapter, home: FakeVBoxHome, c: FuzzCase): Promise<void> {
  seed(home, c);
  const before = home.calls().length;
  const vmState = (): string | undefined => home.state().vms.find((v) => v.name === c.vm)?.state;
  const calls = (): string[][] => home.calls().slice(before);
  switch (c.path) {
    case 'define': {
      const disk = join(home.home, `${fileName(c.vm)}.vdi`);
      writeFileSync(disk, 'fake VDI\n');
      await adapter.define({
        name: c.vm,
        memoryMiB: 128,
        cpus: 1,
        disks: [{ path: disk, format: 'vdi' }],
        network: { mode: 'nat' },
        graphics: { kind: 'none' },
        osFamily: 'linux',
        labels: { note: c.description },
      });
      expect(calls()).toContainEqual(['createvm', `--name=${c.vm}`, '--ostype=Linux_64', '--register']);
      const vm = home.state().vms.find((v) => v.name === c.vm);
      expect(vm?.extradata['tandem/label/note']).toBe(c.description);
      break;
    }
    case 'list':
      expect((await adapter.list()).map((v) => v.name)).toEqual([c.vm]);
      break;
    case 'state':
      expect(await adapter.state(c.vm)).toBe('paused');
      break;
    case 'start':
      await adapter.start(c.vm);
      expect(vmState()).toBe('running');
      break;
    case 'start-with-keys': {
      await adapter.start(c.vm, { diskKeys: new Map([[c.keyId, new Uint8Array([1, 2, 255])]]) });
      expect(calls()).toContainEqual(['controlvm', VM_UUID, 'addencpassword', c.keyId, '-']);
      const vm = home.state().vms.find((v) => v.name === c.vm) as unknown as { encPasswords: Record<string, string> };
      expect(vm.encPasswords[c.keyId]).toBe('0102ff');
      break;
    }
    case 'stop-force':
      await adapter.stop(c.vm, { force: true });
      expect(vmState()).toBe('poweroff');
      break;
    case 'stop-graceful':
      await adapter.stop(c.vm, { timeoutMs: 5_000 });
      expect(vmState()).toBe('poweroff');
      break;
    case 'suspend':
      await adapter.suspend(c.vm);
      expect(vmState()).toBe('paused');
      break;
    case 'resume':
      await adapter.resume(c.vm);
      expect(vmState()).toBe('running');
      break;
    case 'save':
      await adapter.save(c.vm);
      expect(vmState()).toBe('saved');
      break;
    case 'restore':
      await adapter.restore(c.vm);
      expect(vmState()).toBe('running');
      break;
    case 'destroy':
      await adapter.destroy(c.vm);
      expect(home.state().vms).toEqual([]);
      break;
    case 'snapshot-create': {
      const s = await adapter.snapshots.create(c.vm, { name: c.snapshot, description: c.description });
      expect(s.name).toBe(c.snapshot);
      expect(s.description ?? '').toBe(c.description);
      expect(s.vmState).toBe('running');
      expect(
        calls()
          .find((a) => a[0] === 'snapshot' && a[2] === 'take')
          ?.slice(3, 4),
      ).toEqual([c.snapshot]);
      break;
    }
    case 'snapshot-list': {
      const list = await adapter.snapshots.list(c.vm);
      expect(list.map((s) => [s.name, s.description ?? '', s.parentId, s.current])).toEqual([
        [c.snapshot, c.description, null, false],
        [`${c.snapshot} child`, '', SNAP_UUIDS[0], true],
      ]);
      break;
    }
    case 'snapshot-revert':
      await adapter.snapshots.revert(c.vm, c.snapshot);
      expect((home.state().vms[0] as unknown as { currentSnapshot: string }).currentSnapshot).toBe(SNAP_UUIDS[0]);
      expect(vmState()).toBe('poweroff');
      break;
    case 'snapshot-delete':
      await adapter.snapshots.delete(c.vm, c.snapshot);
      expect(home.state().vms[0]?.snapshots).toHaveLength(1);
      break;
    case 'snapshot-delete-children':
      await adapter.snapshots.delete(c.vm, c.snapshot, { children: true });
      expect(home.state().vms[0]?.snapshots).toEqual([]);
      break;
    case 'launch': {
      const handle = await adapter.seamless.launch(c.vm, {
        appId: 'app',
        command: c.command,
        args: c.args,
        mode: 'seamless',
        credentials: { username: c.vm, password: c.password },
      });
      expect(await handle.exited).toBe(0);
      const launch = home.state().launches?.[0] as { exe: string; argv: string[]; username: string; password: string };
      expect(launch).toEqual(
        expect.objectContaining({ exe: c.command, argv: [c.command, ...c.args], username: c.vm, password: c.password }),
      );
      break;
    }
    case 'encrypt': {
      const path = join(home.home, `${fileName(c.vm)}.vdi`);
      if (!existsSync(path)) writeFileSync(path, 'fake VDI\n');
      await adapter.diskEncryption.encrypt(
        { path, format: 'vdi', encryption: { keyId: c.keyId } },
        new Uint8Array([7]),
      );
      expect(home.state().media[path]).toEqual({ encrypted: true, passwordId: c.keyId, password: '07' });
      break;
    }
    case 'guest-address':
      expect(await adapter.guestAddress(c.vm)).toBe('10.0.2.15');
      break;
    case 'set-network': {
      // The host interface is the hostile value here: one positional argument of controlvm.
      await adapter.setNetwork(c.vm, { mode: 'bridged', bridge: c.command });
      expect(calls()).toContainEqual(['controlvm', VM_UUID, 'nic1', 'bridged', c.command]);
      const vm = home.state().vms[0] as unknown as { nic1: string; bridgeAdapter: string; cable: string };
      expect(vm).toMatchObject({ nic1: 'bridged', bridgeAdapter: c.command, cable: 'on' });
      break;
    }
  }
}
