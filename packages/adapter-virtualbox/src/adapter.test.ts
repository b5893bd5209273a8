import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AdapterRegistry,
  TandemError,
  VirtualClock,
  loadAdapterModule,
  type TransferDecision,
  type VmSpec,
} from '@tandem/core';
import { resolveTransferPolicy } from '@tandem/core/publishing';
import { fakeVBoxHomesPerTest, FAKE_VBOXMANAGE } from './fake.test-helper.js';
import { tandemAdapter, virtualbox, type VirtualBoxOptions } from './index.js';

const newHome = fakeVBoxHomesPerTest();

function setup(
  version: '6.1' | '7.0' | '7.1' = '7.1',
  extraEnv: Record<string, string> = {},
  options: Partial<VirtualBoxOptions> = {},
) {
  const home = newHome(version);
  const warnings: string[] = [];
  const adapter = virtualbox({
    vboxManage: FAKE_VBOXMANAGE,
    env: home.env(extraEnv),
    pollIntervalMs: 10,
    onWarning: (w) => warnings.push(w),
    ...options,
  });
  const spec = (name: string, extra: Partial<VmSpec> = {}): VmSpec => {
    const disk = join(home.home, `disk-${home.calls().length}.vdi`);
    writeFileSync(disk, 'fake VDI\n');
    return {
      name,
      memoryMiB: 256,
      cpus: 2,
      disks: [{ path: disk, format: 'vdi' }],
      network: { mode: 'nat' },
      graphics: { kind: 'rdp' },
      osFamily: 'windows',
      labels: { 'tandem.workspace': 'erp' },
      ...extra,
    };
  };
  return { home, adapter, warnings, spec };
}

describe('probe', () => {
  for (const version of ['6.1', '7.0', '7.1'] as const) {
    it(`reports VirtualBox ${version} and the host's RAM and CPUs`, async () => {
      const { adapter } = setup(version);
      const p = await adapter.probe();
      expect(p.usable).toBe(true);
      if (!p.usable) return;
      expect(p.hypervisorVersion.startsWith(version)).toBe(true);
      expect(p.host.cpus).toBeGreaterThan(0);
      expect(p.host.memoryMiB).toBeGreaterThan(1000);
      expect(p.warnings).toBeUndefined();
    });
  }

  it('accepts a newer VirtualBox with a warning instead of refusing it', async () => {
    const { adapter, warnings } = setup('7.1', { TANDEM_FAKE_VBOX_VERSION_FILE: 'common/version-newer.txt' });
    const p = await adapter.probe();
    expect(p.usable).toBe(true);
    expect(p.usable && p.warnings?.[0]).toMatch(/newer than the versions/);
    expect(warnings).toHaveLength(1);
  });

  it('refuses a VirtualBox older than 6.1, and a missing kernel driver, with what to do', async () => {
    const old = await setup('7.1', { TANDEM_FAKE_VBOX_VERSION_FILE: 'common/version-older.txt' }).adapter.probe();
    expect(old).toMatchObject({ usable: false, reason: expect.stringMatching(/older than 6\.1/) as unknown });
    const drv = await setup('6.1', {
      TANDEM_FAKE_VBOX_VERSION_FILE: '6.1/version-vboxdrv-missing.txt',
    }).adapter.probe();
    expect(drv).toMatchObject({ usable: false, fix: expect.stringMatching(/vboxconfig/) as unknown });
  });

  it('says VBoxManage is missing instead of throwing', async () => {
    const p = await virtualbox({ vboxManage: '/nonexistent/VBoxManage' }).probe();
    expect(p).toMatchObject({ usable: false, reason: expect.stringMatching(/cannot run/) as unknown });
  });

  it('takes the flat string options tandem --adapter-option passes', async () => {
    const { home } = setup('6.1');
    const adapter = tandemAdapter.create({
      vboxManage: FAKE_VBOXMANAGE,
      timeoutMs: '30000',
      'env.VBOX_USER_HOME': home.home,
      'env.TANDEM_FAKE_VBOX_VERSION': '6.1',
    });
    expect(await adapter.probe()).toMatchObject({ usable: true, hypervisorVersion: '6.1.50r161033' });
  });

  it('is found by name through the adapter registry and loadAdapterModule', async () => {
    const { home } = setup();
    const registry = new AdapterRegistry([tandemAdapter]);
    const { adapter } = await registry.detect({
      options: { virtualbox: { vboxManage: FAKE_VBOXMANAGE, env: home.env() } },
    });
    expect(adapter.name).toBe('virtualbox');
    expect((await loadAdapterModule('@tandem/adapter-virtualbox')).name).toBe('virtualbox');
  });
});

