import { describe, expect, it, vi } from 'vitest';
import type { HypervisorConnectionEvent, HypervisorEvent } from '../adapter/types.js';
import { VirtualClock } from '../clock.js';
import { HostError, LeaseError, PolicyDeniedError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { SessionManager } from './manager.js';
import { Watchdog, type WatchdogOptions } from './watchdog.js';

const WORKSPACE = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware:
    memory: { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 }
`);

/** A mock hypervisor whose events can be silenced and whose connection can be cut. */
class FlakyAdapter extends MockAdapter {
  quiet = false;
  #connection = new Set<(e: HypervisorConnectionEvent) => void>();
  #down = false;

  override watch(listener: (event: HypervisorEvent) => void): () => void {
    return super.watch((e) => {
      if (!this.quiet) listener(e);
    });
  }

  watchConnection(listener: (event: HypervisorConnectionEvent) => void): () => void {
    this.#connection.add(listener);
    return () => this.#connection.delete(listener);
  }

  override async state(vm: string): ReturnType<MockAdapter['state']> {
    if (this.#down) throw new HostError('the hypervisor is not reachable', { retryable: true });
    return super.state(vm);
  }

  cut(at: number): void {
    this.#down = true;
    for (const l of this.#connection) l({ state: 'lost', reason: 'Connection refused', at });
  }

  mend(at: number): void {
    this.#down = false;
    for (const l of this.#connection) l({ state: 'restored', reason: 'reconnected', at });
  }
}

async function setup(options: WatchdogOptions = {}) {
  const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
  const adapter = new FlakyAdapter({ clock });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const session = await new SessionManager({ adapter, events, clock }).open(WORKSPACE);
  await session.start();
  const dog = new Watchdog(session, { clock, events, pollMs: 0, ...options });
  dog.start();
  seen.length = 0;
  /** The watchdog's and hypervisor events, in words. */
  const steps = (): string[] =>
    seen.flatMap((e) => {
      switch (e.type) {
        case 'watchdog.detected':
          return [`detected:${e.data.source}`];
        case 'watchdog.scheduled':
          return [`scheduled:${e.data.attempt}:${e.data.delayMs}`];
        case 'watchdog.restart':
          return [`restart:${e.data.attempt}`];
        case 'watchdog.restarted':
          return [`restarted:${e.data.attempt}`];
        case 'watchdog.failed':
          return [`failed:${e.data.attempt}:${e.data.code}`];
        case 'watchdog.gave-up':
          return [`gave-up:${e.data.restarts}`];
        case 'hypervisor.lost':
          return ['lost'];
        case 'hypervisor.restored':
          return [`restored:${e.data.state}`];
        default:
          return [];
      }
    });
  /** Lets the watchdog reach its backoff, then moves time to the end of it. */
  const elapse = async (ms: number): Promise<void> => {
    await clock.waitForSleepers();
    await clock.advance(ms);
  };
  return { clock, adapter, events, seen, session, dog, steps, elapse };
}

describe('Watchdog', () => {
  it('restarts a crash the adapter reports, after the backoff, with every step an event', async () => {
    const { adapter, session, dog, steps, elapse, seen } = await setup({ backoffMs: 1000 });
    adapter.crash(session.vm, 'Stopped Failed');
    expect(session.state).toBe('crashed');
    await elapse(999);
    expect(session.state).toBe('crashed');
    await elapse(1);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps()).toEqual(['detected:event', 'scheduled:1:1000', 'restart:1', 'restarted:1']);
    expect(seen.find((e) => e.type === 'watchdog.detected')).toMatchObject({
      workspace: 'erp',
      session: session.id,
      data: { vm: session.vm, reason: 'Stopped Failed' },
    });
    dog.stop();
  });

  it('doubles the backoff, gives up after maxRestarts in the window, and counts only the window', async () => {
    const { adapter, session, dog, steps, elapse, clock } = await setup({
      backoffMs: 1000,
      maxRestarts: 2,
      windowMs: 10_000,
    });
    const t0 = clock.now();
    for (const wait of [1000, 2000]) {
      adapter.crash(session.vm);
      await elapse(wait);
      await vi.waitFor(() => expect(session.state).toBe('running'));
    }
    adapter.crash(session.vm);
    await clock.advance(60_000);
    expect(session.state).toBe('crashed'); // the budget is spent: left for the user to see
    expect(steps().slice(-2)).toEqual(['detected:event', 'gave-up:2']);

    // The restarts happened at t0+1000 and t0+3000. At t0+11500 only the first has left the window.
    await clock.advance(t0 + 11_500 - clock.now());
    await session.start();
    const before = steps().length;
    adapter.crash(session.vm);
    await elapse(2000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps().slice(before)).toEqual(['detected:event', 'scheduled:2:2000', 'restart:2', 'restarted:2']);
    // Now (t0+13500) the restart at t0+3000 has left the window as well.
    adapter.crash(session.vm);
    expect(steps().slice(-1)).toEqual(['scheduled:2:2000']);
    dog.stop();
  });

  it('caps the backoff at maxBackoffMs', async () => {
    const { adapter, session, dog, steps, elapse } = await setup({
      backoffMs: 1000,
      maxBackoffMs: 1500,
      maxRestarts: 5,
    });
    for (const wait of [1000, 1500, 1500]) {
      adapter.crash(session.vm);
      await elapse(wait);
      await vi.waitFor(() => expect(session.state).toBe('running'));
    }
    expect(steps().filter((s) => s.startsWith('scheduled'))).toEqual([
      'scheduled:1:1000',
      'scheduled:2:1500',
      'scheduled:3:1500',
    ]);
    dog.stop();
  });

  it('tries again after a failed restart, and a failure counts against the budget', async () => {
    const { adapter, session, dog, steps, elapse } = await setup({ backoffMs: 1000, maxRestarts: 2 });
    adapter.faults.failNext('start', 1);
    adapter.crash(session.vm);
    await elapse(1000);
    await vi.waitFor(() => expect(steps()).toContain('scheduled:2:2000'));
    expect(session.state).toBe('crashed');
    await elapse(2000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps()).toEqual([
      'detected:event',
      'scheduled:1:1000',
      'restart:1',
      'failed:1:TANDEM_HYPERVISOR',
      'scheduled:2:2000',
      'restart:2',
      'restarted:2',
    ]);
    dog.stop();
  });

  it('gives up at once when the usage policy refuses the restart', async () => {
    const { adapter, session, dog, steps, elapse } = await setup({ backoffMs: 1000 });
    adapter.faults.failNext('start', 1, () => new PolicyDeniedError('The workspace expired.'));
    adapter.crash(session.vm);
    await elapse(1000);
    await vi.waitFor(() => expect(steps()).toContain('gave-up:1'));
    expect(steps()).toEqual([
      'detected:event',
      'scheduled:1:1000',
      'restart:1',
      'failed:1:TANDEM_POLICY_DENIED',
      'gave-up:1',
    ]);
    expect(session.state).toBe('crashed');
    dog.stop();
  });

  it('finds a crash the adapter did not report by polling', async () => {
    const { adapter, session, dog, steps, clock } = await setup({ backoffMs: 1000, pollMs: 5000 });
    adapter.quiet = true;
    adapter.crash(session.vm);
    expect(session.state).toBe('running'); // nobody told the session
    await clock.advance(5000);
    await vi.waitFor(() => expect(session.state).toBe('crashed'));
    await clock.waitForSleepers(2); // the poll and the backoff
    await clock.advance(1000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps()).toEqual(['detected:poll', 'scheduled:1:1000', 'restart:1', 'restarted:1']);
    dog.stop();
  });

  it('does not poll with pollMs 0, nor a session that is not running', async () => {
    const { adapter, session, dog, clock } = await setup({ pollMs: 0 });
    expect(clock.pending).toBe(0);
    dog.stop();
    const polled = new Watchdog(session, { clock, pollMs: 1000 });
    await session.stop({ force: true });
    polled.start();
    const calls = (): number => adapter.calls.filter((c) => c.op === 'state').length;
    const before = calls();
    await clock.advance(5000);
    expect(calls()).toBe(before);
    polled.stop();
    expect(clock.pending).toBe(0);
  });

  it('reports a lost hypervisor, pauses polling, and reads the state again when it returns', async () => {
    const { adapter, session, dog, steps, clock, elapse } = await setup({ backoffMs: 1000, pollMs: 5000 });
    adapter.cut(clock.now());
    expect(dog.hypervisorLost).toBe(true);
    const stateCalls = (): number => adapter.calls.filter((c) => c.op === 'state').length;
    const before = stateCalls();
    await clock.advance(20_000);
    expect(stateCalls()).toBe(before); // no polling against a hypervisor that is not there
    expect(session.state).toBe('running'); // lost is not crashed: the VM may well run on
    adapter.mend(clock.now());
    await vi.waitFor(() => expect(steps()).toEqual(['lost', 'restored:running']));
    expect(dog.hypervisorLost).toBe(false);

    // The VM died while the hypervisor was away: only the re-read after the return finds it.
    adapter.cut(clock.now());
    adapter.quiet = true;
    adapter.crash(session.vm);
    adapter.mend(clock.now() + 3000);
    await vi.waitFor(() => expect(steps()).toContain('scheduled:1:1000'));
    await elapse(1000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps().slice(2)).toEqual([
      'lost',
      'restored:crashed',
      'detected:reconnect',
      'scheduled:1:1000',
      'restart:1',
      'restarted:1',
    ]);
    dog.stop();
  });

  it('waits for a lost hypervisor to return before it restarts, instead of spending the budget', async () => {
    const { adapter, session, dog, steps, clock, elapse } = await setup({ backoffMs: 1000, maxRestarts: 1 });
    adapter.crash(session.vm);
    adapter.cut(clock.now());
    await elapse(1000);
    await clock.advance(60_000);
    expect(steps()).toEqual(['detected:event', 'scheduled:1:1000', 'lost']);
    expect(session.state).toBe('crashed');
    adapter.mend(clock.now());
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps().slice(3)).toEqual(['restored:crashed', 'restart:1', 'restarted:1']);
    dog.stop();
  });

  it('stop() cancels a restart waiting for its backoff', async () => {
    const { adapter, session, dog, steps, clock } = await setup({ backoffMs: 1000 });
    adapter.crash(session.vm);
    await clock.waitForSleepers();
    dog.stop();
    await clock.advance(10_000);
    expect(session.state).toBe('crashed');
    expect(steps()).toEqual(['detected:event', 'scheduled:1:1000']);
    expect(dog.running).toBe(false);
  });

  it('handles a session that was already crashed when it started', async () => {
    const { adapter, session, dog, steps, clock, events } = await setup({ backoffMs: 1000 });
    dog.stop();
    adapter.crash(session.vm);
    const late = new Watchdog(session, { clock, events, pollMs: 0, backoffMs: 1000 });
    late.start();
    await clock.waitForSleepers();
    await clock.advance(1000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(steps()).toEqual(['detected:check', 'scheduled:1:1000', 'restart:1', 'restarted:1']);
    late.stop();
  });

  it('the documented example (docs/sessions.md, Watchdog)', async () => {
    const lines: string[] = [];
    const console = { log: (...a: unknown[]) => lines.push(a.join(' ')) };
    // --- as in the docs ---
    const workspace = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
`);
    const clock = new VirtualClock();
    const adapter = new MockAdapter({ clock });
    const events = new EventBus({ clock });
    events.on('*', (e) => {
      if (e.type.startsWith('watchdog.')) console.log(e.type, JSON.stringify(e.data));
    });
    const session = await new SessionManager({ adapter, events, clock }).open(workspace);
    const watchdog = new Watchdog(session, { events, maxRestarts: 3, windowMs: 600_000, backoffMs: 2_000 });
    watchdog.start();
    await session.start();

    adapter.crash(session.vm); // the VM's process dies
    await clock.advance(2_000); // the backoff
    // --- end ---
    await vi.waitFor(() => expect(lines).toHaveLength(4));
    const vm = JSON.stringify(session.vm);
    expect(lines).toEqual([
      `watchdog.detected {"vm":${vm},"reason":"the VM process was killed","source":"event"}`,
      `watchdog.scheduled {"vm":${vm},"attempt":1,"delayMs":2000}`,
      `watchdog.restart {"vm":${vm},"attempt":1,"reason":"the VM process was killed"}`,
      `watchdog.restarted {"vm":${vm},"attempt":1}`,
    ]);
    watchdog.stop();
  });
});

