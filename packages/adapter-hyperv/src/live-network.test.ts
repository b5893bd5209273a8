import { describe, expect, it } from 'vitest';
import { TandemError, type VmSpec } from '@tandem/core';
import { FAKE_PWSH, fakeHyperVHomesPerTest, fixture } from './fake.test-helper.js';
import { HYPERV_CAPABILITIES, HYPERV_SCRIPTS, hyperv, hypervOwnership, ownerFromNotes } from './index.js';
import { parseJson } from './parse.js';

const newHome = fakeHyperVHomesPerTest();
const FLAVORS = ['5.1', '7'] as const;

function setup(flavor: (typeof FLAVORS)[number] = '7') {
  const home = newHome(flavor);
  const adapter = hyperv({ powershell: FAKE_PWSH, env: home.env() });
  const define = (name: string, network: VmSpec['network'] = { mode: 'nat' }) =>
    adapter.define({
      name,
      memoryMiB: 1024,
      cpus: 1,
      disks: [{ path: `C:\\Hyper-V\\${name}.vhdx`, format: 'vhdx' }],
      network,
      graphics: { kind: 'rdp' },
      osFamily: 'windows',
    });
  const vm = (name: string) => home.state().vms.find((v) => v.Name === name)!;
  const inputs = (op: string) => home.inputs(op);
  return { home, adapter, define, vm, inputs };
}

async function rejection(p: Promise<unknown>): Promise<TandemError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!TandemError.is(err)) throw new Error(`expected a TandemError, got ${String(err)}`);
  return err;
}

describe('setNetwork (live network switch)', () => {
  it('is advertised', () => {
    expect(HYPERV_CAPABILITIES.liveNetwork).toBe(true);
    expect(typeof hyperv().setNetwork).toBe('function');
  });

  for (const flavor of FLAVORS) {
    it(`connects and disconnects a running VM's adapter without a restart (PowerShell ${flavor})`, async () => {
      const { adapter, define, vm, inputs } = setup(flavor);
      await define('erp');
      await adapter.start('erp');
      await adapter.setNetwork('erp', { mode: 'host-only', bridge: 'Internal' });
      expect(vm('erp').Switch).toBe('Internal');
      await adapter.setNetwork('erp', { mode: 'none' });
      expect(vm('erp').Switch).toBeNull();
      await adapter.suspend('erp');
      await adapter.setNetwork('erp', { mode: 'bridged', bridge: 'External' });
      expect(vm('erp').Switch).toBe('External');
      await adapter.resume('erp');
      await adapter.setNetwork('erp', { mode: 'nat' });
      expect(vm('erp').Switch).toBe('Default Switch');
      expect(await adapter.state('erp')).toBe('running');
      // Values travel as data: every switch name arrived on stdin, none in the script text.
      expect(inputs('set-network').map((v) => [v['network'], v['switch']])).toEqual([
        ['host-only', 'Internal'],
        ['none', undefined],
        ['bridged', 'External'],
        ['nat', 'Default Switch'],
      ]);
      expect(inputs('set-network')[0]!['allowed']).toBe('2,9');
      // Only the fixed script ran (the per-test check also holds every call to HYPERV_SCRIPTS).
      expect(HYPERV_SCRIPTS['set-network']).not.toMatch(/Internal|External/);
      expect(HYPERV_SCRIPTS['set-network']).toMatch(
        /Connect-VMNetworkAdapter -VMNetworkAdapter \$nics\[0\] -SwitchName \$A\['switch'\]/,
      );
      expect(HYPERV_SCRIPTS['set-network']).toMatch(/Disconnect-VMNetworkAdapter -VMNetworkAdapter \$nics\[0\]/);
    });
  }

  it('hot-adds an adapter to a running VM defined with none, with the MAC asked for', async () => {
    const { adapter, define, vm } = setup('5.1');
    await define('erp', { mode: 'none' });
    await adapter.start('erp');
    await adapter.setNetwork('erp', { mode: 'nat', macAddress: '00:15:5d:aa:bb:cc' });
    expect(vm('erp')).toMatchObject({ Switch: 'Default Switch', Mac: '00155DAABBCC' });
  });

  it('refuses a stopped VM, a MAC change, an unknown switch and bad input, each with a clear error', async () => {
    const { adapter, home, define } = setup();
    await define('erp', { mode: 'nat', macAddress: '00:15:5d:00:00:01' });
    const stopped = await rejection(adapter.setNetwork('erp', { mode: 'none' }));
    expect(stopped.code).toBe('TANDEM_INVALID_STATE');
    expect(stopped.message).toMatch(/the VM is stopped/);
    await adapter.start('erp');
    const mac = await rejection(adapter.setNetwork('erp', { mode: 'nat', macAddress: '00:15:5d:00:00:02' }));
    expect(mac.code).toBe('TANDEM_INVALID_INPUT');
    expect(mac.message).toMatch(/cannot change the MAC address of a running VM/);
    const sw = await rejection(adapter.setNetwork('erp', { mode: 'bridged', bridge: 'Nope' }));
    expect(sw.code).toBe('TANDEM_NOT_FOUND');
    expect(sw.message).toMatch(/no virtual switch named "Nope".*Get-VMSwitch/);
    const calls = home.calls().length;
    expect((await rejection(adapter.setNetwork('erp', { mode: 'bridged' }))).message).toMatch(
      /needs network\.bridge: the name of the external virtual switch/,
    );
    expect(
      (await rejection(adapter.setNetwork('erp', { mode: 'lan' } as unknown as VmSpec['network']))).message,
    ).toMatch(/"lan" is not one of nat, bridged, host-only, none/);
    expect((await rejection(adapter.setNetwork('', { mode: 'nat' }))).code).toBe('TANDEM_INVALID_INPUT');
    expect(home.calls().length).toBe(calls);
    expect((await rejection(adapter.setNetwork('ghost', { mode: 'nat' }))).code).toBe('TANDEM_NOT_FOUND');
  });

  it('says so when Hyper-V reports the adapter somewhere else than asked', async () => {
    // A runner standing in for a PowerShell whose cmdlet did not take effect.
    const runner = {
      description: 'test',
      run: () =>
        Promise.resolve({
          command: 'pwsh',
          args: [],
          exitCode: 0,
          stdout:
            '[\r\n  {\r\n    "Name": "Network Adapter",\r\n    "SwitchName": "Default Switch",\r\n    "MacAddress": "00155D010203"\r\n  }\r\n]\r\n',
          stderr: '',
        }),
      start: () => Promise.reject(new Error('unused')),
      close: () => Promise.resolve(),
    };
    const adapter = hyperv({ runner: runner as never });
    const err = await rejection(adapter.setNetwork('erp', { mode: 'none' }));
    expect(err.code).toBe('TANDEM_HYPERVISOR');
    expect(err.message).toMatch(/reports its adapter on switch "Default Switch" instead of none/);
  });
});