describe('define and the VBoxManage calls it makes', () => {
  it('creates, configures, attaches storage and labels, addressing the VM by UUID', async () => {
    const { adapter, home, spec } = setup();
    const s = spec('erp', { network: { mode: 'bridged', bridge: 'eth0', macAddress: '08:00:27:aa:bb:cc' } });
    const info = await adapter.define(s);
    expect(info).toMatchObject({ name: 'erp', state: 'stopped', memoryMiB: 256, cpus: 2 });
    const calls = home.calls();
    expect(calls[1]).toEqual(['createvm', '--name=erp', '--ostype=Windows10_64', '--register']);
    expect(calls[2]).toEqual([
      'modifyvm',
      info.id,
      '--memory=256',
      '--cpus=2',
      '--graphicscontroller=vboxsvga',
      '--ioapic=on',
      '--nic1=bridged',
      '--bridgeadapter1=eth0',
      '--macaddress1=080027AABBCC',
    ]);
    expect(calls).toContainEqual([
      'storageattach',
      info.id,
      '--storagectl=SATA',
      '--port=0',
      '--device=0',
      '--type=hdd',
      `--medium=${s.disks[0]!.path}`,
    ]);
    expect(calls).toContainEqual(['setextradata', info.id, 'tandem/label/tandem.workspace', 'erp']);
    expect(await adapter.list()).toEqual([{ name: 'erp', id: info.id, state: 'stopped', memoryMiB: 256, cpus: 2 }]);
  });

  it('removes a half-made VM but keeps its disk when attaching fails', async () => {
    const { adapter, home, spec } = setup();
    const s = spec('broken', { disks: [{ path: join(home.home, 'missing.vdi'), format: 'vdi' }] });
    const err = await adapter.define(s).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_HYPERVISOR')).toBe(true);
    expect((err as TandemError).details['output']).toMatch(/VERR_FILE_NOT_FOUND/);
    expect(await adapter.list()).toEqual([]);
  });

  it('rejects bad specs with InvalidInputError before any process starts', async () => {
    const { adapter, home, spec } = setup();
    const bad: VmSpec[] = [
      spec('a\0b'),
      spec(''),
      spec('ok', { memoryMiB: 0 }),
      spec('ok', { disks: [{ path: 'relative.vdi', format: 'vdi' }] }),
      spec('ok', { disks: [{ path: '/x.img', format: 'raw' }] }),
      spec('ok', { network: { mode: 'bridged' } }),
      spec('ok', { network: { mode: 'nat', macAddress: 'zz' } }),
      spec('ok', { labels: { k: 'v\0' } }),
    ];
    const before = home.calls().length;
    for (const s of bad) {
      const err = await adapter.define(s).catch((e: unknown) => e);
      expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    }
    // Only the spec() helper's own list calls ran: none from define.
    expect(home.calls().length).toBe(before);
  });

  it('refuses a spec that boots a kernel directly, before any process starts', async () => {
    const { adapter, home, spec } = setup();
    const before = home.calls().length;
    const err = await adapter
      .define(spec('guest', { boot: { kernel: '/srv/vmlinuz', initrd: '/srv/initrd.img', cmdline: 'console=ttyS0' } }))
      .catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toMatch(/boots a kernel directly.*libvirt adapter/);
    expect(home.calls().length).toBe(before);
  });
});

