import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type TandemError, type CommandResult } from '@tandem/core';
import { mapVBoxError, parseErrorLines } from './errors.js';
import { fixture } from './fake.test-helper.js';
import {
  mapVmState,
  parseCreatedUuid,
  parseExtraData,
  parseGuestProperty,
  parseHostInfo,
  parseListVms,
  parseMachineReadable,
  parseSnapshotList,
  parseSnapshotTaken,
  parseVersion,
} from './parse.js';

const require = createRequire(import.meta.url);
const render = require('../test/fake/render.js') as {
  esc(s: string): string;
  listVms(vms: { name: string; uuid: string; inaccessible?: boolean }[]): string;
  snapshotTree(
    s: { uuid: string; name: string; description: string; parent: string | null }[],
    current: string | null,
  ): string;
};

const VERSIONS = ['6.1', '7.0', '7.1'] as const;
/** Names as users type them, hostile ones included (no NUL: VirtualBox cannot store one). */
const anyName = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }).filter((s) => !s.includes('\0'));

describe('VBoxManage --version', () => {
  it('reads 6.1, 7.0 and 7.1 exactly as they print it', () => {
    expect(parseVersion(fixture('6.1/version.txt')).version).toMatchObject({
      major: 6,
      minor: 1,
      patch: 50,
      raw: '6.1.50r161033',
    });
    expect(parseVersion(fixture('7.0/version.txt')).version).toMatchObject({ major: 7, minor: 0, patch: 14 });
    expect(parseVersion(fixture('7.1/version.txt')).version).toMatchObject({ major: 7, minor: 1, patch: 4 });
    expect(parseVersion(fixture('common/version-newer.txt')).version).toMatchObject({ major: 7, minor: 2 });
  });

  it('keeps the kernel-module warning VBoxManage prints before the version', () => {
    const { version, warnings } = parseVersion(fixture('6.1/version-vboxdrv-missing.txt'));
    expect(version?.raw).toBe('6.1.50r161033');
    expect(warnings.join(' ')).toMatch(/vboxdrv kernel module is not loaded.*vboxconfig/);
  });
});

describe('list vms', () => {
  it('reads raw names with quotes, backslashes and newlines, and <inaccessible> machines', () => {
    const vms = parseListVms(fixture('common/list-vms.txt'));
    expect(vms.map((v) => v.name)).toEqual(['legacy-erp', '<inaccessible>', 'quote "me" \\ please', 'two\nlines']);
    expect(vms[1]?.inaccessible).toBe(true);
    expect(vms[0]?.uuid).toBe('9c2b6e4a-3f1d-4a8e-b5c7-2d8f0e1a6b34');
  });

  it('round-trips any names through the way VBoxManage prints them', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(anyName, fc.uuid({ version: 4 })), { maxLength: 5 }), (pairs) => {
        const vms = pairs.map(([name, uuid]) => ({ name, uuid }));
        const parsed = parseListVms(render.listVms(vms));
        expect(parsed.map((v) => [v.name, v.uuid])).toEqual(vms.map((v) => [v.name, v.uuid]));
      }),
      { numRuns: 500 },
    );
  });
});

