// The guest agent in a real Linux guest (scripts/test-guest) booted by real QEMU through the
// libvirt adapter (direct kernel boot), with the host side (GuestConnection) on the other end of
// the virtio-serial channel: hello and info, first-time setup once across a reboot, app
// discovery, web redirection from guest to host, and reconnecting after the agent is killed and
// after the VM reboots. Waits are event-driven and sized for software emulation on a busy machine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWorkspace, type TandemEventMap, type TandemEventType } from '@tandem/core';
import { GuestConnection, runFirstTimeSetup, SetupRecordStore } from '@tandem/core/guest';
import { PolicyEngine } from '@tandem/core/policy';
import { LibvirtAdapter } from './adapter.js';
import { itName, purge, QEMU_URI, qemuGate, until, virsh } from './testing/fixtures.test.helpers.js';
import {
  addControlPort,
  consoleTailOnFailure,
  startUntilHello,
  guestShell,
  prepareTestGuest,
  TEST_APPS,
  testGuestGate,
  testGuestManifest,
  testGuestSpec,
  type TestGuestFiles,
  type TestGuestManifest,
} from './testing/test-guest.test.helpers.js';

// Software emulation on a machine kept busy on purpose: hooks and tests get generous limits
// (the waits inside are event-driven; nothing asserts a timing).
const LONG = 600_000;

const gate = await qemuGate();
const guestGate = gate.enabled ? await testGuestGate() : gate;

const AGENT_MAIN = '/opt/tandem/node_modules/@tandem/guest-agent/dist/main.js';

const WORKSPACE = parseWorkspace(`apiVersion: tandem/v1
kind: Workspace
metadata: { name: test-guest, version: 1.0.0 }
spec:
  image: { source: ./state.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: none }
  firstTimeSetup:
    computerName: "tg-{random4}"
  webRedirection:
    defaultTarget: guest
    guestToHost: true
    rules:
      - { match: { domainSuffix: example.com }, target: host }
`);

type Recorded = { [K in TandemEventType]: { type: K; data: TandemEventMap[K] } }[TandemEventType];

