/**
 * Hostile-name fuzzing of the Hyper-V adapter, shared by the local run (fuzz.test.ts) and the run
 * over SSH (fuzz.integ.test.ts). Each case puts generated names through one command path against
 * the fake pwsh and checks: the effect on the fake's state, that each value reached the script as
 * exactly that value, and that the script that ran is one of the adapter's fixed scripts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';
import { LocalRunner, TandemError, type CommandRunner } from '@tandem/core';
import type { HyperVAdapter } from './adapter.js';
import type { FakeHyperVHome } from './fake.test-helper.js';
import { parseRdpFile } from './rdp.js';
import { HYPERV_SCRIPTS } from './scripts.js';

export const FUZZ_PATHS = [
  'define',
  'list',
  'state',
  'start',
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
  'launch-remoteapp',
  'launch-desktop',
] as const;
export type FuzzPath = (typeof FUZZ_PATHS)[number];

export interface FuzzCase {
  path: FuzzPath;
  vm: string;
  snapshot: string;
  command: string;
  args: string[];
  username: string;
  password: string;
  label: string;
}

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
    command: name,
    args: fc.array(hostile(0), { maxLength: 4 }),
    username: name,
    password: hostile(0).filter((s) => !/[\r\n]/.test(s)),
    label: hostile(0),
  });
}

const VM_ID = '11111111-2222-4333-8444-555555555555';
const SNAP_IDS = ['aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002'];

function seed(home: FakeHyperVHome, c: FuzzCase): void {
  const states: Record<FuzzPath, number> = {
    define: 0,
    list: 3,
    state: 9,
    start: 3,
    'stop-force': 2,
    'stop-graceful': 2,
    suspend: 2,
    resume: 9,
    save: 2,
    restore: 6,
    destroy: 2,
    'snapshot-create': 2,
    'snapshot-list': 3,
    'snapshot-revert': 2,
    'snapshot-delete': 3,
    'snapshot-delete-children': 3,
    'launch-remoteapp': 2,
    'launch-desktop': 2,
  };
  const snaps =
    c.path.startsWith('snapshot-') && c.path !== 'snapshot-create'
      ? [
          { Name: c.snapshot, Id: SNAP_IDS[0], ParentSnapshotId: null, CreationTime: 1700000000000, State: 3 },
          {
            Name: `${c.snapshot} child`,
            Id: SNAP_IDS[1],
            ParentSnapshotId: SNAP_IDS[0],
            CreationTime: 1700000100000,
            State: 2,
          },
        ]
      : [];
  const vms = states[c.path]
    ? [
        {
          Name: c.vm,
          Id: VM_ID,
          State: states[c.path],
          MemoryStartup: 536870912,
          ProcessorCount: 1,
          CreationTime: 1700000000000,
          Notes: '{"tandem":true}',
          Disks: ['C:\\Hyper-V\\disk.vhdx'],
          Switch: 'Default Switch',
          Mac: null,
          CheckpointType: 'Standard',
          Snapshots: snaps,
          ParentSnapshotId: snaps.length ? SNAP_IDS[1] : null,
        },
      ]
    : [];
  writeFileSync(join(home.home, 'fake-hyperv.json'), JSON.stringify({ vms, removedFiles: [] }));
}

/** A runner for the fake RDP client that tells it where to log. */
export function rdpClientRunner(log: string): CommandRunner {
  const local = new LocalRunner();
  const env = { TANDEM_FAKE_RDP_LOG: log, TANDEM_FAKE_RDP_MS: '1' };
  return {
    description: 'local',
    platform: local.platform,
    remote: false,
    run: (r) => local.run({ ...r, env: { ...r.env, ...env } }),
    start: (r) => local.start({ ...r, env: { ...r.env, ...env } }),
    close: () => local.close(),
  };
}

