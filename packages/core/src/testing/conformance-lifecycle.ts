// The suite's checks of probe, capabilities, the VM lifecycle, stops, save/restore, unknown VMs,
// concurrency, destroy and watch().
import { randomBytes } from 'node:crypto';
import { capabilityMismatches } from '../adapter/capability-check.js';
import type { ProbeResult } from '../adapter/types.js';
import { TandemError } from '../errors.js';
import type { SuiteContext } from './conformance.js';
import type { ConformanceHooks } from './conformance-types.js';
import {
  check,
  describeError,
  describeSettled,
  equal,
  rejects,
  rejectsInState,
  snapshotOps,
  type TestKit,
} from './conformance-kit.js';

const needsHook =
  (hook: keyof ConformanceHooks, what: string) =>
  (t: TestKit): string | null =>
    t.hooks[hook] === undefined ? `the subject has no hooks.${hook} (${what}); see docs/adapter-authors.md` : null;

export const needsAcpiGuest = needsHook('acpiGuest', 'a VM spec whose guest powers off when asked');
export const needsDeafGuest = needsHook('deafGuest', 'a VM spec whose guest ignores a graceful stop');
export const needsDiskMarker = needsHook('diskMarker', "a way to write and read a marker on a VM's disk");
export const needsProcesses = needsHook('hypervisorProcesses', "a count of the hypervisor's processes for a VM");
export const needsKill = needsHook('killHypervisor', "a way to kill the hypervisor's process for a VM");
export const needsGuestPowerOff = needsHook('guestPowerOff', 'a way to make a guest power itself off');

