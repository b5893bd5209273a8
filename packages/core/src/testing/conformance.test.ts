// The conformance suite against deliberately broken copies of the mock adapter, one bug each:
// the suite must fail each of them, in the check that names the bug.
import { describe, expect, it } from 'vitest';
import type { HypervisorAdapter, HypervisorEvent, SnapshotOps } from '../adapter/types.js';
import { NotFoundError, TimeoutError } from '../errors.js';
import {
  brokenCopy,
  failed,
  QUICK,
  requireVm,
  runSuite,
  type CheckOutcome,
} from './conformance-collector.test-helper.js';
import type { ConformanceSubject } from './conformance-types.js';
import { MockAdapter } from './mock-adapter.js';
import { mockConformanceSubject, mockVmSpec } from './mock-conformance.js';

type Break = (inner: MockAdapter, leaked: Set<string>) => Partial<HypervisorAdapter>;

/** A subject over a broken copy of the mock, with every hook the healthy mock offers. */
function brokenSubject(breakIt: Break): () => Promise<ConformanceSubject> {
  return async () => {
    const inner = new MockAdapter();
    const leaked = new Set<string>();
    const healthy = mockConformanceSubject({}, inner);
    return {
      ...healthy,
      adapter: brokenCopy(inner, breakIt(inner, leaked)),
      hooks: {
        ...healthy.hooks,
        // A process the broken destroy left behind is still in the (simulated) process table.
        hypervisorProcesses: async (vm) => inner.processCount(vm) + (leaked.has(vm) ? 1 : 0),
      },
    };
  };
}

const snapshotsWith = (inner: MockAdapter, patch: Partial<SnapshotOps>): SnapshotOps => ({
  create: (vm, o) => inner.snapshots.create(vm, o),
  list: (vm) => inner.snapshots.list(vm),
  revert: (vm, s, o) => inner.snapshots.revert(vm, s, o),
  delete: (vm, s, o) => inner.snapshots.delete(vm, s, o),
  ...patch,
});