describe.skipIf(!guestGate.enabled)('the guest agent in a real Linux guest on qemu:///system', () => {
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });
  const vm = itName('guest');
  const events: Recorded[] = [];
  const opened: Array<{ url: string; target: string }> = [];
  let files: TestGuestFiles;
  let manifest: TestGuestManifest;
  let conn: GuestConnection;
  let records: string;

  const ofType = <K extends TandemEventType>(type: K): Array<TandemEventMap[K]> =>
    events.filter((e) => e.type === type).map((e) => e.data as TandemEventMap[K]);

  beforeAll(async () => {
    manifest = await testGuestManifest();
    files = await prepareTestGuest(vm);
    records = await mkdtemp(join(tmpdir(), 'tandem-setup-records-'));
    // NAT through libvirt's network "default" (dnsmasq gives the lease; .ci/run installs it).
    await adapter.define(testGuestSpec(vm, files, { network: { mode: 'nat' } }));
    await addControlPort(vm, files.dir);
    const policy = new PolicyEngine({ workspace: WORKSPACE }).forSubject({});
    conn = new GuestConnection({
      adapter,
      vm,
      bus: recordingBus(),
      policy,
      onUrlToHost: (url, decision) => opened.push({ url, target: decision.target }),
      // Software emulation on a loaded machine: a generous hello and request budget.
      helloTimeoutMs: 30_000,
      requestTimeoutMs: 60_000,
    });
    const started = Date.now();
    await startUntilHello(adapter, vm, conn, files.dir);
    // A figure for docs/benchmarks.md, never asserted.
    process.stderr.write(`test guest: agent hello ${((Date.now() - started) / 1000).toFixed(1)} s after start\n`);
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
    'the agent says hello with its capabilities and reports the Debian kernel packed in the image',
    async () => {
      expect(conn.state).toBe('connected');
      expect(conn.agent?.software).toBe('@tandem/guest-agent');
      for (const c of ['info', 'first-time-setup', 'apps', 'url-to-host'] as const) expect(conn.has(c)).toBe(true);
      expect(ofType('guest.connected')[0]).toMatchObject({ vm, reconnect: false });
      const info = await conn.info();
      expect(info.os.family).toBe('linux');
      expect(info.os.kernel).toContain(manifest.kernelRelease);
      // The guest's own view of its name, read from /proc behind the agent's back.
      const procName = (await guestShell(vm, 'cat /proc/sys/kernel/hostname')).trim();
      expect(info.hostname).toBe(procName);
      expect((await guestShell(vm, 'uname -r')).trim()).toBe(manifest.kernelRelease);
    },
    LONG,
  );

  it(
    'has a working NAT network: a DHCP lease from libvirt network "default", and its gateway answers',
    async () => {
      let address: string | undefined;
      await until(
        'the guest to get a DHCP lease on eth0',
        async () => {
          const info = await conn.info();
          address = info.addresses.find((a) => a.interface === 'eth0' && a.family === 'IPv4')?.address;
          return address !== undefined;
        },
        240_000,
      );
      expect(await virsh('net-dhcp-leases', '--network', 'default')).toContain(address);
      const gateway = (await guestShell(vm, "ip route | awk '/^default/ {print $3}'")).trim();
      expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(await guestShell(vm, `ping -c 1 -W 10 ${gateway}`)).toMatch(/1 packets received/);
    },
    LONG,
  );

  it(
    'discovers the .desktop entries placed in the image, with their PNG icons, and not the hidden one',
    async () => {
      const apps = await conn.apps();
      // Ids are desktop-file ids (the file name under applications/).
      const ids = apps.map((a) => a.id.replace(/\.desktop$/, ''));
      for (const id of TEST_APPS.shown) expect(ids).toContain(id);
      expect(ids).not.toContain(TEST_APPS.hidden);
      for (const id of TEST_APPS.shown) {
        const app = apps.find((a) => a.id === `${id}.desktop`)!;
        expect(app.icon?.mediaType).toBe('image/png');
        const png = Buffer.from(app.icon?.data ?? '', 'base64');
        expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      }
      expect(apps.find((a) => a.id === 'tandem-notes.desktop')).toMatchObject({
        name: 'Tandem Notes',
        command: '/bin/vi',
      });
    },
    LONG,
  );

  it(
    'a URL the guest asks the host to open arrives as an event with the policy decision',
    async () => {
      const toHost = 'https://www.example.com/from-guest';
      const staysInGuest = 'https://intranet.local.test/erp';
      await guestShell(vm, `node ${AGENT_MAIN} forward-url ${toHost}`);
      // forward-url returns once the agent sent it; the event follows on the host.
      await until('the url-to-host event', () => ofType('guest.url-to-host').some((e) => e.url === toHost));
      expect(ofType('guest.url-to-host').find((e) => e.url === toHost)).toMatchObject({
        vm,
        target: 'host',
        redirect: true,
      });
      expect(opened).toContainEqual({ url: toHost, target: 'host' });
      await guestShell(vm, `node ${AGENT_MAIN} forward-url ${staysInGuest}`);
      await until('the second url-to-host event', () =>
        ofType('guest.url-to-host').some((e) => e.url === staysInGuest),
      );
      expect(ofType('guest.url-to-host').find((e) => e.url === staysInGuest)).toMatchObject({ target: 'guest' });
      expect(opened.map((o) => o.url)).not.toContain(staysInGuest);
    },
    LONG,
  );

  it(
    'an agent killed inside the guest is restarted by init and the host side reconnects',
    async () => {
      const before = ofType('guest.connected').length;
      const pid = (await guestShell(vm, 'cat /run/tandem-agent.pid')).trim();
      await guestShell(vm, `kill -9 ${pid}`);
      await until('the host side to reconnect', () => ofType('guest.connected').length > before, 240_000);
      expect(ofType('guest.disconnected').length).toBeGreaterThan(0);
      expect(ofType('guest.connected').at(-1)).toMatchObject({ vm, reconnect: true });
      const newPid = (await guestShell(vm, 'cat /run/tandem-agent.pid')).trim();
      expect(newPid).not.toBe(pid);
      expect((await conn.info()).os.family).toBe('linux');
    },
    LONG,
  );

  it(
    'first-time setup names the computer inside the guest, and runs once only across a reboot',
    async () => {
      const store = new SetupRecordStore(records);
      const first = await runFirstTimeSetup({
        connection: conn,
        workspace: WORKSPACE,
        records: store,
        bus: recordingBus(),
      });
      expect(first.status).toBe('done');
      const name = first.record.computerName!;
      expect(name).toMatch(/^tg-[0-9a-z]{4}$/i);
      expect((await conn.info()).hostname).toBe(name);
      expect((await guestShell(vm, 'cat /proc/sys/kernel/hostname')).trim()).toBe(name);
      expect(
        ofType('guest.setup-step')
          .filter((s) => s.step === 'computer-name')
          .map((s) => s.status),
      ).toEqual(['started', 'done']);

      // Reboot: a graceful stop (ACPI power button, which the guest honours) and a start.
      const before = ofType('guest.connected').length;
      await adapter.stop(vm, { timeoutMs: 180_000 });
      expect(await adapter.state(vm)).toBe('stopped');
      await adapter.start(vm);
      await until(
        'the host side to reconnect after the reboot',
        () => ofType('guest.connected').length > before,
        300_000,
      );

      // The name survived the reboot (the persistent disk), and the guest remembers the step.
      expect((await guestShell(vm, 'cat /proc/sys/kernel/hostname')).trim()).toBe(name);
      expect((await conn.info()).hostname).toBe(name);
      const status = await conn.setupStatus();
      expect(status.instance).toBe(first.record.instance);
      expect(status.completed.map((c) => c.step)).toContain('computer-name');
      // Asked again for the same instance, even with another name, the guest does not run it again.
      const again = await conn.setupStep({
        instance: first.record.instance,
        step: 'computer-name',
        computerName: 'tg-other',
      });
      expect(again.status).toBe('already-done');
      expect((await guestShell(vm, 'cat /proc/sys/kernel/hostname')).trim()).toBe(name);
      // And the host's record says done: a second run does nothing.
      const second = await runFirstTimeSetup({ connection: conn, workspace: WORKSPACE, records: store });
      expect(second.status).toBe('already-done');
      expect(second.record.computerName).toBe(name);
    },
    LONG,
  );

  it(
    'a reboot from inside the guest (QEMU resets, the channel socket stays) ends with the host side reconnected',
    async () => {
      const before = ofType('guest.connected').length;
      const bootId = (await guestShell(vm, 'cat /proc/sys/kernel/random/boot_id')).trim();
      // In the background, so the shell answers before the guest goes.
      await guestShell(vm, '(sleep 1; sync; reboot -f) >/dev/null 2>&1 &');
      await until(
        'the host side to reconnect after the guest rebooted',
        () => ofType('guest.connected').length > before,
        300_000,
      );
      expect(await adapter.state(vm)).toBe('running');
      expect((await guestShell(vm, 'cat /proc/sys/kernel/random/boot_id')).trim()).not.toBe(bootId);
      const info = await conn.info();
      // The persistent disk came back with the name first-time setup gave.
      expect(info.hostname).toMatch(/^tg-/);
    },
    LONG,
  );

  it(
    'closing the host side ends cleanly while the VM keeps running',
    async () => {
      await conn.close();
      expect(conn.state).toBe('closed');
      expect(await adapter.state(vm)).toBe('running');
    },
    LONG,
  );

  function recordingBus(): { publish: (type: TandemEventType, data: unknown) => void } {
    return {
      publish: (type, data) => {
        events.push({ type, data } as Recorded);
      },
    };
  }
});
