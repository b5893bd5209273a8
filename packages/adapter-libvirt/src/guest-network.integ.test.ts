// First-time setup's network step (spec.firstTimeSetup.network) on the real Linux test guest
// (scripts/test-guest) booted by real QEMU through the libvirt adapter, on libvirt's NAT network
// "default": the guest boots with eth0 up and no address (tandem.net=manual), the agent sets a
// static address, gateway and DNS with the guest's own busybox `ip` and an atomic resolv.conf,
// and then, for a second VM instance, takes a DHCP lease from libvirt's dnsmasq with busybox
// udhcpc. Each is read back through the agent's `info` (IP addresses) and from the guest itself.
// Waits are event-driven and sized for software emulation on a busy machine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWorkspace, type Workspace } from '@tandem/core';
import { GuestConnection, runFirstTimeSetup, SetupRecordStore } from '@tandem/core/guest';
import { LibvirtAdapter } from './adapter.js';
import { itName, purge, QEMU_URI, qemuGate, until, virsh } from './testing/fixtures.test.helpers.js';
import {
  addControlPort,
  consoleTailOnFailure,
  startUntilHello,
  guestShell,
  prepareTestGuest,
  testGuestGate,
  testGuestSpec,
  type TestGuestFiles,
} from './testing/test-guest.test.helpers.js';

const LONG = 600_000;

const gate = await qemuGate();
const guestGate = gate.enabled ? await testGuestGate() : gate;

/** A workspace whose first-time setup has only the network step. */
function workspace(network: string): Workspace {
  return parseWorkspace(`apiVersion: tandem/v1
kind: Workspace
metadata: { name: test-guest-network, version: 1.0.0 }
spec:
  image: { source: ./state.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: nat }
  firstTimeSetup:
    network: ${network}
`);
}

/** The IPv4 addresses (without prefix) the agent reports on eth0. */
async function eth0Addresses(conn: GuestConnection): Promise<string[]> {
  const info = await conn.info();
  return info.addresses.filter((a) => a.interface === 'eth0' && a.family === 'IPv4').map((a) => a.address);
}

