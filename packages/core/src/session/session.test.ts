import { describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../clock.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { TandemError } from '../errors.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { IdleLock } from './idle-lock.js';
import { Watchdog } from './watchdog.js';
import { SessionManager } from './manager.js';

const YAML = `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware:
    memory: { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 }
  usage: { idleLock: PT15M, lockOnHostSleep: true }
`;

function setup(options: { hostMemoryMiB?: number } = {}) {
  const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
  const adapter = new MockAdapter({ clock, hostMemoryMiB: options.hostMemoryMiB ?? 4096 });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const manager = new SessionManager({ adapter, events });
  const workspace = parseWorkspace(YAML);
  return { clock, adapter, events, seen, manager, workspace };
}

const transitions = (seen: AnyTandemEvent[]) =>
  seen
    .filter((e) => e.type === 'session.transition')
    .map((e) => (e.type === 'session.transition' ? `${e.data.from}>${e.data.to}` : ''));

describe('Session', () => {
  it('defines the VM with memory sized by the host RAM', async () => {
    const small = setup({ hostMemoryMiB: 1024 });
    await small.manager.open(small.workspace);
    expect((await small.adapter.list())[0]?.memoryMiB).toBe(512); // 256 clamped up to min
    const big = setup({ hostMemoryMiB: 65536 });
    await big.manager.open(big.workspace);
    expect((await big.adapter.list())[0]?.memoryMiB).toBe(2048); // 16384 clamped down to max
    const mid = setup({ hostMemoryMiB: 6000 });
    await mid.manager.open(mid.workspace);
    expect((await mid.adapter.list())[0]?.memoryMiB).toBe(1500);
  });

  it('walks the whole lifecycle and emits every transition', async () => {
    const { manager, workspace, seen } = setup();
    const s = await manager.open(workspace);
    expect(s.state).toBe('stopped');
    await s.start();
    await s.lock();
    await s.unlock();
    const snap = await s.snapshot('clean');
    await s.suspend();
    await s.resume();
    await s.revert(snap.id);
    await s.stop({ force: true });
    expect(transitions(seen)).toEqual([
      'stopped>starting',
      'starting>running',
      'running>locked',
      'locked>running',
      'running>suspended',
      'suspended>running',
      'running>stopping',
      'stopping>stopped',
    ]);
    expect(seen.every((e) => e.workspace === 'erp' && e.session === s.id)).toBe(true);
    expect(seen.map((e) => e.type)).toContain('snapshot.created');
    expect(seen.map((e) => e.type)).toContain('snapshot.reverted');
  });

  it('rejects illegal transitions with InvalidStateError naming the current state', async () => {
    const { manager, workspace } = setup();
    const s = await manager.open(workspace);
    const cases: [() => Promise<unknown>, string][] = [
      [() => s.resume(), 'stopped'],
      [() => s.suspend(), 'stopped'],
      [() => s.lock(), 'stopped'],
      [() => s.unlock(), 'stopped'],
      [() => s.stop(), 'stopped'],
    ];
    for (const [op, state] of cases) {
      const err = await op().catch((e: unknown) => e);
      expect(TandemError.is(err, 'TANDEM_INVALID_STATE')).toBe(true);
      expect((err as TandemError).details['current']).toBe(state);
      expect((err as Error).message).toContain(`it is ${state}`);
    }
    await s.start();
    await expect(s.start()).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE', details: { current: 'running' } });
  });

  it('serializes concurrent calls: each sees the state the previous one left', async () => {
    const { manager, workspace, adapter } = setup();
    const s = await manager.open(workspace);
    const results = await Promise.allSettled([s.start(), s.start(), s.suspend(), s.resume(), s.lock()]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(s.state).toBe('locked');
    expect(adapter.calls.filter((c) => c.op === 'start').length).toBe(1);
  });

  it('never lets two sessions drive one VM', async () => {
    const { manager, workspace } = setup();
    const first = await manager.open(workspace);
    await expect(manager.open(workspace)).rejects.toMatchObject({ code: 'TANDEM_CONFLICT' });
    const both = await Promise.allSettled([1, 2].map(() => manager.open(workspace)));
    expect(both.every((r) => r.status === 'rejected')).toBe(true);
    await manager.close(first);
    const second = await manager.open(workspace);
    expect(second.id).not.toBe(first.id);
  });

  it('attaches to an existing VM in the state it is in', async () => {
    const { manager, workspace, adapter } = setup();
    const s = await manager.open(workspace);
    await s.start();
    await s.suspend();
    await manager.close(s);
    const again = await new SessionManager({ adapter }).open(workspace);
    expect(again.state).toBe('suspended');
  });

  it('goes back to the previous state when the hypervisor fails, and reports the error', async () => {
    const { manager, workspace, adapter, seen } = setup();
    const s = await manager.open(workspace);
    adapter.faults.failNext('start');
    await expect(s.start()).rejects.toMatchObject({ code: 'TANDEM_HYPERVISOR' });
    expect(s.state).toBe('stopped');
    expect(seen.find((e) => e.type === 'session.error')?.data).toMatchObject({
      operation: 'start',
      code: 'TANDEM_HYPERVISOR',
    });
    await s.start();
    expect(s.state).toBe('running');
  });

  it('follows the hypervisor when the VM crashes or the guest shuts down', async () => {
    const { manager, workspace, adapter, seen } = setup();
    const s = await manager.open(workspace);
    await s.start();
    adapter.crash(s.vm);
    expect(s.state).toBe('crashed');
    expect(seen.some((e) => e.type === 'vm.state' && e.data.state === 'crashed')).toBe(true);
    await s.start();
    adapter.guestShutdown(s.vm);
    expect(s.state).toBe('stopped');
  });

  it('resumes a session that was locked when suspended as locked', async () => {
    const { manager, workspace } = setup();
    const s = await manager.open(workspace);
    await s.start();
    await s.lock();
    await s.suspend({ mode: 'save' });
    await s.resume();
    expect(s.state).toBe('locked');
    await expect(s.unlock(async () => false)).rejects.toMatchObject({ code: 'TANDEM_AUTH' });
    expect(s.state).toBe('locked');
    await s.unlock(async () => true);
    expect(s.state).toBe('running');
  });

  it('locks after the idle period on the virtual clock, and on host sleep', async () => {
    const { manager, workspace, clock } = setup();
    const s = await manager.open(workspace);
    await s.start();
    const idle = new IdleLock(s, { clock });
    idle.start();
    await clock.waitForSleepers();
    await clock.advance(10 * 60_000);
    idle.activity();
    await clock.advance(10 * 60_000);
    expect(s.state).toBe('running'); // 10 minutes since the last activity
    await clock.advance(5 * 60_000);
    expect(s.state).toBe('locked');
    idle.stop();
    await s.unlock();
    await idle.hostWillSleep();
    expect(s.state).toBe('locked');
  });

  it('refuses a live snapshot when the adapter cannot take one', async () => {
    const clock = new VirtualClock();
    const adapter = new MockAdapter({ clock, capabilities: { snapshots: { live: false, deleteWithChildren: true } } });
    const s = await new SessionManager({ adapter }).open(parseWorkspace(YAML));
    await s.start();
    await expect(s.snapshot('x')).rejects.toMatchObject({ code: 'TANDEM_UNSUPPORTED' });
    await s.stop({ force: true });
    await s.snapshot('x');
    expect((await s.snapshots()).map((x) => x.name)).toEqual(['x']);
  });
});

describe('session end, revertible workspaces and the watchdog', () => {
  const withUsage = (usage: string) =>
    parseWorkspace(YAML.replace('usage: { idleLock: PT15M, lockOnHostSleep: true }', usage));

  it('ends as usage.onSessionEnd says', async () => {
    const { adapter } = setup();
    const manager = new SessionManager({ adapter });
    const snap = await manager.open(withUsage('usage: { onSessionEnd: snapshot }'), { vmName: 'a' });
    await snap.start();
    expect(await snap.end({ timeoutMs: 1000 })).toBe('snapshot');
    expect(snap.state).toBe('stopped');
    expect((await snap.snapshots()).map((s) => s.name)).toEqual([expect.stringMatching(/^session-end-/)]);

    const susp = await manager.open(withUsage('usage: { onSessionEnd: suspend }'), { vmName: 'b' });
    await susp.start();
    expect(await susp.end()).toBe('suspend');
    expect(await adapter.state('b')).toBe('saved');

    const shut = await manager.open(withUsage('usage: { onSessionEnd: shutdown }'), { vmName: 'c' });
    await shut.start();
    expect(await shut.end({ timeoutMs: 1000 })).toBe('shutdown');
    expect(shut.state).toBe('stopped');
  });

  it('returns a revertible workspace to its never-booted baseline at every end', async () => {
    const { adapter } = setup();
    const manager = new SessionManager({ adapter });
    const s = await manager.open(withUsage('usage: { mode: revertible }'));
    expect((await s.snapshots()).map((x) => x.name)).toEqual(['tandem-baseline']);
    await s.start();
    await s.snapshot('user-work');
    expect(await s.end()).toBe('revert');
    expect(s.state).toBe('stopped');
    const current = (await s.snapshots()).find((x) => x.current);
    expect(current?.name).toBe('tandem-baseline');
  });

  it('refuses a revertible workspace on an adapter without snapshots', async () => {
    const adapter = new MockAdapter({ capabilities: { snapshots: false } });
    await expect(new SessionManager({ adapter }).open(withUsage('usage: { mode: revertible }'))).rejects.toMatchObject({
      code: 'TANDEM_UNSUPPORTED',
      message: expect.stringMatching(/revertible, which needs snapshots/),
    });
    expect(await adapter.list()).toEqual([]);
  });

  it('restarts a crashed VM with backoff, and gives up after maxRestarts in the window', async () => {
    const { manager, workspace, adapter, clock, events, seen } = setup();
    const s = await manager.open(workspace);
    await s.start();
    const dog = new Watchdog(s, { clock, events, maxRestarts: 2, backoffMs: 1000 });
    dog.start();
    for (const wait of [1000, 2000]) {
      adapter.crash(s.vm);
      expect(s.state).toBe('crashed');
      await clock.waitForSleepers();
      await clock.advance(wait - 1);
      expect(s.state).toBe('crashed');
      await clock.advance(1);
      await vi.waitFor(() => expect(s.state).toBe('running'));
    }
    adapter.crash(s.vm);
    await clock.advance(60_000);
    expect(s.state).toBe('crashed'); // budget spent: left for the user to see
    expect(
      seen.filter((e) => e.type === 'watchdog.restart').map((e) => (e.data as { attempt: number }).attempt),
    ).toEqual([1, 2]);
    dog.stop();
  });
});
