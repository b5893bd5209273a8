import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  AdapterRegistry,
  LocalRunner,
  TandemError,
  loadAdapterModule,
  type CommandRunner,
  type VmSpec,
} from '@tandem/core';
import { FAKE_PWSH, fakeHyperVHomesPerTest } from './fake.test-helper.js';
import { hyperv, tandemAdapter, type HyperVOptions } from './index.js';
import { parseRdpFile } from './rdp.js';

const FAKE_RDP = fileURLToPath(new URL('../test/fake/xfreerdp', import.meta.url));

const newHome = fakeHyperVHomesPerTest();

function setup(flavor: '5.1' | '7' = '7', extraEnv: Record<string, string> = {}, options: Partial<HyperVOptions> = {}) {
  const home = newHome(flavor);
  const warnings: string[] = [];
  const adapter = hyperv({
    powershell: FAKE_PWSH,
    env: home.env(extraEnv),
    onWarning: (w) => warnings.push(w),
    ...options,
  });
  const spec = (name: string, extra: Partial<VmSpec> = {}): VmSpec => ({
    name,
    memoryMiB: 2047,
    cpus: 2,
    disks: [{ path: `C:\\Hyper-V\\${name}.vhdx`, format: 'vhdx' }],
    network: { mode: 'nat' },
    graphics: { kind: 'rdp' },
    osFamily: 'linux',
    labels: { 'tandem.workspace': 'erp' },
    ...extra,
  });
  const inputs = (op: string) => home.inputs(op);
  return { home, adapter, warnings, spec, inputs };
}

describe('probe', () => {
  for (const flavor of ['5.1', '7'] as const) {
    it(`reports the host through PowerShell ${flavor}`, async () => {
      const p = await setup(flavor).adapter.probe();
      expect(p).toMatchObject({
        usable: true,
        hypervisorVersion: '10.0.20348.0',
        host: { cpus: 16, memoryMiB: 65536, hostname: 'HV01' },
      });
    });
  }

  it('says what to do without enough privilege: run elevated or join Hyper-V Administrators', async () => {
    const denied = await setup('5.1', { TANDEM_FAKE_HYPERV_FAULT: 'permission' }).adapter.probe();
    expect(denied).toMatchObject({
      usable: false,
      fix: expect.stringMatching(/elevated.*Hyper-V Administrators/) as unknown,
    });
    const notAdmin = await setup('7', { TANDEM_FAKE_HYPERV_ADMIN: 'none' }).adapter.probe();
    expect(notAdmin).toMatchObject({ usable: false, fix: expect.stringMatching(/Hyper-V Administrators/) as unknown });
  });

  it('says how to install the module when Hyper-V cmdlets are missing, and when PowerShell is missing', async () => {
    const p = await setup('7', { TANDEM_FAKE_HYPERV_FAULT: 'no-module' }).adapter.probe();
    expect(p).toMatchObject({ usable: false, fix: expect.stringMatching(/Enable-WindowsOptionalFeature/) as unknown });
    expect(await hyperv({ powershell: '/nonexistent/pwsh' }).probe()).toMatchObject({ usable: false });
  });

  it('takes the flat string options tandem --adapter-option passes', async () => {
    const { home } = setup('5.1');
    const adapter = tandemAdapter.create({
      powershell: FAKE_PWSH,
      timeoutMs: '30000',
      rdpClient: 'freerdp',
      'env.TANDEM_FAKE_HYPERV_HOME': home.home,
    });
    expect(await adapter.probe()).toMatchObject({ usable: true });
    expect(() => tandemAdapter.create({ rdpClient: 'vnc' })).toThrowError(/mstsc or freerdp/);
  });

  it('is found through the registry and loadAdapterModule', async () => {
    const { home } = setup();
    const { adapter } = await new AdapterRegistry([tandemAdapter]).detect({
      options: { hyperv: { powershell: FAKE_PWSH, env: home.env() } },
    });
    expect(adapter.name).toBe('hyperv');
    expect((await loadAdapterModule('@tandem/adapter-hyperv')).name).toBe('hyperv');
  });

  it('maps raw PowerShell error text to typed errors too', async () => {
    const err = await setup('5.1', { TANDEM_FAKE_HYPERV_FAULT: 'parse-error' })
      .adapter.state('ghost')
      .catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_NOT_FOUND')).toBe(true);
  });
});