describe('Watchdog restarts of an encrypted VM', () => {
  const ENCRYPTED = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2, encryption: { keyId: erp-key } }
  hardware: { memory: { fixedMiB: 512 } }
`);
  const KEY = Buffer.alloc(32, 7);

  /** What the host agent hands out: the key in a fresh buffer, zeroed and forgotten on dispose. */
  function release() {
    const handed: Buffer[] = [];
    const disposed: Buffer[] = [];
    return {
      handed,
      disposed,
      next: () => {
        const key = Buffer.from(KEY);
        const diskKeys = new Map<string, Uint8Array>([['erp-key', key]]);
        handed.push(key);
        return {
          diskKeys,
          [Symbol.dispose]: () => {
            key.fill(0);
            diskKeys.clear();
            disposed.push(key);
          },
        };
      },
    };
  }

  /** A session started the agent's way: the keys it was opened with are wiped once the start has them. */
  async function encryptedSetup(options: WatchdogOptions) {
    const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
    const adapter = new MockAdapter({ clock });
    const events = new EventBus({ clock });
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const first = release().next();
    const session = await new SessionManager({ adapter, events, clock }).open(ENCRYPTED, {
      diskKeys: first.diskKeys,
    });
    await session.start();
    first[Symbol.dispose]();
    const dog = new Watchdog(session, { clock, events, pollMs: 0, backoffMs: 1000, ...options });
    dog.start();
    const watchdogEvents = () => seen.filter((e) => e.type.startsWith('watchdog.'));
    const elapse = async (ms: number): Promise<void> => {
      await clock.waitForSleepers();
      await clock.advance(ms);
    };
    return { adapter, session, dog, watchdogEvents, elapse };
  }

  it('releases the key again for the restart, hands it to the start and wipes it after', async () => {
    const keys = release();
    let released = 0;
    const { adapter, session, dog, watchdogEvents, elapse } = await encryptedSetup({
      diskKeys: async () => {
        released++;
        return keys.next();
      },
    });
    adapter.crash(session.vm);
    await elapse(1000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(watchdogEvents().map((e) => e.type)).toEqual([
      'watchdog.detected',
      'watchdog.scheduled',
      'watchdog.restart',
      'watchdog.restarted',
    ]);
    expect(released).toBe(1);
    // The start had the key (the mock refuses an encrypted disk without it); now it is zeroed.
    expect(keys.disposed).toEqual(keys.handed);
    expect(keys.handed[0]!.every((b) => b === 0)).toBe(true);
    // A second crash releases it again: nothing was kept from the first restart.
    adapter.crash(session.vm);
    await elapse(2000);
    await vi.waitFor(() => expect(released).toBe(2));
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(keys.disposed).toHaveLength(2);
    dog.stop();
  });

  it('without a key release the restart fails: the keys the session was opened with are wiped', async () => {
    const { adapter, session, dog, watchdogEvents, elapse } = await encryptedSetup({ maxRestarts: 1 });
    adapter.crash(session.vm);
    await elapse(1000);
    await vi.waitFor(() => expect(watchdogEvents().map((e) => e.type)).toContain('watchdog.gave-up'));
    expect(watchdogEvents().find((e) => e.type === 'watchdog.failed')?.data).toMatchObject({
      code: 'TANDEM_INVALID_INPUT',
      message: expect.stringMatching(/encrypted; pass its key/),
    });
    expect(session.state).toBe('crashed');
    dog.stop();
  });

  it('a refused release (the lease ended) fails the restart naming the lease, and the watchdog gives up', async () => {
    const { adapter, session, dog, watchdogEvents, elapse } = await encryptedSetup({
      maxRestarts: 5,
      diskKeys: async () => {
        throw new LeaseError(
          'The offline lease in /state/envelopes/erp.envelope ended at 2020-01-15T00:00:00.000Z. Connect to get a new envelope.',
        );
      },
    });
    adapter.crash(session.vm);
    await elapse(1000);
    await vi.waitFor(() => expect(watchdogEvents().map((e) => e.type)).toContain('watchdog.gave-up'));
    const steps = watchdogEvents();
    expect(steps.map((e) => e.type)).toEqual([
      'watchdog.detected',
      'watchdog.scheduled',
      'watchdog.restart',
      'watchdog.failed',
      'watchdog.gave-up',
    ]);
    expect(steps[3]?.data).toMatchObject({
      attempt: 1,
      code: 'TANDEM_LEASE',
      retryable: false,
      message: expect.stringMatching(
        /^The disk key was not released for the restart.*offline lease.*ended at 2020-01-15/,
      ),
    });
    expect(steps[4]?.data).toMatchObject({
      reason: expect.stringMatching(/^the disk key was refused for the restart: The offline lease/),
    });
    // Nothing was started: the VM stays crashed for the user to see.
    expect(adapter.calls.filter((c) => c.op === 'start')).toHaveLength(1);
    expect(session.state).toBe('crashed');
    dog.stop();
  });

  it('a release that fails for a passing reason is tried again with backoff', async () => {
    const keys = release();
    let tries = 0;
    const { adapter, session, dog, watchdogEvents, elapse } = await encryptedSetup({
      diskKeys: async () => {
        if (++tries === 1) throw new HostError('the key store is busy', { retryable: true });
        return keys.next();
      },
    });
    adapter.crash(session.vm);
    await elapse(1000);
    await vi.waitFor(() => expect(watchdogEvents().map((e) => e.type)).toContain('watchdog.failed'));
    await elapse(2000);
    await vi.waitFor(() => expect(session.state).toBe('running'));
    expect(watchdogEvents().find((e) => e.type === 'watchdog.failed')?.data).toMatchObject({
      code: 'TANDEM_HOST',
      retryable: true,
    });
    expect(watchdogEvents().map((e) => e.type)).not.toContain('watchdog.gave-up');
    expect(keys.disposed).toEqual(keys.handed);
    dog.stop();
  });
});
