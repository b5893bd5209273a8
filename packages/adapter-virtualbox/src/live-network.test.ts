import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalRunner, TandemError, type VmSpec } from '@tandem/core';
import { fakeVBoxHomesPerTest, FAKE_VBOXMANAGE } from './fake.test-helper.js';
import { parseMachineReadable } from './parse.js';
import { OWNER_EXTRADATA_KEY, VIRTUALBOX_CAPABILITIES, virtualbox, virtualboxOwnership } from './index.js';
import { VBoxManageCli } from './vboxmanage.js';

const newHome = fakeVBoxHomesPerTest();
const VERSIONS = ['6.1', '7.0', '7.1'] as const;

function setup(version: (typeof VERSIONS)[number] = '7.1') {
  const home = newHome(version);
  const warnings: string[] = [];
  const adapter = virtualbox({
    vboxManage: FAKE_VBOXMANAGE,
    env: home.env(),
    pollIntervalMs: 10,
    onWarning: (w) => warnings.push(w),
  });
  const define = async (name: string, network: VmSpec['network'] = { mode: 'nat' }) => {
    const disk = join(home.home, `${name}.vdi`);
    writeFileSync(disk, 'fake VDI\n');
    return adapter.define({
      name,
      memoryMiB: 256,
      cpus: 1,
      disks: [{ path: disk, format: 'vdi' }],
      network,
      graphics: { kind: 'rdp' },
      osFamily: 'linux',
    });
  };
  /** What VirtualBox shows for NIC 1 now (through the fake's showvminfo). */
  const nic = async (name: string) => {
    const cli = new VBoxManageCli(new LocalRunner(), FAKE_VBOXMANAGE, home.env(), 30_000);
    const v = parseMachineReadable((await cli.run(['showvminfo', name, '--machinereadable'], 'read')).stdout).values;
    return {
      nic1: v.get('nic1'),
      cable: v.get('cableconnected1'),
      bridge: v.get('bridgeadapter1'),
      hostOnly: v.get('hostonlyadapter1'),
      mac: v.get('macaddress1'),
    };
  };
  return { home, adapter, warnings, define, nic };
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
    expect(VIRTUALBOX_CAPABILITIES.liveNetwork).toBe(true);
    expect(typeof virtualbox().setNetwork).toBe('function');
  });

  for (const version of VERSIONS) {
    it(`switches a running VM nat -> host-only -> none -> bridged -> nat without a restart (${version})`, async () => {
      const { adapter, home, define, nic } = setup(version);
      const info = await define('erp');
      await adapter.start('erp');
      const mac = (await nic('erp')).mac;

      await adapter.setNetwork('erp', { mode: 'host-only' });
      expect(await nic('erp')).toMatchObject({ nic1: 'hostonly', hostOnly: 'vboxnet0', cable: 'on', mac });

      await adapter.setNetwork('erp', { mode: 'none' });
      expect(await nic('erp')).toMatchObject({ nic1: 'null', cable: 'off', mac });

      await adapter.setNetwork('erp', { mode: 'bridged', bridge: 'eth0' });
      expect(await nic('erp')).toMatchObject({ nic1: 'bridged', bridge: 'eth0', cable: 'on', mac });

      await adapter.setNetwork('erp', { mode: 'nat', macAddress: mac!.replace(/(..)(?!$)/g, '$1:') });
      expect(await nic('erp')).toMatchObject({ nic1: 'nat', cable: 'on', mac });

      // Never a restart: the VM ran throughout, and only controlvm changed it.
      expect(await adapter.state('erp')).toBe('running');
      const changes = home
        .calls()
        .filter((c) => c[0] === 'controlvm' || c[0] === 'modifyvm' || c[0] === 'startvm')
        .slice(-9);
      expect(changes).toEqual([
        ['startvm', info.id, '--type=headless'],
        ['controlvm', info.id, 'nic1', 'hostonly', 'vboxnet0'],
        ['controlvm', info.id, 'setlinkstate1', 'on'],
        ['controlvm', info.id, 'setlinkstate1', 'off'],
        ['controlvm', info.id, 'nic1', 'null'],
        ['controlvm', info.id, 'nic1', 'bridged', 'eth0'],
        ['controlvm', info.id, 'setlinkstate1', 'on'],
        ['controlvm', info.id, 'nic1', 'nat'],
        ['controlvm', info.id, 'setlinkstate1', 'on'],
      ]);
    });
  }

  it('works on a paused VM, and the next start keeps the new network', async () => {
    const { adapter, define, nic } = setup('7.0');
    await define('erp');
    await adapter.start('erp');
    await adapter.suspend('erp');
    await adapter.setNetwork('erp', { mode: 'host-only', bridge: 'vboxnet0' });
    await adapter.stop('erp', { force: true });
    await adapter.start('erp');
    expect(await nic('erp')).toMatchObject({ nic1: 'hostonly', hostOnly: 'vboxnet0' });
  });

  it('passes on VirtualBox warning about a host interface it does not know', async () => {
    const { adapter, define, nic, warnings } = setup();
    await define('erp');
    await adapter.start('erp');
    await adapter.setNetwork('erp', { mode: 'bridged', bridge: 'eth9' });
    expect(await nic('erp')).toMatchObject({ nic1: 'bridged', bridge: 'eth9' });
    expect(warnings).toEqual([expect.stringMatching(/Interface "eth9" doesn't seem to exist/)]);
  });

  for (const version of ['6.1', '7.1'] as const) {
    it(`refuses a stopped or saved VM with InvalidStateError, touching nothing (${version})`, async () => {
      const { adapter, home, define } = setup(version);
      await define('erp');
      const stopped = await rejection(adapter.setNetwork('erp', { mode: 'none' }));
      expect(stopped.code).toBe('TANDEM_INVALID_STATE');
      expect(stopped.message).toMatch(/it is stopped/);
      await adapter.start('erp');
      await adapter.save('erp');
      expect((await rejection(adapter.setNetwork('erp', { mode: 'none' }))).code).toBe('TANDEM_INVALID_STATE');
      expect(home.calls().some((c) => c[0] === 'controlvm' && c[2] !== 'savestate')).toBe(false);
    });
  }

  it("maps VirtualBox's own refusal of a VM that stopped meanwhile (VBoxManage's exact text per version)", async () => {
    for (const [version, text] of [
      ['6.1', /is not currently running"\)/],
      ['7.1', /is not currently running\."\)/],
    ] as const) {
      const { home, define } = setup(version);
      const cli = new VBoxManageCli(new LocalRunner(), FAKE_VBOXMANAGE, home.env(), 30_000);
      await define('x');
      const err = await rejection(cli.run(['controlvm', 'x', 'nic1', 'nat'], 'Switch'));
      expect(err.code).toBe('TANDEM_INVALID_STATE');
      expect(err.message).toMatch(text);
    }
  });

  it('refuses a VM defined without a card, saying why and what to do', async () => {
    const { adapter, home, define } = setup();
    await define('erp', { mode: 'none' });
    await adapter.start('erp');
    const err = await rejection(adapter.setNetwork('erp', { mode: 'nat' }));
    expect(err.code).toBe('TANDEM_INVALID_STATE');
    expect(err.message).toMatch(/no enabled network card.*cannot enable one while the VM runs/);
    expect(home.calls().some((c) => c[0] === 'controlvm' && /^nic|^setlinkstate/.test(c[2] ?? ''))).toBe(false);
  });

  it('refuses a different MAC address and bad input before running anything', async () => {
    const { adapter, home, define } = setup();
    await define('erp');
    await adapter.start('erp');
    const before = home.calls().length;
    const mac = await rejection(adapter.setNetwork('erp', { mode: 'nat', macAddress: '08:00:27:00:00:01' }));
    expect(mac.code).toBe('TANDEM_INVALID_INPUT');
    expect(mac.message).toMatch(/cannot change the MAC address/);
    const bridge = await rejection(adapter.setNetwork('erp', { mode: 'bridged' }));
    expect(bridge.message).toMatch(/needs network\.bridge/);
    const mode = await rejection(adapter.setNetwork('erp', { mode: 'wifi' } as unknown as VmSpec['network']));
    expect(mode.message).toMatch(/"wifi" is not one of nat, bridged, host-only, none/);
    const nul = await rejection(adapter.setNetwork('erp', { mode: 'bridged', bridge: 'eth0\0' }));
    expect(nul.code).toBe('TANDEM_INVALID_INPUT');
    expect(
      home
        .calls()
        .slice(before)
        .some((c) => c[0] === 'controlvm'),
    ).toBe(false);
  });

  it('says NotFound for an unknown VM', async () => {
    const { adapter } = setup();
    expect((await rejection(adapter.setNetwork('ghost', { mode: 'nat' }))).code).toBe('TANDEM_NOT_FOUND');
  });
});

describe('virtualboxOwnership', () => {
  for (const version of VERSIONS) {
    it(`records the owner in the VM's extradata, running or not, and reads it back (${version})`, async () => {
      const { adapter, home, define } = setup(version);
      const info = await define('erp');
      const owners = virtualboxOwnership({ vboxManage: FAKE_VBOXMANAGE, env: home.env() });
      expect(await owners.owner('erp')).toBeUndefined();
      await owners.claim('erp', 1000);
      expect(await owners.owner('erp')).toBe(1000);
      await adapter.start('erp');
      await owners.claim('erp', 1001);
      // A second agent (a fresh ownership object) sees the same record.
      const other = virtualboxOwnership({ vboxManage: FAKE_VBOXMANAGE, env: home.env() });
      expect(await other.owner('erp')).toBe(1001);
      expect(home.state().vms[0]!.extradata[OWNER_EXTRADATA_KEY]).toBe('1001');
      expect(home.calls()).toContainEqual(['setextradata', info.id, OWNER_EXTRADATA_KEY, '1001']);
      expect(home.calls()).toContainEqual(['getextradata', info.id, OWNER_EXTRADATA_KEY]);
      await owners.close();
      await other.close();
    });
  }

  it('refuses a bad uid, an unknown VM, and a record that is not a uid, each with a clear error', async () => {
    const { home, define } = setup();
    await define('erp');
    const owners = virtualboxOwnership({ vboxManage: FAKE_VBOXMANAGE, env: home.env() });
    expect((await rejection(owners.claim('erp', -1))).message).toMatch(/not a uid: expected a whole number/);
    expect((await rejection(owners.claim('erp', 1.5))).code).toBe('TANDEM_INVALID_INPUT');
    expect((await rejection(owners.owner('ghost'))).code).toBe('TANDEM_NOT_FOUND');
    const cli = new VBoxManageCli(new LocalRunner(), FAKE_VBOXMANAGE, home.env(), 30_000);
    await cli.run(['setextradata', 'erp', OWNER_EXTRADATA_KEY, 'alice'], 'set');
    expect((await rejection(owners.owner('erp'))).message).toMatch(/"alice" in its extradata tandem\/owner\/uid/);
  });

  it('satisfies the host agent’s VmOwnership shape', async () => {
    type VmOwnership = {
      owner(vm: string): Promise<number | undefined>;
      claim(vm: string, uid: number): Promise<void>;
    };
    const owners: VmOwnership = virtualboxOwnership();
    expect(typeof owners.claim).toBe('function');
  });
});