describe('define', () => {
  it('passes every value as data on stdin: memory in 2 MiB steps, switch, notes, Secure Boot for Linux', async () => {
    const { adapter, spec, inputs } = setup('5.1');
    const info = await adapter.define(spec('erp', { network: { mode: 'nat', macAddress: '00:15:5d:01:02:03' } }));
    expect(info).toMatchObject({ name: 'erp', state: 'stopped', memoryMiB: 2048, cpus: 2 });
    expect(inputs('define')[0]).toEqual({
      name: 'erp',
      memoryBytes: String(2048 * 1024 * 1024),
      cpus: '2',
      notes: JSON.stringify({ tandem: true, labels: { 'tandem.workspace': 'erp' } }),
      network: 'nat',
      disk0: 'C:\\Hyper-V\\erp.vhdx',
      switch: 'Default Switch',
      mac: '00155D010203',
      secureBootTemplate: 'MicrosoftUEFICertificateAuthority',
    });
    expect(TandemError.is(await adapter.define(spec('erp')).catch((e: unknown) => e), 'TANDEM_CONFLICT')).toBe(true);
  });

  it('rejects what Hyper-V cannot take with InvalidInputError before PowerShell starts', async () => {
    const { adapter, spec, home } = setup();
    const bad: VmSpec[] = [
      spec('x\0'),
      spec('ok', { disks: [{ path: '/srv/a.vhdx', format: 'vhdx' }] }),
      spec('ok', { disks: [{ path: 'C:\\a.qcow2', format: 'qcow2' }] }),
      spec('ok', { network: { mode: 'bridged' } }),
      spec('ok', { memoryMiB: 1.5 }),
    ];
    for (const s of bad)
      expect(TandemError.is(await adapter.define(s).catch((e: unknown) => e), 'TANDEM_INVALID_INPUT')).toBe(true);
    expect(home.calls()).toEqual([]);
  });

  it('refuses an encrypted disk with UnsupportedCapabilityError that points to BitLocker in the guest', async () => {
    const { adapter, spec, home } = setup();
    const err = await adapter
      .define(spec('ok', { disks: [{ path: 'C:\\a.vhdx', format: 'vhdx', encryption: { keyId: 'k' } }] }))
      .catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toMatch(/BitLocker/);
    const start = await adapter
      .start('ok', { diskKeys: new Map([['k', Buffer.alloc(32, 1)]]) })
      .catch((e: unknown) => e);
    expect(TandemError.is(start, 'TANDEM_UNSUPPORTED')).toBe(true);
    expect((start as Error).message).toMatch(/BitLocker/);
    expect(home.calls()).toEqual([]);
  });

  it('refuses a spec that boots a kernel directly, before PowerShell starts', async () => {
    const { adapter, spec, home } = setup();
    const err = await adapter
      .define(spec('guest', { boot: { kernel: 'C:\\k\\vmlinuz', cmdline: 'console=ttyS0' } }))
      .catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toMatch(/boots a kernel directly.*libvirt adapter/);
    expect(home.calls()).toEqual([]);
  });

  it('reports an unknown switch as NotFoundError naming it, with the record', async () => {
    const { adapter, spec } = setup();
    const err = await adapter
      .define(spec('sw', { network: { mode: 'bridged', bridge: 'Nope' } }))
      .catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_NOT_FOUND')).toBe(true);
    expect((err as TandemError).message).toMatch(/no virtual switch named "Nope"/);
    expect((err as TandemError).details['record']).toBeTruthy();
  });
});