const BUGS: readonly { bug: string; check: RegExp; hint: RegExp; breakIt: Break }[] = [
  {
    bug: 'a graceful stop that never asks the guest (powers off at once)',
    check: /graceful stop of a guest that ignores it/,
    hint: /expected a TandemError TANDEM_TIMEOUT, but it succeeded/,
    breakIt: (inner) => ({ stop: (vm) => inner.stop(vm, { force: true }) }),
  },
  {
    bug: 'forceAfterTimeout: false ignored',
    check: /graceful stop of a guest that ignores it/,
    hint: /TANDEM_TIMEOUT, but it succeeded/,
    breakIt: (inner) => ({ stop: (vm, o) => inner.stop(vm, { ...o, forceAfterTimeout: true }) }),
  },
  {
    bug: 'a graceful stop of a paused VM that does not resume it first',
    check: /graceful stop of a paused VM resumes it first/,
    hint: /did not shut down/,
    breakIt: (inner) => ({
      stop: async (vm, o) => {
        if (!o?.force && (await inner.state(vm)) === 'paused') {
          await new Promise((resolve) => setTimeout(resolve, 1));
          if (o?.forceAfterTimeout === false) throw new TimeoutError(`VM "${vm}" did not shut down`);
        }
        return inner.stop(vm, { ...o, force: true });
      },
    }),
  },
  {
    bug: 'capabilities.suspend.save true without save()/restore()',
    check: /capabilities match the members/,
    hint: /suspend\.save needs save\(\); suspend\.save needs restore\(\)/,
    breakIt: () => ({ save: undefined, restore: undefined }),
  },
  {
    bug: 'revert by snapshot name broken (only ids work)',
    check: /revert to a non-current snapshot by id and by name/,
    hint: /revert by the name "second" to "second" \(id snap-\d+\) failed: TANDEM_NOT_FOUND/,
    breakIt: (inner) => ({
      snapshots: snapshotsWith(inner, {
        revert: async (vm, s, o) => {
          if (!(await inner.snapshots.list(vm)).some((x) => x.id === s))
            throw new NotFoundError(`VM "${vm}" has no snapshot with the id "${s}".`);
          return inner.snapshots.revert(vm, s, o);
        },
      }),
    }),
  },
  {
    bug: "reverting a stopped VM that does not restore the disk's contents",
    check: /restores the disk's contents/,
    hint: /disk marker after reverting a stopped VM to "cold" \(id snap-\d+\): expected before, got after/,
    breakIt: (inner) => ({
      snapshots: snapshotsWith(inner, {
        revert: async (vm, s, o) => {
          if ((await inner.state(vm)) !== 'stopped') return inner.snapshots.revert(vm, s, o);
          const disk = inner.readDisk(vm);
          await inner.snapshots.revert(vm, s, o);
          if ((await inner.state(vm)) === 'stopped') inner.writeDisk(vm, disk);
        },
      }),
    }),
  },
  {
    bug: 'delete with children that leaves grandchildren behind',
    check: /delete with children removes the whole subtree, three levels deep/,
    hint: /expected snapshots \[other, root\], got \[.*"tip" \(id snap-\d+\)/,
    breakIt: (inner) => ({
      snapshots: snapshotsWith(inner, {
        delete: async (vm, s, o) => {
          if (!o?.children) return inner.snapshots.delete(vm, s, o);
          const list = await inner.snapshots.list(vm);
          const target = list.find((x) => x.id === s || x.name === s);
          for (const child of list.filter((x) => x.parentId === target?.id)) await inner.snapshots.delete(vm, child.id);
          return inner.snapshots.delete(vm, s);
        },
      }),
    }),
  },
  {
    bug: "destroy that leaves the hypervisor's process running",
    check: /destroy ends the hypervisor's processes/,
    hint: /hypervisor processes left after destroy of a running VM: expected 0, got 1/,
    breakIt: (inner, leaked) => ({
      destroy: async (vm, o) => {
        if (inner.processCount(vm) > 0) leaked.add(vm);
        return inner.destroy(vm, o);
      },
    }),
  },
  {
    bug: 'a snapshot of a paused VM taken as running (resumes it for the snapshot)',
    check: /snapshot of a paused VM/,
    hint: /vmState of "held" \(id snap-\d+\), taken of a paused VM: expected paused, got running/,
    breakIt: (inner) => ({
      snapshots: snapshotsWith(inner, {
        create: async (vm, o) => {
          if ((await inner.state(vm)) !== 'paused') return inner.snapshots.create(vm, o);
          await inner.resume(vm);
          const taken = await inner.snapshots.create(vm, o);
          await inner.suspend(vm);
          return taken;
        },
      }),
    }),
  },
  {
    bug: 'snapshots.revert and snapshots.delete of an unknown VM succeed silently',
    check: /unknown VMs are NotFoundError for every operation/,
    hint: /snapshots\.revert: expected a TandemError TANDEM_NOT_FOUND, but it succeeded/,
    breakIt: (inner) => ({
      snapshots: snapshotsWith(inner, {
        revert: async (vm, s, o) => {
          if ((await inner.list()).some((v) => v.name === vm)) await inner.snapshots.revert(vm, s, o);
        },
        delete: async (vm, s, o) => {
          if ((await inner.list()).some((v) => v.name === vm)) await inner.snapshots.delete(vm, s, o);
        },
      }),
    }),
  },
  {
    bug: 'the current snapshot left on a deleted snapshot',
    check: /delete of the current snapshot: current moves to its parent/,
    hint: /expected current snapshot "root" \(id snap-\d+\), got \(none\)/,
    breakIt: (inner) => ({
      snapshots: snapshotsWith(inner, {
        list: async (vm) => {
          await requireVm(inner, vm);
          const list = await inner.snapshots.list(vm);
          const hasChild = (id: string): boolean => list.some((x) => x.parentId === id);
          // Only a snapshot whose child was deleted loses its current mark, as a buggy adapter would.
          return list.map((x) => (x.current && !hasChild(x.id) && x.name === 'root' ? { ...x, current: false } : x));
        },
      }),
    }),
  },
  {
    bug: 'a killed hypervisor process reported as stopped instead of crashed',
    check: /a killed hypervisor process leaves the VM crashed/,
    hint: /state after the hypervisor process was killed: expected crashed, got stopped/,
    breakIt: (inner) => ({
      state: async (vm) => {
        const state = await inner.state(vm);
        return state === 'crashed' ? 'stopped' : state;
      },
    }),
  },
  {
    bug: 'watch() that never reports what the hypervisor did on its own',
    check: /a guest that powers itself off leaves the VM stopped/,
    hint: /watch\(\) did not report stopped \(it reported: nothing\)/,
    breakIt: () => ({ watch: () => () => undefined }),
  },
  {
    bug: "watch() that reports the adapter's own calls",
    check: /watch\(\) does not report the results of the adapter's own calls/,
    hint: /watch\(\) reported the adapter's own calls: running \(started\)/,
    breakIt: (inner) => {
      const listeners = new Set<(e: HypervisorEvent) => void>();
      return {
        watch: (l) => {
          listeners.add(l);
          const off = inner.watch(l);
          return () => {
            listeners.delete(l);
            off();
          };
        },
        start: async (vm, o) => {
          await inner.start(vm, o);
          for (const l of listeners) l({ vm, state: 'running', reason: 'started', at: Date.now() });
        },
      };
    },
  },
];

const byName = (outcomes: readonly CheckOutcome[], check: RegExp): CheckOutcome | undefined =>
  outcomes.find((o) => check.test(o.name));

describe('the conformance suite against the healthy mock, with every hook', () => {
  it('passes every check and skips none', async () => {
    const outcomes = await runSuite(async () => mockConformanceSubject());
    expect(failed(outcomes).map((o) => `${o.name}: ${o.message}`)).toEqual([]);
    expect(outcomes.filter((o) => o.status === 'skipped').map((o) => o.name)).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(25);
  });
});

describe('the conformance suite catches each bug in a broken copy of the mock', () => {
  for (const { bug, check, hint, breakIt } of BUGS) {
    it(bug, async () => {
      const outcomes = await runSuite(brokenSubject(breakIt));
      const target = byName(outcomes, check);
      expect(target, `a check matching ${String(check)}`).toBeDefined();
      expect(target?.status, `${target?.name}: ${target?.message}`).toBe('failed');
      expect(target?.message).toMatch(hint);
    });
  }

  it('a healthy copy passes the same checks (the copies differ only by their bug)', async () => {
    const outcomes = await runSuite(brokenSubject(() => ({})));
    expect(failed(outcomes).map((o) => `${o.name}: ${o.message}`)).toEqual([]);
  });
});

describe('the conformance suite reports honestly', () => {
  it('reports checks the options switch off as skipped, with the switch named, never as passed', async () => {
    const outcomes = await runSuite(async () => mockConformanceSubject(), {
      ...QUICK,
      skip: { snapshots: true, gracefulStop: true },
    });
    const snapshotChecks = outcomes.filter((o) => /snapshot/.test(o.name) && !/concurrent/.test(o.name));
    expect(snapshotChecks.length).toBeGreaterThanOrEqual(10);
    for (const o of snapshotChecks) {
      expect(o.status, o.name).toBe('skipped');
      expect(o.message).toContain('skip.snapshots');
    }
    const graceful = outcomes.filter((o) => /graceful stop/.test(o.name));
    expect(graceful.length).toBe(4);
    for (const o of graceful)
      expect(`${o.status}: ${o.message}`).toMatch(/^skipped: .*switched off: skip.gracefulStop/);
  });

  it('reports checks a missing hook rules out as skipped, naming the hook', async () => {
    const outcomes = await runSuite(async () => ({ adapter: new MockAdapter(), vmSpec: (n) => mockVmSpec(n) }));
    expect(failed(outcomes)).toEqual([]);
    const skipped = outcomes.filter((o) => o.status === 'skipped');
    expect(skipped.map((o) => o.message).sort()).toEqual([
      expect.stringContaining('hooks.acpiGuest'),
      expect.stringContaining('hooks.acpiGuest'),
      expect.stringContaining('hooks.acpiGuest'),
      expect.stringContaining('hooks.deafGuest'),
      expect.stringContaining('hooks.diskMarker'),
      expect.stringContaining('hooks.hypervisorProcesses'),
      expect.stringContaining('hooks.killHypervisor'),
    ]);
  });

  it('reports checks the capabilities rule out as skipped, naming the capability', async () => {
    const outcomes = await runSuite(async () => ({
      ...mockConformanceSubject({ capabilities: { snapshots: false, suspend: { pause: true, save: false } } }),
    }));
    expect(failed(outcomes)).toEqual([]);
    expect(byName(outcomes, /save and restore/)).toMatchObject({
      status: 'skipped',
      message: expect.stringContaining('capabilities.suspend.save is false'),
    });
    expect(byName(outcomes, /live snapshot/)).toMatchObject({
      status: 'skipped',
      message: expect.stringContaining('capabilities.snapshots is false'),
    });
  });

  it('says "probe() must never throw; return a reason" when probe throws', async () => {
    const outcomes = await runSuite(
      brokenSubject(() => ({ probe: () => Promise.reject(new Error('no hypervisor socket')) })),
    );
    const probe = byName(outcomes, /probe/);
    expect(probe?.status).toBe('failed');
    expect(probe?.message).toContain('no hypervisor socket');
    expect(probe?.message).toContain('probe() must never throw; return a reason');
  });

  it("keeps the test's own failure when the subject's cleanup fails too, and reports both", async () => {
    const outcomes = await runSuite(async () => ({
      ...mockConformanceSubject(),
      adapter: brokenCopy(new MockAdapter(), { probe: () => Promise.reject(new Error('probe exploded')) }),
      cleanup: () => Promise.reject(new Error('could not remove the image directory')),
    }));
    const probe = byName(outcomes, /probe/);
    expect(probe?.status).toBe('failed');
    expect(probe?.message).toMatch(/^conformance: probe\(\) threw .*probe exploded/);
    expect(probe?.message).toContain('could not remove the image directory');
    expect(probe?.error).toBeInstanceOf(AggregateError);
    expect((probe?.error as AggregateError).errors).toHaveLength(2);
    // A passing check whose cleanup fails fails with the cleanup's error.
    expect(byName(outcomes, /capabilities match/)?.message).toContain('could not remove the image directory');
  });
});
