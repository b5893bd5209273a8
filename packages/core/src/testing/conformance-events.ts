// The suite's checks of what happens behind the adapter's back: a killed hypervisor, a guest
// that powers itself off, and what watch() reports (and does not report).
import type { HypervisorEvent, VmState } from '../adapter/types.js';
import type { SuiteContext } from './conformance.js';
import { check, equal, type TestKit } from './conformance-kit.js';
import { needsAcpiGuest, needsGuestPowerOff, needsKill } from './conformance-lifecycle.js';

/** Collects watch() events for one VM, when the adapter has watch(). */
class EventLog {
  readonly events: HypervisorEvent[] = [];
  readonly #off: () => void;
  constructor(t: TestKit, vm: string) {
    this.#off = t.adapter.watch?.((e) => void (e.vm === vm && this.events.push(e))) ?? (() => undefined);
  }
  close(): void {
    this.#off();
  }
}

/** Polls (a real hypervisor reports on its own schedule) until `done` or the deadline. */
async function until(done: () => Promise<boolean> | boolean, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function registerEventChecks(ctx: SuiteContext): void {
  const { check: test, options } = ctx;
  const skip = options.skip ?? {};
  const waitMs = options.acpiStopTimeoutMs ?? 30_000;
  const settleMs = options.eventSettleMs ?? 500;

  const settlesIn = async (t: TestKit, vm: string, state: VmState, what: string): Promise<void> => {
    let last: VmState | undefined;
    await until(async () => (last = await t.adapter.state(vm)) === state, waitMs);
    equal(last, state, what);
  };

  const reported = async (log: EventLog, state: VmState, what: string): Promise<void> => {
    const seen = await until(() => log.events.some((e) => e.state === state), waitMs);
    check(
      seen,
      `${what}: watch() did not report ${state} (it reported: ${log.events.map((e) => `${e.state} (${e.reason})`).join(', ') || 'nothing'})`,
    );
  };

  test(
    'a killed hypervisor process leaves the VM crashed, watch() reports it, and it starts again',
    async (t) => {
      const vm = await t.define();
      await t.adapter.start(vm);
      const log = new EventLog(t, vm);
      try {
        await t.hooks.killHypervisor!(vm);
        await settlesIn(t, vm, 'crashed', 'state after the hypervisor process was killed');
        if (t.adapter.watch) await reported(log, 'crashed', 'after the hypervisor process was killed');
      } finally {
        log.close();
      }
      await t.adapter.start(vm);
      equal(await t.adapter.state(vm), 'running', 'state after starting a crashed VM');
      await t.adapter.stop(vm, { force: true });
    },
    { needs: needsKill },
  );

  test(
    'a guest that powers itself off leaves the VM stopped (not crashed), and watch() reports it',
    async (t) => {
      const guest = t.hooks.acpiGuest!;
      const vm = await t.define((n) => guest.vmSpec(n));
      await t.adapter.start(vm);
      await guest.ready?.(vm);
      const log = new EventLog(t, vm);
      try {
        await t.hooks.guestPowerOff!(vm);
        await settlesIn(t, vm, 'stopped', 'state after the guest powered itself off');
        if (t.adapter.watch) await reported(log, 'stopped', 'after the guest powered itself off');
      } finally {
        log.close();
      }
    },
    { needs: (t) => needsAcpiGuest(t) ?? needsGuestPowerOff(t) },
  );

  test(
    "watch() does not report the results of the adapter's own calls",
    async (t) => {
      const vm = await t.define();
      const log = new EventLog(t, vm);
      try {
        await t.adapter.start(vm);
        await t.adapter.suspend(vm);
        await t.adapter.resume(vm);
        await t.adapter.stop(vm, { force: true });
        // Events of a real hypervisor arrive on their own schedule: give them a moment.
        await new Promise((resolve) => setTimeout(resolve, settleMs));
      } finally {
        log.close();
      }
      check(
        log.events.length === 0,
        `watch() reported the adapter's own calls: ${log.events.map((e) => `${e.state} (${e.reason})`).join(', ')}`,
      );
    },
    {
      off: skip.watch ? 'skip.watch' : undefined,
      needs: (t) => (typeof t.adapter.watch === 'function' ? null : 'the adapter has no watch()'),
    },
  );
}
