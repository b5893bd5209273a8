// The watchdog on real QEMU: a killed QEMU is brought back, and libvirtd going away mid-session
// is reported and recovered from while the VM keeps running. The crash tests use the shared
// qemu:///system daemon (killing a VM's own QEMU touches nobody else); the libvirtd tests stop
// and start a private daemon of their own (see testing/private-libvirtd.ts).
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  EventBus,
  parseWorkspace,
  Session,
  TandemError,
  Watchdog,
  type AnyTandemEvent,
  type HypervisorAdapter,
  type WatchdogOptions,
} from '@tandem/core';
import { integrationGate } from '@tandem/core/testing';
import { LibvirtAdapter } from './adapter.js';
import {
  emptyDisk,
  HOW_TO_ENABLE,
  imageDir,
  itName,
  purge,
  QEMU_URI,
  qemuGate,
  smallSpec,
  until,
} from './testing/fixtures.test.helpers.js';
import { alive, privateLibvirtd, privateLibvirtdProblem, type PrivateLibvirtd } from './testing/private-libvirtd.js';

const gate = await qemuGate();
const privateGate = gate.enabled
  ? await integrationGate('private libvirtd', privateLibvirtdProblem, `${HOW_TO_ENABLE}, and run the tests as root`)
  : gate;

const WORKSPACE = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: watchdog-it, version: 1.0.0 }
spec:
  image: { source: ./unused.qcow2, format: qcow2 }
  hardware:
    memory: { fixedMiB: 64 }
