// libvirt-specific behaviour on a real libvirtd with QEMU: events the hypervisor raises on
// its own, a graceful stop a guest honours, the guest channel, and libvirtd going away.
import { readFile, rm } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TandemError, type HypervisorEvent } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import {
  bootSectorDisk,
  emptyDisk,
  imageDir,
  itName,
  purge,
  QEMU_URI,
  qemuGate,
  smallSpec,
  until,
  untilBootSectorRuns,
  virsh,
} from './testing/fixtures.test.helpers.js';

const gate = await qemuGate();

describe.skipIf(!gate.enabled)('libvirt adapter on qemu:///system', () => {
  let images: Awaited<ReturnType<typeof imageDir>>;
  const vms: string[] = [];
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });

  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => {
    await adapter.close();
    for (const vm of vms) await purge(vm);
    await images.remove();
  });

  async function defineVm(tag: string, disk: 'empty' | 'poweroff' | 'acpi', extra = {}): Promise<string> {
    const name = itName(tag);
    vms.push(name);
    const path = disk === 'empty' ? await emptyDisk(images.dir, name) : await bootSectorDisk(images.dir, name, disk);
    await adapter.define(smallSpec(name, path, extra));
    return name;
  }

  it('a guest that shuts itself down reaches watch() as stopping, then stopped', async () => {
    const vm = await defineVm('guestoff', 'poweroff');
    const events: HypervisorEvent[] = [];
    const off = adapter.watch((e) => {
      if (e.vm === vm) events.push(e);
    });
    try {
      await adapter.start(vm);
      await until('the stopped event', () => events.some((e) => e.state === 'stopped'));
      expect(events.map((e) => [e.state, e.reason])).toEqual([
        ['stopping', 'Shutdown Finished after guest request'],
        ['stopped', 'Stopped Shutdown'],
      ]);
      // Tandem's own start is not reported as something the hypervisor did.
      expect(events.some((e) => e.reason.startsWith('Started'))).toBe(false);
      expect(await adapter.state(vm)).toBe('stopped');
    } finally {
      off();
    }
  });

  it('a killed QEMU is reported as crashed, and the VM starts again from crashed', async () => {
    const vm = await defineVm('killed', 'empty');
    const events: HypervisorEvent[] = [];
    const off = adapter.watch((e) => {
      if (e.vm === vm) events.push(e);
    });
    try {
      await adapter.start(vm);
      const pid = Number((await readFile(`/run/libvirt/qemu/${vm}.pid`, 'utf8')).trim());
      process.kill(pid, 'SIGKILL');
      await until('the crash event', () => events.some((e) => e.state === 'crashed'));
      expect(events).toEqual([expect.objectContaining({ vm, state: 'crashed', reason: 'Stopped Failed' })]);
      expect(await adapter.state(vm)).toBe('crashed');
      await adapter.start(vm);
      expect(await adapter.state(vm)).toBe('running');
      await adapter.stop(vm, { force: true });
    } finally {
      off();
    }
  });

  it('a graceful stop is honoured by a guest that handles the ACPI power button', async () => {
    const vm = await defineVm('acpi', 'acpi');
    await adapter.start(vm);
    await untilBootSectorRuns(vm);
    // forceAfterTimeout false: this only resolves if the guest powered itself off.
    // QEMU emulates the guest in software: on a busy machine the boot sector answers slowly.
    await adapter.stop(vm, { timeoutMs: 120_000, forceAfterTimeout: false });
    expect(await adapter.state(vm)).toBe('stopped');
    expect(await virsh('domstate', '--domain', vm, '--reason')).toMatch(/shut off \(shutdown\)/);
  }, 300_000);

  it('a graceful stop a guest ignores times out with TimeoutError, or is forced', async () => {
    const vm = await defineVm('noacpi', 'empty');
    await adapter.start(vm);
    const err = await adapter.stop(vm, { timeoutMs: 500, forceAfterTimeout: false }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_TIMEOUT')).toBe(true);
    expect(await adapter.state(vm)).toBe('running');
    await adapter.stop(vm, { timeoutMs: 500 });
    expect(await virsh('domstate', '--domain', vm, '--reason')).toMatch(/shut off \(destroyed\)/);
  });

  it('snapshots of a paused VM revert to paused', async () => {
    const vm = await defineVm('pausedsnap', 'empty');
    await adapter.start(vm);
    await adapter.suspend(vm);
    const snap = await adapter.snapshots.create(vm, { name: 'while paused', description: 'état « pausé »' });
    expect(snap).toMatchObject({
      name: 'while paused',
      vmState: 'paused',
      description: 'état « pausé »',
      current: true,
    });
    await adapter.resume(vm);
    await adapter.snapshots.revert(vm, 'while paused');
    expect(await adapter.state(vm)).toBe('paused');
    await expect(adapter.snapshots.create(vm, { name: 'while paused' })).rejects.toMatchObject({
      code: 'TANDEM_CONFLICT',
    });
    await expect(adapter.snapshots.delete(vm, 'nope')).rejects.toMatchObject({
      code: 'TANDEM_NOT_FOUND',
      details: { libvirtMessage: expect.stringMatching(/snapshot/i) as unknown },
    });
    await adapter.stop(vm, { force: true });
  });

  it('the guest channel is a unix socket QEMU serves, opened from the host', async () => {
    const vm = await defineVm('channel', 'empty', { guestChannel: true });
    await expect(adapter.guestChannel.open(vm)).rejects.toMatchObject({
      code: 'TANDEM_INVALID_STATE',
      details: { current: 'stopped' },
    });
    await adapter.start(vm);
    const chardev = async (): Promise<string> =>
      (await virsh('qemu-monitor-command', '--domain', vm, '--hmp', 'info chardev'))
        .split('\n')
        .find((l) => l.includes('org.tandem.agent.0')) ?? '';
    expect(await chardev()).toMatch(/filename=disconnected:unix:/);
    const stream = await adapter.guestChannel.open(vm);
    try {
      // QEMU now has a host peer on the agent port.
      expect(await chardev()).toMatch(/filename=unix:.*org\.tandem\.agent\.0/);
      expect(stream.write(Buffer.from('{"hello":"agent"}\n'))).toBe(true);
    } finally {
      stream.destroy();
    }
    await until('QEMU to see the host side close', async () => /disconnected:unix:/.test(await chardev()));
    const other = await defineVm('nochannel', 'empty');
    await adapter.start(other);
    await expect(adapter.guestChannel.open(other)).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    await adapter.stop(other, { force: true });
    await adapter.stop(vm, { force: true });
  });

  it('a definition libvirt rejects is HypervisorError with libvirt’s message', async () => {
    const name = itName('badmachine');
    vms.push(name);
    const strict = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu', machine: 'no-such-machine' });
    try {
      const err = await strict.define(smallSpec(name, await emptyDisk(images.dir, name))).catch((e: unknown) => e);
      const started = err === undefined ? await strict.start(name).catch((e: unknown) => e) : err;
      expect(TandemError.is(started, 'TANDEM_HYPERVISOR')).toBe(true);
      // libvirt's own words, as virsh would print them.
      expect(String((started as TandemError).details['libvirtMessage'])).toMatch(/XML error|no-such-machine/);
      expect((started as TandemError).message).toContain(String((started as TandemError).details['libvirtMessage']));
    } finally {
      await strict.close();
    }
  });

  describe('libvirtd going away mid-operation', () => {
    // The adapter reaches libvirtd through a relay socket the test owns, so "stopping the
    // daemon" (killing the relay) affects this test only, not the rest of the suite. The relay is
    // a process of its own: in this process it would need the event loop that a libvirt call in
    // progress can hold, and the two would wait for each other.
    const relayPath = join(tmpdir(), `tandem-it-relay-${process.pid}.sock`);
    const RELAY = `
      const net = require('node:net');
      net.createServer((client) => {
        const daemon = net.createConnection('/run/libvirt/libvirt-sock');
        for (const s of [client, daemon]) s.on('error', () => s.destroy());
        client.pipe(daemon).pipe(client);
      }).listen(process.argv[1], () => process.stdout.write('ready\\n'));`;
    let relay: ChildProcess | undefined;
    const startRelay = async (): Promise<void> => {
      await rm(relayPath, { force: true });
      const child = spawn(process.execPath, ['-e', RELAY, relayPath], { stdio: ['ignore', 'pipe', 'inherit'] });
      relay = child;
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`the relay exited with ${code}`)));
      });
    };
    const stopRelay = async (): Promise<void> => {
      const child = relay;
      relay = undefined;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await exited;
    };

    it('an operation in flight fails with HostError carrying libvirt’s message, and the adapter recovers', async () => {
      await startRelay();
      const uri = `qemu+unix:///system?socket=${relayPath}`;
      const relayed = new LibvirtAdapter({ uri, virtType: 'qemu' });
      const vm = await defineVm('relay', 'empty');
      try {
        await relayed.start(vm);
        // A firmware-only guest ignores ACPI, so this stop polls until its timeout...
        const stopping = relayed.stop(vm, { timeoutMs: 60_000, forceAfterTimeout: false }).catch((e: unknown) => e);
        await until('the guest to be asked to shut down', async () =>
          /running/.test(await virsh('domstate', '--domain', vm)),
        );
        await new Promise((r) => setTimeout(r, 300));
        // ...and the daemon disappears under it.
        await stopRelay();
        const err = await stopping;
        expect(TandemError.is(err, 'TANDEM_HOST')).toBe(true);
        expect((err as TandemError).retryable).toBe(true);
        expect(String((err as TandemError).details['libvirtMessage'])).toMatch(
          /Failed to connect socket|Cannot recv data|closed|End of file/,
        );
        const probe = await relayed.probe();
        expect(probe.usable).toBe(false);
        // The daemon is back: the next call reconnects by itself.
        await startRelay();
        expect(await relayed.state(vm)).toBe('running');
        await relayed.stop(vm, { force: true });
      } finally {
        await relayed.close();
        await stopRelay().catch(() => undefined);
        await rm(relayPath, { force: true });
      }
    });
  });
});