describe('stop and destroy', () => {
  it('gives up on a guest that ignores shutdown, or turns it off after the timeout', async () => {
    const { adapter, spec, inputs } = setup('7', { TANDEM_FAKE_HYPERV_SHUTDOWN: 'ignore' });
    await adapter.define(spec('deaf'));
    await adapter.start('deaf');
    const err = await adapter.stop('deaf', { timeoutMs: 1500, forceAfterTimeout: false }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_TIMEOUT')).toBe(true);
    expect(await adapter.state('deaf')).toBe('running');
    await adapter.stop('deaf', { timeoutMs: 1500 });
    expect(await adapter.state('deaf')).toBe('stopped');
    expect(inputs('stop').map((v) => [v['mode'], v['timeoutSeconds']])).toEqual([
      ['shutdown', '2'],
      ['shutdown', '2'],
      ['turnoff', undefined],
    ]);
  });

  it('refuses disk keys, destroys with disks, and stops a saved VM by discarding its state', async () => {
    const { adapter, spec, home } = setup('5.1');
    await adapter.define(spec('d'));
    const keys = await adapter.start('d', { diskKeys: new Map([['k', new Uint8Array([1])]]) }).catch((e: unknown) => e);
    expect(TandemError.is(keys, 'TANDEM_UNSUPPORTED')).toBe(true);
    await adapter.start('d');
    await adapter.save('d');
    await adapter.stop('d');
    expect(await adapter.state('d')).toBe('stopped');
    await adapter.snapshots.create('d', { name: 's' });
    await adapter.destroy('d', { deleteDisks: true });
    expect(home.state().removedFiles).toContain('C:\\Hyper-V\\d.vhdx');
    expect(await adapter.list()).toEqual([]);
  });
});

describe('seamless windows over RDP', () => {
  function client(log: string): CommandRunner {
    const local = new LocalRunner();
    return {
      description: 'local',
      platform: local.platform,
      remote: false,
      run: (r) => local.run({ ...r, env: { ...r.env, TANDEM_FAKE_RDP_LOG: log } }),
      start: (r) => local.start({ ...r, env: { ...r.env, TANDEM_FAKE_RDP_LOG: log } }),
      close: () => local.close(),
    };
  }
  const records = (log: string): { argv: string[]; rdp: string; mode: string; stdin: string }[] =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { argv: string[]; rdp: string; mode: string; stdin: string })
      : [];
  const until = async (f: () => boolean): Promise<void> => {
    // A fake client process writes the log: up to 25 s, for a busy machine.
    for (let i = 0; i < 1250 && !f(); i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('launches a RemoteApp through a 0600 .rdp file, the password on stdin, and removes the file', async () => {
    const h = newHome('7');
    const log = join(h.home, 'rdp.log');
    const adapter = hyperv({
      powershell: FAKE_PWSH,
      env: h.env(),
      rdpClient: { kind: 'freerdp', program: FAKE_RDP },
      clientRunner: client(log),
    });
    await adapter.define({
      name: 'app',
      memoryMiB: 512,
      cpus: 1,
      disks: [],
      network: { mode: 'nat' },
      graphics: { kind: 'rdp' },
      osFamily: 'windows',
    });
    const stopped = await adapter.seamless
      .launch('app', { appId: 'erp', command: 'erp.exe', mode: 'seamless' })
      .catch((e: unknown) => e);
    expect(TandemError.is(stopped, 'TANDEM_INVALID_STATE')).toBe(true);
    await adapter.start('app');
    const handle = await adapter.seamless.launch('app', {
      appId: 'erp',
      command: 'C:\\Program Files\\ERP\\erp.exe',
      args: ['$(reboot)', 'a "b"'],
      mode: 'seamless',
      credentials: { username: 'user', password: "p'w$", domain: 'CORP' },
    });
    expect(handle.transport).toBe('rdp-remoteapp');
    expect(handle.argv).toEqual([FAKE_RDP, expect.stringMatching(/connection\.rdp$/), '/from-stdin']);
    await until(() => records(log).length > 0);
    const rec = records(log)[0]!;
    expect(rec.mode).toBe('600');
    expect(rec.stdin).toBe("p'w$\n");
    const rdp = parseRdpFile(rec.rdp);
    expect(rdp.get('full address')).toBe('172.20.113.45');
    expect(rdp.get('remoteapplicationprogram')).toBe('C:\\Program Files\\ERP\\erp.exe');
    expect(rdp.get('remoteapplicationcmdline')).toBe('$(reboot) "a \\"b\\""');
    expect(rec.rdp).not.toContain("p'w$");
    await handle.close();
    await until(() => !existsSync(handle.argv[1]!));
    expect(existsSync(handle.argv[1]!)).toBe(false);
  });

  it('opens the full desktop as an enhanced session to the host, by VM id', async () => {
    const h = newHome('5.1');
    const log = join(h.home, 'rdp.log');
    const adapter = hyperv({
      powershell: FAKE_PWSH,
      env: h.env(),
      rdpClient: { kind: 'mstsc', program: FAKE_RDP },
      clientRunner: client(log),
      hostAddress: 'hv01.corp',
    });
    const vm = await adapter.define({
      name: 'desk',
      memoryMiB: 512,
      cpus: 1,
      disks: [],
      network: { mode: 'none' },
      graphics: { kind: 'rdp' },
      osFamily: 'windows',
    });
    await adapter.start('desk');
    const handle = await adapter.seamless.launch('desk', {
      appId: 'd',
      command: 'explorer.exe',
      mode: 'full-desktop',
      credentials: { username: 'u', password: 'x' },
    });
    expect(handle.transport).toBe('enhanced-session');
    await until(() => records(log).length > 0);
    const rdp = parseRdpFile(records(log)[0]!.rdp);
    expect(rdp.get('full address')).toBe('hv01.corp');
    expect(rdp.get('server port')).toBe('2179');
    expect(rdp.get('pcb')).toBe(`${vm.id};EnhancedMode=1`);
    expect(handle.argv).toHaveLength(2);
    await handle.close();
  });
});