/** Runs one case and checks its effect. */
export async function runCase(
  adapter: HyperVAdapter,
  home: FakeHyperVHome,
  rdpLog: string,
  c: FuzzCase,
): Promise<void> {
  seed(home, c);
  const before = home.calls().length;
  const vmState = (): number | undefined => home.state().vms.find((v) => v.Name === c.vm)?.State;
  const check = (): void => {
    for (const call of home.calls().slice(before)) {
      expect(Object.values(HYPERV_SCRIPTS)).toContain(call.script);
      const name = call.stdin
        .split('\n')
        .find((l) => l.startsWith('name='))
        ?.slice(5);
      if (name !== undefined) expect(Buffer.from(name, 'base64').toString('utf8')).toBe(c.vm);
    }
  };
  switch (c.path) {
    case 'define':
      await adapter.define({
        name: c.vm,
        memoryMiB: 512,
        cpus: 1,
        disks: [{ path: `C:\\Hyper-V\\disk.vhdx`, format: 'vhdx' }],
        network: { mode: 'nat' },
        graphics: { kind: 'rdp' },
        osFamily: 'windows',
        labels: { note: c.label },
      });
      expect(JSON.parse(home.state().vms[0]!.Notes)).toEqual({ tandem: true, labels: { note: c.label } });
      break;
    case 'list':
      expect((await adapter.list()).map((v) => v.name)).toEqual([c.vm]);
      break;
    case 'state':
      expect(await adapter.state(c.vm)).toBe('paused');
      break;
    case 'start':
      await adapter.start(c.vm);
      expect(vmState()).toBe(2);
      break;
    case 'stop-force':
      await adapter.stop(c.vm, { force: true });
      expect(vmState()).toBe(3);
      break;
    case 'stop-graceful':
      await adapter.stop(c.vm, { timeoutMs: 5_000 });
      expect(vmState()).toBe(3);
      break;
    case 'suspend':
      await adapter.suspend(c.vm);
      expect(vmState()).toBe(9);
      break;
    case 'resume':
      await adapter.resume(c.vm);
      expect(vmState()).toBe(2);
      break;
    case 'save':
      await adapter.save(c.vm);
      expect(vmState()).toBe(6);
      break;
    case 'restore':
      await adapter.restore(c.vm);
      expect(vmState()).toBe(2);
      break;
    case 'destroy':
      await adapter.destroy(c.vm);
      expect(home.state().vms).toEqual([]);
      break;
    case 'snapshot-create': {
      const s = await adapter.snapshots.create(c.vm, { name: c.snapshot });
      expect([s.name, s.vmState, s.current]).toEqual([c.snapshot, 'running', true]);
      break;
    }
    case 'snapshot-list':
      expect((await adapter.snapshots.list(c.vm)).map((s) => [s.name, s.parentId, s.current])).toEqual([
        [c.snapshot, null, false],
        [`${c.snapshot} child`, SNAP_IDS[0], true],
      ]);
      break;
    case 'snapshot-revert':
      await adapter.snapshots.revert(c.vm, c.snapshot);
      expect(vmState()).toBe(3);
      break;
    case 'snapshot-delete':
      await adapter.snapshots.delete(c.vm, c.snapshot);
      expect(home.state().vms[0]?.Snapshots).toHaveLength(1);
      break;
    case 'snapshot-delete-children':
      await adapter.snapshots.delete(c.vm, c.snapshot, { children: true });
      expect(home.state().vms[0]?.Snapshots).toEqual([]);
      break;
    case 'launch-remoteapp':
    case 'launch-desktop': {
      const remoteApp = c.path === 'launch-remoteapp';
      const request = {
        appId: c.vm,
        command: c.command,
        args: c.args,
        mode: remoteApp ? ('seamless' as const) : ('full-desktop' as const),
        credentials: { username: c.username, password: c.password },
      };
      // An .rdp file has no escaping: values with line breaks are refused, nothing is started.
      const unfit = [c.username, ...(remoteApp ? [c.command, c.vm, c.args.join(' ')] : [])].some((v) =>
        /[\r\n]/.test(v),
      );
      const launched = await adapter.seamless.launch(c.vm, request).catch((e: unknown) => e);
      if (unfit) {
        expect(TandemError.is(launched, 'TANDEM_INVALID_INPUT')).toBe(true);
        break;
      }
      if (launched instanceof Error) throw launched;
      const handle = launched as Awaited<ReturnType<HyperVAdapter['seamless']['launch']>>;
      await handle.exited;
      const records = existsSync(rdpLog)
        ? readFileSync(rdpLog, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { argv: string[]; rdp: string; stdin: string })
        : [];
      const rec = records.find((r) => r.argv[0] === handle.argv[1]);
      expect(rec?.stdin).toBe(`${c.password}\n`);
      const rdp = parseRdpFile(rec!.rdp);
      expect(rdp.get('username')).toBe(c.username || undefined);
      if (remoteApp) {
        expect(rdp.get('remoteapplicationprogram')).toBe(c.command);
        expect(rdp.get('remoteapplicationname')).toBe(c.vm);
      } else {
        expect(rdp.get('pcb')).toBe(`${VM_ID};EnhancedMode=1`);
      }
      break;
    }
  }
  check();
}
