// Seamless launches on a real libvirtd: the guest's address comes from libvirt's DHCP lease
// (the guest's network firmware takes one), and the host-side client receives exactly the
// intended arguments. The client here is a recorder standing in for FreeRDP and Xpra, which
// need a desktop session; the argument vectors themselves are checked in argv.test.ts.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchRequest } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import {
  emptyDisk,
  imageDir,
  itName,
  purge,
  QEMU_URI,
  qemuGate,
  smallSpec,
  until,
  virsh,
} from './testing/fixtures.test.helpers.js';

const gate = await qemuGate();

describe.skipIf(!gate.enabled)('seamless launch on qemu:///system', () => {
  let images: Awaited<ReturnType<typeof imageDir>>;
  let recorder: string;
  const vms: string[] = [];

  beforeAll(async () => {
    images = await imageDir();
    // Records its argv and stdin as JSON, then exits 7.
    recorder = join(images.dir, 'record client');
    await writeFile(
      recorder,
      `#!${process.execPath}
const fs = require('node:fs');
let stdin = '';
try { stdin = fs.readFileSync(0, 'utf8'); } catch {}
fs.writeFileSync(process.argv[1] + '.json', JSON.stringify({ argv: process.argv.slice(2), stdin }));
process.exit(7);
`,
    );
    await chmod(recorder, 0o755);
  });
  afterAll(async () => {
    for (const vm of vms) await purge(vm);
    await images.remove();
  });

  const recorded = async (): Promise<{ argv: string[]; stdin: string }> =>
    JSON.parse(await readFile(`${recorder}.json`, 'utf8')) as { argv: string[]; stdin: string };

  it('finds a Windows guest by its DHCP lease and starts RemoteApp with the exact argv', async () => {
    // networkBoot: with an empty disk the NIC's PXE firmware asks the NAT network for a lease.
    const adapter = new LibvirtAdapter({
      uri: QEMU_URI,
      virtType: 'qemu',
      networkBoot: true,
      freerdp: { path: recorder, syntax: 'v2' },
      xpra: { path: recorder, sshPort: 2022 },
    });
    const vm = itName('seamless');
    vms.push(vm);
    try {
      await adapter.define(
        smallSpec(vm, await emptyDisk(images.dir, vm), { network: { mode: 'nat' }, osFamily: 'windows' }),
      );
      await adapter.start(vm);
      let address = '';
      await until(
        'a DHCP lease',
        async () => {
          address = await adapter.seamless.guestAddress(vm).catch(() => '');
          return address !== '';
        },
        240_000,
      );
      expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(await virsh('net-dhcp-leases', '--network', 'default')).toContain(address);

      const request: LaunchRequest = {
        appId: 'erp',
        command: 'C:\\Program Files\\Légacy "ERP"\\erp.exe',
        args: ['D:\\Données\\Q3 report.erp', "it's"],
        workingDirectory: 'C:\\Program Files\\Légacy "ERP"',
        mode: 'seamless',
        credentials: { username: 'zoë', domain: 'CORP', password: 'sécret pass' },
      };
      const handle = await adapter.seamless.launch(vm, request);
      expect(handle.transport).toBe('rdp-remoteapp');
      expect(await handle.exited).toBe(7);
      const { argv, stdin } = await recorded();
      expect(argv).toEqual([
        `/v:${address}:3389`,
        '/u:zoë',
        '/d:CORP',
        '/from-stdin',
        '/cert-tofu',
        // No policy in the request: every channel off, explicitly.
        '-clipboard',
        '-drives',
        '-home-drive',
        '/audio-mode:2',
        '/app:C:\\Program Files\\Légacy "ERP"\\erp.exe',
        '/app-name:erp',
        `/app-cmd:"D:\\Données\\Q3 report.erp" it's`,
        '/app-workdir:C:\\Program Files\\Légacy "ERP"',
      ]);
      expect(handle.argv).toEqual([recorder, ...argv]);
      // The password went to the client's stdin, not its command line.
      expect(stdin).toBe('sécret pass\n');

      const xpra = await adapter.seamless.launch(vm, {
        appId: 'edit',
        command: '/opt/Zoë Tools/edit',
        args: ['$(reboot)', 'a b'],
        mode: 'seamless',
        transport: 'xpra',
        frameColor: '#d9534f',
        credentials: { username: 'user' },
      });
      expect(await xpra.exited).toBe(7);
      expect((await recorded()).argv).toEqual([
        'start',
        `ssh://user@${address}:2022/`,
        "--start-child='/opt/Zoë Tools/edit' '$(reboot)' 'a b'",
        '--exit-with-children=yes',
        '--attach=yes',
        '--border=#d9534f,2',
        '--clipboard=no',
        '--clipboard-direction=disabled',
        '--file-transfer=no',
        '--open-files=no',
        '--printing=no',
        '--speaker=disabled',
        '--microphone=disabled',
        '--webcam=no',
        '--open-url=no',
        '--dbus-proxy=no',
      ]);
      const missing = new LibvirtAdapter({ uri: QEMU_URI, freerdp: { path: '/nonexistent/xfreerdp', syntax: 'v3' } });
      await expect(missing.seamless.launch(vm, request)).rejects.toMatchObject({
        code: 'TANDEM_HOST',
        details: { binary: '/nonexistent/xfreerdp', code: 'ENOENT' },
      });
      await missing.close();
      await expect(adapter.seamless.launch(vm, { ...request, transport: 'vbox-seamless' })).rejects.toMatchObject({
        code: 'TANDEM_UNSUPPORTED',
      });
      await adapter.stop(vm, { force: true });
      await expect(adapter.seamless.launch(vm, request)).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
    } finally {
      await adapter.close();
    }
  }, 300_000); // PXE firmware under software emulation asks for its lease slowly on a busy machine

  it('a guest without an address is a retryable HostError saying what was tried', async () => {
    const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });
    const vm = itName('noclient');
    vms.push(vm);
    try {
      await adapter.define(smallSpec(vm, await emptyDisk(images.dir, vm), { osFamily: 'windows' }));
      await adapter.start(vm);
      // No network, so no lease, no agent, no ARP entry.
      await expect(
        adapter.seamless.launch(vm, { appId: 'a', command: 'notepad.exe', mode: 'seamless' }),
      ).rejects.toMatchObject({
        code: 'TANDEM_HOST',
        retryable: true,
        details: { tried: expect.arrayContaining([expect.stringMatching(/^lease/)]) as unknown },
      });
      await adapter.stop(vm, { force: true });
    } finally {
      await adapter.close();
    }
  });
});