describe('showvminfo --machinereadable', () => {
  for (const v of VERSIONS) {
    it(`reads the ${v} output`, () => {
      const { values, extra } = parseMachineReadable(fixture(`${v}/showvminfo.txt`));
      expect(values.get('name')).toBe('legacy-erp');
      expect(values.get('UUID')).toBe('9c2b6e4a-3f1d-4a8e-b5c7-2d8f0e1a6b34');
      expect(values.get('VMState')).toBe('running');
      expect(values.get('memory')).toBe('2048');
      expect(values.get('cpus')).toBe('2');
      // An escaped, multi-line description cannot override VMState.
      expect(values.get('description')).toBe('Legacy ERP workspace\nmanaged by "Tandem"\nVMState="poweroff"');
      expect(values.get('GuestAdditionsFacility_VirtualBox Base Driver')).toBe('50,1710236470123');
      expect(values.get('VideoMode')).toBe('1024,768,32');
      expect(extra).toContain('VideoMode: @0,0 1');
      // The first snapshot line holds a raw quote; it does not break the parse.
      expect(values.get('CurrentSnapshotUUID')).toBe('16fd2706-8baf-433b-82eb-8c7fada847da');
    });
  }

  it('tolerates the non key=value line 7.0 prints, and reads 7.1 as key=value', () => {
    expect(parseMachineReadable(fixture('7.0/showvminfo.txt')).extra).toContain('Encryption:     disabled');
    expect(parseMachineReadable(fixture('7.1/showvminfo.txt')).values.get('encryption')).toBe('disabled');
  });

  it('unescapes quoted keys and Windows paths', () => {
    const { values } = parseMachineReadable(fixture('7.1/showvminfo.txt'));
    expect(values.get('CfgFile')).toBe('C:\\Users\\ops\\VirtualBox VMs\\legacy-erp\\legacy-erp.vbox');
    expect(values.get('SATA-0-0')).toBe('D:\\tandem\\images\\legacy-erp.vdi');
  });

  it('reads <inaccessible> machines, which have no state', () => {
    const { values } = parseMachineReadable(fixture('common/showvminfo-inaccessible.txt'));
    expect(values.get('name')).toBe('<inaccessible>');
    expect(mapVmState(values.get('VMState'))).toBe('unknown');
  });

  it('round-trips any value through VirtualBox escaping', () => {
    fc.assert(
      fc.property(anyName, anyName, (name, description) => {
        const text = `name="${render.esc(name)}"\nUUID="x"\ndescription="${render.esc(description)}"\nVMState="paused"\n`;
        const { values } = parseMachineReadable(text);
        expect(values.get('name')).toBe(name);
        expect(values.get('description')).toBe(description);
        expect(values.get('VMState')).toBe('paused');
      }),
      { numRuns: 1000 },
    );
  });
});

describe('states', () => {
  it('maps every VirtualBox state', () => {
    const table: Record<string, string> = {
      poweroff: 'stopped',
      saved: 'saved',
      aborted: 'crashed',
      'aborted-saved': 'crashed',
      gurumeditation: 'crashed',
      running: 'running',
      paused: 'paused',
      starting: 'starting',
      restoring: 'starting',
      stopping: 'stopping',
      saving: 'stopping',
      livesnapshotting: 'running',
      deletingsnapshotlivepaused: 'paused',
      teleported: 'stopped',
      bogus: 'unknown',
    };
    for (const [vbox, state] of Object.entries(table)) expect(mapVmState(vbox)).toBe(state);
  });
});