describe('lifecycle details', () => {
  it('stops gracefully through the ACPI power button and waits on the adapter clock', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-01T00:00:00Z'));
    const { adapter, home, spec } = setup('7.1', {}, { clock, pollIntervalMs: 1_000 });
    await adapter.define(spec('vm'));
    await adapter.start(vm());
    // The guest has 5 s of the adapter's clock, however slowly each VBoxManage call runs.
    await clock.runUntilSettled(adapter.stop('vm', { timeoutMs: 5_000 }), 1_000);
    expect(await adapter.state('vm')).toBe('stopped');
    const actions = home
      .calls()
      .filter((c) => c[0] === 'controlvm')
      .map((c) => c[2]);
    expect(actions).toEqual(['acpipowerbutton']);
    function vm(): string {
      return 'vm';
    }
  });

  it('forces a guest that ignores ACPI after the timeout, or throws TimeoutError when told not to', async () => {
    const clock = new VirtualClock(Date.parse('2026-01-01T00:00:00Z'));
    const { adapter, home, spec } = setup('7.1', { TANDEM_FAKE_VBOX_ACPI: 'ignore' }, { clock, pollIntervalMs: 1_000 });
    await adapter.define(spec('deaf'));
    await adapter.start('deaf');
    // The clock moves only while the adapter waits on it, however long each VBoxManage call takes.
    const stopping = adapter.stop('deaf', { timeoutMs: 3_000, forceAfterTimeout: false }).catch((e: unknown) => e);
    expect(TandemError.is(await clock.runUntilSettled(stopping, 1_000), 'TANDEM_TIMEOUT')).toBe(true);
    expect(await adapter.state('deaf')).toBe('running');
    await clock.runUntilSettled(adapter.stop('deaf', { timeoutMs: 2_000 }), 1_000);
    expect(await adapter.state('deaf')).toBe('stopped');
    expect(
      home
        .calls()
        .filter((c) => c[0] === 'controlvm')
        .map((c) => c[2]),
    ).toEqual(['acpipowerbutton', 'acpipowerbutton', 'poweroff']);
  });

  it('treats a VBoxManage: error: line as a failure even when VBoxManage exits 0', async () => {
    const { adapter, spec, home } = setup('7.1', { TANDEM_FAKE_VBOX_FAULT: 'startvm-exit0' });
    await adapter.define(spec('flaky'));
    const err = await adapter.start('flaky').catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_HYPERVISOR')).toBe(true);
    expect((err as Error).message).toMatch(/terminated unexpectedly/);
    expect(home.calls().some((c) => c[0] === 'startvm')).toBe(true);
  });

  it('starts in a window, saves, restores, discards a saved state with stop, destroys with disks', async () => {
    const { adapter, home, spec } = setup('6.1');
    const s = spec('w');
    await adapter.define(s);
    await adapter.start('w', { display: 'window' });
    expect(home.calls()).toContainEqual(['startvm', expect.any(String), '--type=gui']);
    await adapter.save('w');
    expect(await adapter.state('w')).toBe('saved');
    await adapter.stop('w');
    expect(await adapter.state('w')).toBe('stopped');
    expect(home.calls().some((c) => c[0] === 'discardstate')).toBe(true);
    await adapter.destroy('w', { deleteDisks: true });
    expect(existsSync(s.disks[0]!.path)).toBe(false);
    expect(TandemError.is(await adapter.state('w').catch((e: unknown) => e), 'TANDEM_NOT_FOUND')).toBe(true);
  });

  it('finds a VM by exact name only, even when another VM is named like its UUID', async () => {
    const { adapter, spec } = setup();
    const a = await adapter.define(spec('alpha'));
    await adapter.define(spec(a.id!));
    await adapter.start(a.id!);
    expect(await adapter.state('alpha')).toBe('stopped');
    expect(await adapter.state(a.id!)).toBe('running');
  });
});