describe('hypervOwnership', () => {
  for (const flavor of FLAVORS) {
    it(`keeps the owner as one line of the VM's Notes, other notes intact (PowerShell ${flavor})`, async () => {
      const { adapter, home, define, vm, inputs } = setup(flavor);
      await define('erp');
      const before = vm('erp').Notes;
      const owners = hypervOwnership({ powershell: FAKE_PWSH, env: home.env() });
      expect(await owners.owner('erp')).toBeUndefined();
      await owners.claim('erp', 1000);
      expect(await owners.owner('erp')).toBe(1000);
      await adapter.start('erp');
      await owners.claim('erp', 1001);
      const other = hypervOwnership({ powershell: FAKE_PWSH, env: home.env() });
      expect(await other.owner('erp')).toBe(1001);
      expect(vm('erp').Notes).toBe(`${before}\r\ntandem-owner-uid: 1001`);
      expect(inputs('owner-set').map((v) => v['uid'])).toEqual(['1000', '1001']);
      expect(HYPERV_SCRIPTS['owner-set']).not.toMatch(/1001/);
      await owners.close();
      await other.close();
    });
  }

  it('refuses a bad uid and an unknown VM', async () => {
    const { home, define } = setup();
    await define('erp');
    const owners = hypervOwnership({ powershell: FAKE_PWSH, env: home.env() });
    expect((await rejection(owners.claim('erp', -3))).message).toMatch(/not a uid: expected a whole number/);
    expect((await rejection(owners.owner('ghost'))).code).toBe('TANDEM_NOT_FOUND');
  });

  for (const dir of ['ps51', 'ps7']) {
    it(`reads the owner line from Notes as ConvertTo-Json prints them (${dir}: escapes, CRLF)`, () => {
      const o = parseJson(fixture(`${dir}/owner-get.json`)) as Record<string, unknown>;
      expect(o['Notes']).toMatch(/^\{"tandem":true.*\r\nIT's VM <finance>\r\n/);
      expect(ownerFromNotes('legacy-erp', o['Notes'])).toBe(1000);
      const nics = parseJson(fixture(`${dir}/set-network-none.json`)) as Record<string, unknown>[];
      expect(nics).toEqual([{ Name: 'Network Adapter', SwitchName: null, MacAddress: '00155D010203' }]);
    });
  }

  it('finds no owner in notes without the line, and refuses a line that holds no uid', () => {
    expect(ownerFromNotes('erp', 'free text only')).toBeUndefined();
    expect(ownerFromNotes('erp', null)).toBeUndefined();
    expect(() => ownerFromNotes('erp', 'tandem-owner-uid: bob')).toThrow(/"bob" after "tandem-owner-uid:".*not a uid/);
  });
});