describe.skipIf(!guestGate.enabled)('the network step of first-time setup on the real test guest', () => {
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });
  const vm = itName('guestnet');
  let files: TestGuestFiles;
  let conn: GuestConnection;
  let records: string;
  let gateway: string;
  let staticAddress: string;

  beforeAll(async () => {
    files = await prepareTestGuest(vm);
    records = await mkdtemp(join(tmpdir(), 'tandem-net-records-'));
    // libvirt's network "default": its bridge address is the gateway; the static address is one
    // of its subnet that no lease holds now (dnsmasq pings before it offers an address, so it
    // will not hand this one out while the guest uses it).
    const net = await virsh('net-dumpxml', 'default');
    gateway = /<ip address='(\d+\.\d+\.\d+\.\d+)' netmask='255\.255\.255\.0'/.exec(net)?.[1] ?? '';
    expect(gateway, 'libvirt network "default" has a /24 IPv4 address').toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const leases = await virsh('net-dhcp-leases', '--network', 'default');
    const prefix = gateway.split('.').slice(0, 3).join('.');
    const free = [...Array(40).keys()].map((i) => `${prefix}.${250 - i}`).find((a) => !leases.includes(`${a}/`));
    staticAddress = free!;
    await adapter.define(
      testGuestSpec(vm, files, {
        network: { mode: 'nat' },
        boot: { kernel: files.kernel, initrd: files.initrd, cmdline: 'console=ttyS0 panic=-1 tandem.net=manual' },
      }),
    );
    await addControlPort(vm, files.dir);
    conn = new GuestConnection({ adapter, vm, helloTimeoutMs: 30_000, requestTimeoutMs: 120_000 });
    await startUntilHello(adapter, vm, conn, files.dir);
  }, LONG);

  consoleTailOnFailure(() => files);

  afterAll(async () => {
    await conn?.close();
    await adapter.close();
    await purge(vm);
    await files?.remove();
    if (records) await rm(records, { recursive: true, force: true });
  });

  it(
    'sets a static address, gateway and DNS: the agent reports the address, and the gateway answers from it',
    async () => {
      // The guest came up with eth0 but no address (tandem.net=manual).
      expect(await guestShell(vm, 'cat /sys/class/net/eth0/operstate')).toMatch(/up|unknown/);
      expect(await eth0Addresses(conn)).toEqual([]);

      const ws = workspace(
        `{ address: ${staticAddress}/24, gateway: ${gateway}, dns: [${gateway}], dnsSuffix: tandem.test }`,
      );
      const store = new SetupRecordStore(join(records, 'static'));
      const result = await runFirstTimeSetup({ connection: conn, workspace: ws, records: store });
      expect(result.status).toBe('done');
      expect(result.record.steps.network?.status).toBe('done');
      expect(result.record.steps.network?.message).toContain(`address ${staticAddress}/24 added`);

      // Read back through the agent, and from the guest behind the agent's back.
      expect(await eth0Addresses(conn)).toEqual([staticAddress]);
      expect(await guestShell(vm, 'ip -o -4 addr show dev eth0')).toContain(`inet ${staticAddress}/24`);
      expect(await guestShell(vm, 'ip route show default')).toMatch(new RegExp(`^default via ${gateway} dev eth0`));
      expect(await guestShell(vm, 'cat /etc/resolv.conf')).toBe(`search tandem.test\nnameserver ${gateway}\n`);
      // The address works: it is the guest's only one, and the host's bridge answers it.
      expect(await guestShell(vm, `ping -c 1 -W 20 ${gateway}`)).toMatch(/1 packets received/);
      // Static, so libvirt's dnsmasq never leased it.
      expect(await virsh('net-dhcp-leases', '--network', 'default')).not.toContain(`${staticAddress}/`);

      // Once per VM instance: the host's record says done, and the guest answers already-done.
      const again = await runFirstTimeSetup({ connection: conn, workspace: ws, records: store });
      expect(again.status).toBe('already-done');
      const step = await conn.setupStep({
        instance: result.record.instance,
        step: 'network',
        mode: 'nat',
        settings: { dhcp: true },
      });
      expect(step.status).toBe('already-done');
      expect(await eth0Addresses(conn)).toEqual([staticAddress]);
    },
    LONG,
  );

  it(
    "takes a DHCP lease from libvirt's dnsmasq for a new VM instance: the agent reports the leased address",
    async () => {
      // A new instance of the image (as if cloned) whose eth0 has no address again.
      await guestShell(vm, 'ip addr flush dev eth0; ip route flush dev eth0; : >/etc/resolv.conf');
      expect(await eth0Addresses(conn)).toEqual([]);

      const store = new SetupRecordStore(join(records, 'dhcp'));
      const result = await runFirstTimeSetup({
        connection: conn,
        workspace: workspace('{ dhcp: true }'),
        records: store,
      });
      expect(result.status).toBe('done');
      expect(result.record.steps.network?.message).toMatch(/DHCP lease \d+\.\d+\.\d+\.\d+\/24/);

      const [leased] = await eth0Addresses(conn);
      expect(leased).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(leased!.split('.').slice(0, 3)).toEqual(gateway.split('.').slice(0, 3));
      // dnsmasq lists the lease, and udhcpc's hook set the route and DNS it gave.
      await until(
        'the lease to show in virsh net-dhcp-leases',
        async () => (await virsh('net-dhcp-leases', '--network', 'default')).includes(`${leased}/`),
        120_000,
      );
      expect(await guestShell(vm, 'ip route show default')).toMatch(new RegExp(`^default via ${gateway} dev eth0`));
      expect(await guestShell(vm, 'cat /etc/resolv.conf')).toContain(`nameserver ${gateway}`);
      expect(await guestShell(vm, `ping -c 1 -W 20 ${gateway}`)).toMatch(/1 packets received/);
    },
    LONG,
  );
});