describe('snapshots', () => {
  it('records time and VM state, lists the tree flat with parent ids, reverts by name or id', async () => {
    const clock = new VirtualClock(Date.parse('2026-02-03T04:05:06Z'));
    const { adapter, spec } = setup('7.0', {}, { clock });
    await adapter.define(spec('s'));
    const snaps = adapter.snapshots;
    const a = await snaps.create('s', { name: 'a', description: 'line 1\nline "2"' });
    expect(a).toMatchObject({
      name: 'a',
      description: 'line 1\nline "2"',
      parentId: null,
      current: true,
      vmState: 'stopped',
      createdAt: '2026-02-03T04:05:06.000Z',
    });
    await adapter.start('s');
    const b = await snaps.create('s', { name: '-b' });
    expect(b).toMatchObject({ parentId: a.id, vmState: 'running' });
    await snaps.revert('s', 'a');
    expect(await adapter.state('s')).toBe('stopped');
    await snaps.revert('s', b.id);
    expect(await adapter.state('s')).toBe('running');
    const list = await snaps.list('s');
    expect(list.map((x) => [x.name, x.current])).toEqual([
      ['a', false],
      ['-b', true],
    ]);
    const missing = await snaps.revert('s', 'nope').catch((e: unknown) => e);
    expect(TandemError.is(missing, 'TANDEM_NOT_FOUND')).toBe(true);
  });

  it('explains why VirtualBox refuses to delete a snapshot with two children', async () => {
    const { adapter, spec } = setup();
    await adapter.define(spec('t'));
    const s = adapter.snapshots;
    const a = await s.create('t', { name: 'a' });
    await s.create('t', { name: 'b' });
    await s.revert('t', a.id);
    await s.create('t', { name: 'c' });
    const err = await s.delete('t', a.id).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_INVALID_STATE')).toBe(true);
    expect((err as TandemError).message).toMatch(/more than one child/);
    await s.delete('t', a.id, { children: true });
    expect(await s.list('t')).toEqual([]);
  });
});

describe('disk encryption', () => {
  it('encrypts with the password on stdin, never in an argument, and hands keys over at start', async () => {
    const { adapter, home, spec } = setup();
    const key = new Uint8Array(32).fill(0xab);
    const hex = Buffer.from(key).toString('hex');
    const disk = { path: join(home.home, 'secret.vdi'), format: 'vdi' as const, encryption: { keyId: '-erp key' } };
    await adapter.diskEncryption.encrypt(disk, key, { sizeBytes: 64 * 1024 * 1024 });
    expect(home.calls()).toContainEqual([
      'createmedium',
      'disk',
      `--filename=${disk.path}`,
      '--size=64',
      '--format=VDI',
    ]);
    expect(home.calls()).toContainEqual([
      'encryptmedium',
      disk.path,
      '--newpassword=-',
      '--newpasswordid=-erp key',
      '--cipher=AES-XTS256-PLAIN64',
    ]);
    await adapter.define(spec('enc', { disks: [disk] }));
    await adapter.start('enc', { diskKeys: new Map([['-erp key', key]]) });
    expect(home.calls()).toContainEqual(['controlvm', expect.any(String), 'addencpassword', '-erp key', '-']);
    expect(home.stdins().map((s) => s.stdin)).toEqual([`${hex}\n`, `${hex}\n`]);
    expect(JSON.stringify(home.calls())).not.toContain(hex);
    // A wrong key is an AuthError.
    await adapter.stop('enc', { force: true });
    const wrong = await adapter
      .start('enc', { diskKeys: new Map([['-erp key', new Uint8Array(32)]]) })
      .catch((e: unknown) => e);
    expect(TandemError.is(wrong, 'TANDEM_AUTH')).toBe(true);
  });
});