`);

/** A session with a watchdog on `adapter`, and the events they publish. */
function watched(adapter: HypervisorAdapter, vm: string, options: WatchdogOptions) {
  const events = new EventBus();
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const session = new Session({ workspace: WORKSPACE, vm, adapter, events });
  const dog = new Watchdog(session, { events, ...options });
  dog.start();
  const steps = (): string[] =>
    seen.flatMap((e) => {
      switch (e.type) {
        case 'watchdog.detected':
          return [`detected:${e.data.source}`];
        case 'watchdog.scheduled':
          return [`scheduled:${e.data.attempt}`];
        case 'watchdog.restart':
          return [`restart:${e.data.attempt}`];
        case 'watchdog.restarted':
          return [`restarted:${e.data.attempt}`];
        case 'watchdog.failed':
          return [`failed:${e.data.attempt}:${e.data.code}`];
        case 'watchdog.gave-up':
          return ['gave-up'];
        case 'hypervisor.lost':
          return ['lost'];
        case 'hypervisor.restored':
          return [`restored:${e.data.state}`];
        default:
          return [];
      }
    });
  const transitions = (): string[] =>
    seen.flatMap((e) =>
      e.type === 'session.transition'
        ? [`${e.data.from}>${e.data.to}:${e.data.operation}${e.data.failed ? '!' : ''}`]
        : [],
    );
  const close = async (): Promise<void> => {
    dog.stop();
    await session.close();
  };
  return { session, dog, seen, steps, transitions, close };
}

/** The adapter without its events: only the watchdog's polling can see a crash. */
function withoutEvents(a: LibvirtAdapter): HypervisorAdapter {
  return {
    name: a.name,
    version: a.version,
    capabilities: a.capabilities,
    probe: () => a.probe(),
    list: () => a.list(),
    define: (spec) => a.define(spec),
    state: (vm) => a.state(vm),
    start: (vm, o) => a.start(vm, o),
    stop: (vm, o) => a.stop(vm, o),
    suspend: (vm) => a.suspend(vm),
    resume: (vm) => a.resume(vm),
    destroy: (vm, o) => a.destroy(vm, o),
  };
}

describe.skipIf(!gate.enabled)('the watchdog on qemu:///system', () => {
  let images: Awaited<ReturnType<typeof imageDir>>;
  const vms: string[] = [];
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });
  const qemuPid = async (vm: string): Promise<number> =>
    Number((await readFile(`/run/libvirt/qemu/${vm}.pid`, 'utf8')).trim());

  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => {
    await adapter.close();
    for (const vm of vms) await purge(vm);
    await images.remove();
  });

  async function defineVm(tag: string): Promise<string> {
    const vm = itName(tag);
    vms.push(vm);
    await adapter.define(smallSpec(vm, await emptyDisk(images.dir, vm)));
    return vm;
  }

  it('a QEMU killed with SIGKILL is seen through libvirt’s events as a crash and started again', async () => {
    const vm = await defineVm('wd-kill');
    const w = watched(adapter, vm, { backoffMs: 200, pollMs: 0 });
    try {
      await w.session.start();
      const first = await qemuPid(vm);
      process.kill(first, 'SIGKILL');
      await until('the watchdog to restart the VM', () => w.steps().includes('restarted:1'), 180_000);
      expect(w.steps()).toEqual(['detected:event', 'scheduled:1', 'restart:1', 'restarted:1']);
      // libvirt 9.0 reports a SIGKILLed QEMU as "Stopped Failed" (domstate: shut off (crashed)).
      expect(w.seen.find((e) => e.type === 'watchdog.detected')?.data).toMatchObject({ vm, reason: 'Stopped Failed' });
      expect(w.transitions()).toEqual([
        'stopped>starting:start',
        'starting>running:start',
        'running>crashed:hypervisor',
        'crashed>starting:start',
        'starting>running:start',
      ]);
      expect(w.session.state).toBe('running');
      expect(await adapter.state(vm)).toBe('running');
      const second = await qemuPid(vm);
      expect(second).not.toBe(first);
      expect(alive(second)).toBe(true);
    } finally {
      await w.close();
      await adapter.stop(vm, { force: true }).catch(() => undefined);
    }
  }, 300_000);

  it('without the adapter’s events, polling finds the crash', async () => {
    const vm = await defineVm('wd-poll');
    const w = watched(withoutEvents(adapter), vm, { backoffMs: 200, pollMs: 500 });
    try {
      await w.session.start();
      process.kill(await qemuPid(vm), 'SIGKILL');
      await until('the watchdog to restart the VM', () => w.steps().includes('restarted:1'), 180_000);
      expect(w.steps()).toEqual(['detected:poll', 'scheduled:1', 'restart:1', 'restarted:1']);
      expect(w.transitions()).toContain('running>crashed:refresh');
      expect(await adapter.state(vm)).toBe('running');
    } finally {
      await w.close();
      await adapter.stop(vm, { force: true }).catch(() => undefined);
    }
  }, 300_000);
});

describe.skipIf(!privateGate.enabled)('the libvirt adapter when libvirtd goes away (a private libvirtd)', () => {
  let daemon: PrivateLibvirtd;
  let adapter: LibvirtAdapter;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    daemon = await privateLibvirtd();
    await daemon.start();
    adapter = new LibvirtAdapter({
      uri: daemon.uri,
      virtType: 'qemu',
      keepaliveMs: 500,
      reconnectMs: 250,
      maxReconnectMs: 1000,
    });
  }, 120_000);
  afterEach(async () => {
    for (const close of closers.splice(0)) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await adapter?.close();
    await daemon?.remove();
  }, 120_000);

  async function runningVm(tag: string, options: WatchdogOptions) {
    const vm = itName(tag);
    const disk = await emptyDisk(daemon.images, vm);
    await daemon.own(disk);
    await adapter.define(smallSpec(vm, disk));
    const w = watched(adapter, vm, options);
    closers.push(w.close);
    await w.session.start();
    return { vm, w, pid: await daemon.qemuPid(vm) };
  }

  it('reports libvirtd lost, answers with a retryable error meanwhile, and recovers with the VM still running', async () => {
    const { vm, w, pid } = await runningVm('wd-lvd', { backoffMs: 200, pollMs: 1000 });
    await daemon.kill();
    await until('hypervisor.lost', () => w.steps().includes('lost'));
    const err = await adapter.state(vm).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_HOST')).toBe(true);
    expect((err as TandemError).retryable).toBe(true);
    expect((err as TandemError).message).toMatch(/unreachable|Cannot connect/);
    expect((err as TandemError).message).toMatch(/Start libvirtd/);
    // QEMU does not depend on libvirtd: the VM runs on, and the session says so.
    expect(alive(pid)).toBe(true);
    expect(w.session.state).toBe('running');

    await daemon.start();
    await until('hypervisor.restored', () => w.steps().some((s) => s.startsWith('restored')));
    expect(w.steps()).toEqual(['lost', 'restored:running']);
    const lost = w.seen.find((e) => e.type === 'hypervisor.lost');
    expect(lost?.data).toMatchObject({ adapter: 'libvirt', vm });
    // The state was read again after the return ("refresh"), not assumed.
    expect(await adapter.state(vm)).toBe('running');
    expect(await daemon.qemuPid(vm)).toBe(pid);
    expect(alive(pid)).toBe(true);
    expect(w.steps().some((s) => s.startsWith('restart'))).toBe(false);
  }, 300_000);

  it('a VM that died while libvirtd was away is found crashed on its return and restarted', async () => {
    const { vm, w, pid } = await runningVm('wd-lvd-crash', { backoffMs: 200, pollMs: 1000 });
    await daemon.kill();
    await until('hypervisor.lost', () => w.steps().includes('lost'));
    process.kill(pid, 'SIGKILL');
    await until('QEMU to be gone', () => !alive(pid));
    await daemon.start();
    await until('the watchdog to restart the VM', () => w.steps().includes('restarted:1'), 180_000);
    const steps = w.steps();
    // libvirtd notices the dead QEMU in a thread of its own at start-up. Usually that is done when
    // it first answers, and the re-read after the return finds the VM crashed (`reconnect`); if
    // not, the re-read still sees it running and libvirt's event (or the next poll) reports the
    // crash a moment later. Either way: one loss, one return, one detection, one restart.
    expect(steps[0]).toBe('lost');
    expect(steps.filter((x) => x.startsWith('restored:'))).toHaveLength(1);
    const detected = steps.filter((x) => x.startsWith('detected:'));
    expect(detected).toHaveLength(1);
    expect(['detected:reconnect', 'detected:event', 'detected:poll']).toContain(detected[0]);
    if (detected[0] === 'detected:reconnect') {
      expect(steps.indexOf('restored:crashed')).toBe(steps.indexOf('detected:reconnect') - 1);
    }
    const order = [detected[0]!, 'scheduled:1', 'restart:1', 'restarted:1'].map((x) => steps.indexOf(x));
    expect(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!))).toBe(true);
    expect(steps.at(-1)).toBe('restarted:1');
    expect(await adapter.state(vm)).toBe('running');
    expect(await daemon.qemuPid(vm)).not.toBe(pid);
  }, 300_000);
});