describe('snapshot list --machinereadable', () => {
  it('reads nested trees with raw quotes, leading dashes and multi-line descriptions', () => {
    const list = parseSnapshotList(fixture('common/snapshot-list.txt'));
    expect(list.map((s) => s.name)).toEqual(['base install', 'erp 3.1', 'before "upgrade"', '-rf branch']);
    const [base, erp, before, branch] = list;
    expect(base?.parentUuid).toBeNull();
    expect(base?.description).toBe('Windows 10 LTSC, patched\nto 2024-02');
    expect(erp?.parentUuid).toBe(base?.uuid);
    expect(before?.parentUuid).toBe(erp?.uuid);
    expect(before?.current).toBe(true);
    expect(branch?.parentUuid).toBe(base?.uuid);
    expect(branch?.description).toBe('second child of the base');
    expect(list.filter((s) => s.current)).toHaveLength(1);
  });

  it('reads "no snapshots" as an empty list', () => {
    expect(parseSnapshotList(fixture('common/snapshot-list-none.txt'))).toEqual([]);
  });

  it('round-trips any tree with any names and descriptions', () => {
    const tree = fc
      .array(fc.tuple(anyName, fc.option(anyName, { nil: '' }), fc.nat()), { minLength: 1, maxLength: 8 })
      .map((items) => {
        const snaps = items.map(([name, description, parentPick], i) => ({
          uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
          name,
          description,
          parent: null as string | null,
          parentPick,
        }));
        snaps.forEach((s, i) => {
          if (i > 0) s.parent = snaps[s.parentPick % i]!.uuid;
        });
        return snaps;
      });
    fc.assert(
      fc.property(tree, fc.nat(), (snaps, currentPick) => {
        const current = snaps[currentPick % snaps.length]!.uuid;
        const parsed = parseSnapshotList(render.snapshotTree(snaps, current));
        const byId = new Map(parsed.map((p) => [p.uuid, p]));
        expect(parsed).toHaveLength(snaps.length);
        for (const s of snaps) {
          const p = byId.get(s.uuid);
          expect(p?.name).toBe(s.name);
          expect(p?.description ?? '').toBe(s.description);
          expect(p?.parentUuid).toBe(s.parent);
          expect(p?.current).toBe(s.uuid === current);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('other outputs', () => {
  it('reads extradata, guest properties, host info and created UUIDs', () => {
    const extra = parseExtraData(fixture('common/extradata.txt'));
    expect(extra.get('GUI/LastNormalWindowPosition')).toBe('640,218,720,463');
    expect(JSON.parse(extra.get('tandem/snapshot/6fa459ea-ee8a-4ca4-894e-db77e160355e')!)).toMatchObject({
      vmState: 'running',
    });
    expect(parseGuestProperty(fixture('common/guestproperty-ip.txt'))).toBe('10.0.2.15');
    expect(parseGuestProperty(fixture('common/guestproperty-none.txt'))).toBeNull();
    for (const v of VERSIONS) expect(parseHostInfo(fixture(`${v}/hostinfo.txt`)).cpus).toBeGreaterThan(0);
    expect(parseHostInfo(fixture('7.0/hostinfo.txt'))).toEqual({ cpus: 8, memoryMiB: 31833, os: 'Linux' });
    expect(parseCreatedUuid(fixture('common/createvm.txt'))).toBe('9c2b6e4a-3f1d-4a8e-b5c7-2d8f0e1a6b34');
    expect(parseSnapshotTaken(fixture('common/snapshot-take.txt'))).toBe('6fa459ea-ee8a-4ca4-894e-db77e160355e');
  });
});

describe('VBoxManage: error: lines', () => {
  const result = (stderr: string, exitCode = 1): CommandResult => ({
    command: 'VBoxManage',
    args: [],
    exitCode,
    stdout: '',
    stderr,
  });
  const mapped = (name: string, exitCode = 1): TandemError => {
    const r = result(fixture(`common/${name}.txt`), exitCode);
    return mapVBoxError(r, 'Test', parseErrorLines(r.stderr));
  };

  it('maps recorded errors to typed errors, keeping the raw output as data', () => {
    expect(mapped('error-not-found').code).toBe('TANDEM_NOT_FOUND');
    expect(mapped('error-snapshot-not-found').code).toBe('TANDEM_NOT_FOUND');
    expect(mapped('error-locked').code).toBe('TANDEM_CONFLICT');
    expect(mapped('error-not-running').code).toBe('TANDEM_INVALID_STATE');
    const resume = mapped('error-resume-not-paused');
    expect(resume.code).toBe('TANDEM_INVALID_STATE');
    expect(resume.details['current']).toBe('running');
    expect(mapped('error-two-children').code).toBe('TANDEM_INVALID_STATE');
    expect(mapped('error-access-denied').code).toBe('TANDEM_AUTH');
    expect(mapped('error-password-incorrect').code).toBe('TANDEM_AUTH');
    expect(mapped('error-file-exists').code).toBe('TANDEM_CONFLICT');
    expect(mapped('error-com-server').code).toBe('TANDEM_HOST');
    expect(mapped('error-medium-missing').code).toBe('TANDEM_HYPERVISOR');
    const e = mapped('error-not-found');
    expect(e.message).not.toContain('VBoxManage: error:');
    expect(e.details['output']).toContain('VBOX_E_OBJECT_NOT_FOUND');
    expect(e.details['vboxCode']).toBe('VBOX_E_OBJECT_NOT_FOUND');
  });

  it('a settings file left by a VM unregistered without --delete: a conflict naming the file (6.1 and 7.0 text)', () => {
    for (const version of ['6.1', '7.0']) {
      const r = result(fixture(`${version}/error-settings-file-exists.txt`), 1);
      const e = mapVBoxError(r, 'Create VM "legacy-erp"', parseErrorLines(r.stderr));
      expect(e.code).toBe('TANDEM_CONFLICT');
      expect(e.details['vboxCode']).toBe('VBOX_E_FILE_ERROR');
      expect(e.details['settingsFile']).toBe('/home/ops/VirtualBox VMs/legacy-erp/legacy-erp.vbox');
      expect(e.message).toMatch(/registervm/);
    }
  });

  it('finds error lines even when the exit code is 0', () => {
    const report = parseErrorLines(fixture('common/error-startvm-exit0.txt'));
    expect(report?.message).toMatch(/terminated unexpectedly during startup/);
    expect(report?.code).toBe('NS_ERROR_FAILURE');
    expect(parseErrorLines('Waiting for VM "x" to power on...\n')).toBeNull();
  });
});