describe('seamless windows', () => {
  it('sets GUI/Seamless and runs the app with guestcontrol, the password on stdin', async () => {
    const { adapter, home, spec } = setup('7.1', { TANDEM_FAKE_GUEST_RUN_MS: '20000' });
    await adapter.define(spec('app'));
    await adapter.start('app');
    expect(await adapter.guestAddress('app')).toBe('10.0.2.15');
    const handle = await adapter.seamless.launch('app', {
      appId: 'erp',
      command: 'C:\\Program Files\\ERP\\erp.exe',
      args: ['--open', 'a "b" $(c)'],
      workingDirectory: 'C:\\ERP',
      mode: 'seamless',
      credentials: { username: 'user', password: "p'w", domain: 'CORP' },
    });
    expect(handle.transport).toBe('vbox-seamless');
    expect(handle.argv.slice(1)).toEqual([
      'guestcontrol',
      expect.any(String),
      'run',
      '--exe=C:\\Program Files\\ERP\\erp.exe',
      '--username=user',
      '--domain=CORP',
      '--passwordfile=stdin',
      '--cwd=C:\\ERP',
      '--',
      'C:\\Program Files\\ERP\\erp.exe',
      '--open',
      'a "b" $(c)',
    ]);
    // The fake client process records the launch: up to 25 s, for a busy machine.
    for (let i = 0; i < 1250 && !home.state().launches?.length; i++) await new Promise((r) => setTimeout(r, 20));
    await handle.close();
    expect(await handle.exited).toBeNull();
    const launch = home.state().launches?.[0] as { password: string; seamless: string };
    expect(launch).toMatchObject({ password: "p'w", seamless: 'on' });
  });

  it.each(['7.1', '6.1'] as const)(
    "applies the launch's data-transfer policy with controlvm before the app starts (VirtualBox %s)",
    async (version) => {
      const { adapter, home, spec } = setup(version, { TANDEM_FAKE_GUEST_RUN_MS: '20000' });
      await adapter.define(spec('app'));
      await adapter.start('app');
      // The clipboard guest to host and files host to guest allowed, everything else denied.
      const { permissions } = await resolveTransferPolicy({
        decideTransfer: (r) =>
          ({
            request: r,
            outcome:
              (r.channel === 'clipboard' && r.direction === 'guest-to-host') ||
              (r.channel === 'file' && r.direction === 'host-to-guest') ||
              (r.channel === 'audio' && r.direction === 'guest-to-host')
                ? 'allow'
                : 'deny',
            reason: 'test',
          }) as TransferDecision,
      });
      const handle = await adapter.seamless.launch('app', {
        appId: 'erp',
        command: 'C:\\erp.exe',
        mode: 'seamless',
        credentials: { username: 'user' },
        transfer: permissions,
      });
      // Applied (each call finished) before launch() started guestcontrol and returned.
      const policy = home.calls().filter((c) => c[0] === 'controlvm');
      await handle.close();
      const uuid = home.state().vms[0]!.uuid;
      expect(policy).toEqual(
        version === '7.1'
          ? [
              ['controlvm', uuid, 'clipboard', 'mode', 'guesttohost'],
              ['controlvm', uuid, 'clipboard', 'filetransfers', 'off'],
              ['controlvm', uuid, 'draganddrop', 'hosttoguest'],
              ['controlvm', uuid, 'audioin', 'off'],
              ['controlvm', uuid, 'audioout', 'on'],
            ]
          : [
              ['controlvm', uuid, 'clipboard', 'guesttohost'],
              ['controlvm', uuid, 'draganddrop', 'hosttoguest'],
              ['controlvm', uuid, 'audioin', 'off'],
              ['controlvm', uuid, 'audioout', 'on'],
            ],
      );
      const vm = home.state().vms[0] as unknown as Record<string, string>;
      expect([vm['clipboard'], vm['draganddrop'], vm['audioIn'], vm['audioOut']]).toEqual([
        'guesttohost',
        'hosttoguest',
        'off',
        'on',
      ]);
    },
  );

  it('a launch without a resolved policy denies every channel explicitly', async () => {
    const { adapter, home, spec } = setup('7.0', { TANDEM_FAKE_GUEST_RUN_MS: '20000' });
    await adapter.define(spec('app'));
    await adapter.start('app');
    const handle = await adapter.seamless.launch('app', {
      appId: 'erp',
      command: 'C:\\erp.exe',
      mode: 'seamless',
      credentials: { username: 'user' },
    });
    await handle.close();
    const uuid = home.state().vms[0]!.uuid;
    expect(home.calls().filter((c) => c[0] === 'controlvm')).toEqual([
      ['controlvm', uuid, 'clipboard', 'mode', 'disabled'],
      ['controlvm', uuid, 'clipboard', 'filetransfers', 'off'],
      ['controlvm', uuid, 'draganddrop', 'disabled'],
      ['controlvm', uuid, 'audioin', 'off'],
      ['controlvm', uuid, 'audioout', 'off'],
    ]);
  });

  it('needs guest credentials and a running VM', async () => {
    const { adapter, spec } = setup('6.1');
    await adapter.define(spec('app'));
    const noCreds = await adapter.seamless
      .launch('app', { appId: 'x', command: 'x.exe', mode: 'seamless' })
      .catch((e: unknown) => e);
    expect(TandemError.is(noCreds, 'TANDEM_INVALID_INPUT')).toBe(true);
    const stopped = await adapter.seamless
      .launch('app', { appId: 'x', command: 'x.exe', mode: 'full-desktop', credentials: { username: 'u' } })
      .catch((e: unknown) => e);
    expect(TandemError.is(stopped, 'TANDEM_INVALID_STATE')).toBe(true);
  });
});