export function registerLifecycleChecks(ctx: SuiteContext): void {
  const { check: test, options, prefix, graceMs } = ctx;
  const skip = options.skip ?? {};
  const acpiMs = options.acpiStopTimeoutMs ?? 30_000;

  test('probe reports a usable hypervisor with host facts, and never throws', async ({ adapter }) => {
    let probe: ProbeResult;
    try {
      probe = await adapter.probe();
    } catch (err) {
      throw new Error(`conformance: probe() threw ${describeError(err)}: probe() must never throw; return a reason`, {
        cause: err,
      });
    }
    equal(probe.adapter, adapter.name, 'probe().adapter (the adapter name)');
    if (!probe.usable) throw new Error(`conformance: probe says unusable: ${probe.reason}`);
    check(probe.host.memoryMiB > 0, `host memory ${probe.host.memoryMiB}`);
    check(probe.host.cpus > 0, `host cpus ${probe.host.cpus}`);
    check(probe.hypervisorVersion.length > 0, 'hypervisor version is empty');
  });

  test('capabilities match the members the adapter has', async ({ adapter }) => {
    const missing = capabilityMismatches(adapter);
    check(
      missing.length === 0,
      `the capabilities claim what the adapter lacks: ${missing.map((m) => `${m.capability} needs ${m.member}`).join('; ')}`,
    );
  });

  test('define lists the VM as stopped; defining the same name again is a conflict', async (t) => {
    const vm = await t.define();
    const listed = (await t.adapter.list()).find((v) => v.name === vm);
    check(listed !== undefined, `list() does not include ${vm}`);
    equal(listed.state, 'stopped', 'state in list()');
    equal(await t.adapter.state(vm), 'stopped', 'state()');
    await rejects(t.adapter.define(await t.subject.vmSpec(vm)), 'TANDEM_CONFLICT', 'define an existing name');
  });

  test('lifecycle: start, suspend, resume, forced stop, start again, forced stop', async (t) => {
    const vm = await t.define();
    await t.adapter.start(vm);
    equal(await t.adapter.state(vm), 'running', 'after start');
    await t.adapter.suspend(vm);
    equal(await t.adapter.state(vm), 'paused', 'after suspend');
    await t.adapter.resume(vm);
    equal(await t.adapter.state(vm), 'running', 'after resume');
    await t.adapter.stop(vm, { force: true });
    equal(await t.adapter.state(vm), 'stopped', 'after forced stop');
    await t.adapter.start(vm);
    equal(await t.adapter.state(vm), 'running', 'after second start');
    await t.adapter.suspend(vm);
    await t.adapter.stop(vm, { force: true });
    equal(await t.adapter.state(vm), 'stopped', 'after forced stop of a paused VM');
  });

  const gracefulOff = skip.gracefulStop ? 'skip.gracefulStop' : undefined;
  test(
    'graceful stop with forceAfterTimeout ends stopped, whatever the guest does',
    async (t) => {
      const vm = await t.define();
      await t.adapter.start(vm);
      await t.adapter.stop(vm, { timeoutMs: graceMs, forceAfterTimeout: true });
      equal(await t.adapter.state(vm), 'stopped', 'after graceful stop');
    },
    { off: gracefulOff },
  );

  test(
    'graceful stop asks the guest: a guest that honours it is stopped without forcing',
    async (t) => {
      const guest = t.hooks.acpiGuest!;
      const vm = await t.define((n) => guest.vmSpec(n));
      await t.adapter.start(vm);
      await guest.ready?.(vm);
      await t.adapter.stop(vm, { timeoutMs: acpiMs, forceAfterTimeout: false });
      equal(await t.adapter.state(vm), 'stopped', 'after a graceful stop the guest honoured');
    },
    { off: gracefulOff, needs: needsAcpiGuest },
  );

  test(
    'graceful stop of a paused VM resumes it first, so the guest can honour it',
    async (t) => {
      const guest = t.hooks.acpiGuest!;
      const vm = await t.define((n) => guest.vmSpec(n));
      await t.adapter.start(vm);
      await guest.ready?.(vm);
      await t.adapter.suspend(vm);
      await t.adapter.stop(vm, { timeoutMs: acpiMs, forceAfterTimeout: false });
      equal(await t.adapter.state(vm), 'stopped', 'after a graceful stop of a paused VM');
    },
    { off: gracefulOff, needs: needsAcpiGuest },
  );

  test(
    'graceful stop of a guest that ignores it: TimeoutError with forceAfterTimeout false, forced off by default',
    async (t) => {
      const guest = t.hooks.deafGuest!;
      const vm = await t.define((n) => guest.vmSpec(n));
      await t.adapter.start(vm);
      await guest.ready?.(vm);
      await rejects(
        t.adapter.stop(vm, { timeoutMs: graceMs, forceAfterTimeout: false }),
        'TANDEM_TIMEOUT',
        'graceful stop (forceAfterTimeout: false) of a guest that ignores it',
      );
      equal(await t.adapter.state(vm), 'running', 'after a graceful stop timed out without forcing');
      await t.adapter.stop(vm, { timeoutMs: graceMs });
      equal(
        await t.adapter.state(vm),
        'stopped',
        'after a graceful stop that timed out (forceAfterTimeout by default)',
      );
    },
    { off: gracefulOff, needs: needsDeafGuest },
  );

  test(
    'save and restore',
    async (t) => {
      check(
        typeof t.adapter.save === 'function' && typeof t.adapter.restore === 'function',
        'capabilities.suspend.save is true but the adapter has no save() or restore()',
      );
      const vm = await t.define();
      await t.adapter.start(vm);
      await t.adapter.save(vm);
      equal(await t.adapter.state(vm), 'saved', 'after save');
      await rejectsInState(t.adapter.suspend(vm), 'saved', 'suspend a saved VM');
      await t.adapter.restore(vm);
      equal(await t.adapter.state(vm), 'running', 'after restore');
      await t.adapter.suspend(vm);
      await t.adapter.save(vm);
      equal(await t.adapter.state(vm), 'saved', 'after save of a paused VM');
      await t.adapter.start(vm);
      check(['running', 'paused'].includes(await t.adapter.state(vm)), 'start of a saved VM brings it back');
      await t.adapter.stop(vm, { force: true });
    },
    { needs: (t) => ctx.saveOff(t.adapter) },
  );

  test('illegal transitions are InvalidStateError naming the current state', async (t) => {
    const vm = await t.define();
    await rejectsInState(t.adapter.suspend(vm), 'stopped', 'suspend a stopped VM');
    await rejectsInState(t.adapter.resume(vm), 'stopped', 'resume a stopped VM');
    await rejectsInState(t.adapter.stop(vm, { force: true }), 'stopped', 'stop a stopped VM');
    if (typeof t.adapter.restore === 'function' && ctx.saveOff(t.adapter) === null)
      await rejectsInState(t.adapter.restore(vm), 'stopped', 'restore a stopped VM');
    await t.adapter.start(vm);
    await rejectsInState(t.adapter.start(vm), 'running', 'start a running VM');
    await rejectsInState(t.adapter.resume(vm), 'running', 'resume a running VM');
    await t.adapter.suspend(vm);
    await rejectsInState(t.adapter.suspend(vm), 'paused', 'suspend a paused VM');
    await rejectsInState(t.adapter.start(vm), 'paused', 'start a paused VM');
    await t.adapter.stop(vm, { force: true });
  });

  test('unknown VMs are NotFoundError for every operation', async (t) => {
    const ghost = `${prefix}-ghost-${randomBytes(4).toString('hex')}`;
    const a = t.adapter;
    await rejects(a.state(ghost), 'TANDEM_NOT_FOUND', 'state');
    await rejects(a.start(ghost), 'TANDEM_NOT_FOUND', 'start');
    await rejects(a.stop(ghost, { force: true }), 'TANDEM_NOT_FOUND', 'stop (forced)');
    await rejects(a.stop(ghost, { timeoutMs: graceMs }), 'TANDEM_NOT_FOUND', 'stop (graceful)');
    await rejects(a.suspend(ghost), 'TANDEM_NOT_FOUND', 'suspend');
    await rejects(a.resume(ghost), 'TANDEM_NOT_FOUND', 'resume');
    await rejects(a.destroy(ghost), 'TANDEM_NOT_FOUND', 'destroy');
    if (ctx.saveOff(a) === null && a.save && a.restore) {
      await rejects(a.save(ghost), 'TANDEM_NOT_FOUND', 'save');
      await rejects(a.restore(ghost), 'TANDEM_NOT_FOUND', 'restore');
    }
    if (ctx.snapshotsOff(a) === null) {
      const s = snapshotOps(t);
      await rejects(s.list(ghost), 'TANDEM_NOT_FOUND', 'snapshots.list');
      await rejects(s.create(ghost, { name: 'x' }), 'TANDEM_NOT_FOUND', 'snapshots.create');
      await rejects(s.revert(ghost, 'x'), 'TANDEM_NOT_FOUND', 'snapshots.revert');
      await rejects(s.delete(ghost, 'x'), 'TANDEM_NOT_FOUND', 'snapshots.delete');
      await rejects(s.delete(ghost, 'x', { children: true }), 'TANDEM_NOT_FOUND', 'snapshots.delete with children');
    }
  });

  test('concurrent calls on one VM are serialized', async (t) => {
    const vm = await t.define();
    const results = await Promise.allSettled([t.adapter.start(vm), t.adapter.start(vm)]);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    equal(ok, 1, 'exactly one of two concurrent starts succeeds');
    const failed = results.find((r) => r.status === 'rejected');
    check(
      failed !== undefined && TandemError.is(failed.reason, 'TANDEM_INVALID_STATE'),
      'the other is InvalidStateError',
    );
    equal(await t.adapter.state(vm), 'running', 'state after concurrent starts');
    const ops = await Promise.allSettled([t.adapter.suspend(vm), t.adapter.resume(vm), t.adapter.state(vm)]);
    check(
      ops.every((r) => r.status === 'fulfilled'),
      `suspend, resume, state in one burst: ${describeSettled(ops)}`,
    );
    equal(await t.adapter.state(vm), 'running', 'state after suspend+resume burst');
    if (ctx.liveOff(t.adapter) === null) {
      const s = snapshotOps(t);
      const snaps = await Promise.all(['p', 'q', 'r'].map((name) => s.create(vm, { name })));
      equal(new Set(snaps.map((x) => x.id)).size, 3, 'three concurrent snapshots, three ids');
      equal((await s.list(vm)).length, 3, 'snapshots listed');
    }
    await t.adapter.stop(vm, { force: true });
  });

  test('destroy removes the VM, running, paused or stopped', async (t) => {
    for (const how of ['running', 'paused', 'stopped'] as const) {
      const vm = await t.define();
      if (how !== 'stopped') await t.adapter.start(vm);
      if (how === 'paused') await t.adapter.suspend(vm);
      await t.adapter.destroy(vm, { deleteDisks: true });
      t.forget(vm);
      check(!(await t.adapter.list()).some((v) => v.name === vm), `destroyed ${how} VM still listed`);
      await rejects(t.adapter.state(vm), 'TANDEM_NOT_FOUND', `state of a destroyed ${how} VM`);
    }
  });

  test(
    "destroy ends the hypervisor's processes for the VM",
    async (t) => {
      const count = (vm: string): Promise<number> => t.hooks.hypervisorProcesses!(vm);
      const vm = await t.define();
      await t.adapter.start(vm);
      const running = await count(vm);
      check(
        running > 0,
        `hooks.hypervisorProcesses says ${running} processes for a running VM: the hook cannot see them`,
      );
      await t.adapter.destroy(vm, { deleteDisks: true });
      t.forget(vm);
      equal(await count(vm), 0, 'hypervisor processes left after destroy of a running VM');
      const stopped = await t.define();
      await t.adapter.start(stopped);
      await t.adapter.stop(stopped, { force: true });
      equal(await count(stopped), 0, 'hypervisor processes left after a forced stop');
    },
    { needs: needsProcesses },
  );
}
