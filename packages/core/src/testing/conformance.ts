import { randomBytes } from 'node:crypto';
import { buildSnapshotTree } from '../adapter/snapshot-tree.js';
import type { HypervisorAdapter, SnapshotInfo, VmSpec, VmState } from '../adapter/types.js';
import { TandemError } from '../errors.js';

/** The `it` of vitest, mocha, node:test or jest. */
export type ConformanceIt = (name: string, fn: () => Promise<void>, timeout?: number) => unknown;

/** What the factory gives the suite for one test. */
export interface ConformanceSubject {
  readonly adapter: HypervisorAdapter;
  /** A definable VM spec with this name (small: a few MiB of RAM and an empty disk are enough). */
  vmSpec(name: string): VmSpec | Promise<VmSpec>;
  /** Called after each test, after the suite has destroyed its VMs. */
  cleanup?(): Promise<void>;
}

/** Switches for what an adapter lacks, and limits for slow hypervisors. */
export interface ConformanceOptions {
  skip?: {
    /** No snapshots at all (otherwise taken from `capabilities.snapshots`). */
    snapshots?: boolean;
    /** No snapshots of running VMs (otherwise from `capabilities.snapshots.live`). */
    liveSnapshots?: boolean;
    /** No save/restore (otherwise from `capabilities.suspend.save`). */
    save?: boolean;
    /** No deletion of a snapshot with its children (otherwise from capabilities). */
    deleteWithChildren?: boolean;
    /**
     * No deletion (without `children`) of a snapshot that has more than one child: VirtualBox
     * refuses it, and keeps a single root.
     */
    deleteWithSeveralChildren?: boolean;
    /** No graceful stop test (for example a guest with no OS cannot honour ACPI). */
    gracefulStop?: boolean;
  };
  /** Per-test timeout in ms (default 60 s). */
  timeoutMs?: number;
  /** Graceful stop timeout used by the suite (default 2 s; the VM is then forced off). */
  gracefulStopTimeoutMs?: number;
  /** VM name prefix (default `tandem-conf`). */
  prefix?: string;
}

/**
 * The suite every adapter runs: every legal transition, the illegal ones, snapshot trees
 * (revert to a non-current snapshot, delete with and without children), unknown VMs and
 * concurrent calls.
 *
 * @example
 * ```ts
 * import { it } from 'vitest';
 * import { adapterConformanceSuite, MockAdapter } from '@tandem/core/testing';
 *
 * adapterConformanceSuite(it, async () => ({
 *   adapter: new MockAdapter(),
 *   vmSpec: (name) => ({ name, memoryMiB: 64, cpus: 1, disks: [], network: { mode: 'none' }, graphics: { kind: 'none' }, osFamily: 'other' }),
 * }));
 * ```
 */
export function adapterConformanceSuite(
  it: ConformanceIt,
  factory: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = {},
): void {
  const timeout = options.timeoutMs ?? 60_000;
  const prefix = options.prefix ?? 'tandem-conf';
  const graceMs = options.gracefulStopTimeoutMs ?? 2_000;

  const test = (
    name: string,
    body: (t: TestKit) => Promise<void>,
    when: (a: HypervisorAdapter) => boolean = () => true,
  ): void => {
    it(
      name,
      async () => {
        const subject = await factory();
        const kit = new TestKit(subject, prefix);
        try {
          if (!when(subject.adapter)) return;
          await body(kit);
        } finally {
          await kit.dispose();
        }
      },
      timeout,
    );
  };

  const hasSnapshots = (a: HypervisorAdapter): boolean =>
    !options.skip?.snapshots && a.capabilities.snapshots !== false && a.snapshots !== undefined;
  const hasLive = (a: HypervisorAdapter): boolean =>
    hasSnapshots(a) &&
    !options.skip?.liveSnapshots &&
    a.capabilities.snapshots !== false &&
    a.capabilities.snapshots.live;
  const hasSave = (a: HypervisorAdapter): boolean =>
    !options.skip?.save && a.capabilities.suspend.save && !!a.save && !!a.restore;
  const hasDeleteChildren = (a: HypervisorAdapter): boolean =>
    hasSnapshots(a) &&
    !options.skip?.deleteWithChildren &&
    a.capabilities.snapshots !== false &&
    a.capabilities.snapshots.deleteWithChildren;

  test('probe reports a usable hypervisor with host facts', async ({ adapter }) => {
    const probe = await adapter.probe();
    if (!probe.usable) throw new Error(`probe says unusable: ${probe.reason}`);
    check(probe.host.memoryMiB > 0, `host memory ${probe.host.memoryMiB}`);
    check(probe.host.cpus > 0, `host cpus ${probe.host.cpus}`);
    check(probe.hypervisorVersion.length > 0, 'hypervisor version is empty');
  });

  test('define lists the VM as stopped; defining the same name again is a conflict', async (t) => {
    const vm = await t.define();
    const listed = (await t.adapter.list()).find((v) => v.name === vm);
    check(listed !== undefined, `list() does not include ${vm}`);
    equal(listed?.state, 'stopped', 'state in list()');
    equal(await t.adapter.state(vm), 'stopped', 'state()');
    await rejects(t.adapter.define(await t.subject.vmSpec(vm)), 'TANDEM_CONFLICT', 'define an existing name');
  });

  test('lifecycle: start, suspend, resume, stop (forced), start again, stop (graceful, then forced)', async (t) => {
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
    if (!options.skip?.gracefulStop) {
      await t.adapter.stop(vm, { timeoutMs: graceMs, forceAfterTimeout: true });
      equal(await t.adapter.state(vm), 'stopped', 'after graceful stop');
    }
  });

  test(
    'save and restore',
    async (t) => {
      const vm = await t.define();
      await t.adapter.start(vm);
      await t.adapter.save!(vm);
      equal(await t.adapter.state(vm), 'saved', 'after save');
      await rejects(t.adapter.suspend(vm), 'TANDEM_INVALID_STATE', 'suspend a saved VM');
      await t.adapter.restore!(vm);
      equal(await t.adapter.state(vm), 'running', 'after restore');
    },
    hasSave,
  );

  test('illegal transitions are InvalidStateError naming the current state', async (t) => {
    const vm = await t.define();
    await rejectsInState(t.adapter.suspend(vm), 'stopped', 'suspend a stopped VM');
    await rejectsInState(t.adapter.resume(vm), 'stopped', 'resume a stopped VM');
    await rejectsInState(t.adapter.stop(vm, { force: true }), 'stopped', 'stop a stopped VM');
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
    await rejects(a.stop(ghost, { force: true }), 'TANDEM_NOT_FOUND', 'stop');
    await rejects(a.suspend(ghost), 'TANDEM_NOT_FOUND', 'suspend');
    await rejects(a.resume(ghost), 'TANDEM_NOT_FOUND', 'resume');
    await rejects(a.destroy(ghost), 'TANDEM_NOT_FOUND', 'destroy');
    if (hasSnapshots(a)) {
      await rejects(a.snapshots!.list(ghost), 'TANDEM_NOT_FOUND', 'snapshots.list');
      await rejects(a.snapshots!.create(ghost, { name: 'x' }), 'TANDEM_NOT_FOUND', 'snapshots.create');
    }
  });

  test(
    'snapshot tree: revert to a non-current snapshot and branch from it',
    async (t) => {
      const vm = await t.define();
      const s = t.adapter.snapshots!;
      const a = await s.create(vm, { name: 'a', description: 'first' });
      const b = await s.create(vm, { name: 'b' });
      equal(b.parentId, a.id, 'b.parentId');
      await s.revert(vm, a.id);
      const c = await s.create(vm, { name: 'c' });
      equal(c.parentId, a.id, 'c.parentId after reverting to a');
      let list = await s.list(vm);
      equal(list.length, 3, 'snapshot count');
      equal(currentOf(list)?.id, c.id, 'current snapshot');
      const tree = buildSnapshotTree(list);
      equal(tree.length, 1, 'one root');
      equal(
        tree[0]?.children
          .map((n) => n.name)
          .sort()
          .join(','),
        'b,c',
        'children of a',
      );
      await s.revert(vm, b.id);
      list = await s.list(vm);
      equal(currentOf(list)?.id, b.id, 'current after reverting to b');
      await rejects(s.revert(vm, 'no-such-snapshot'), 'TANDEM_NOT_FOUND', 'revert to an unknown snapshot');
    },
    hasSnapshots,
  );

  test(
    "snapshot delete without children: the child moves up to the deleted one's parent",
    async (t) => {
      const vm = await t.define();
      const s = t.adapter.snapshots!;
      const x = await s.create(vm, { name: 'x' });
      const y = await s.create(vm, { name: 'y' });
      const z = await s.create(vm, { name: 'z' });
      await s.delete(vm, y.id);
      const list = await s.list(vm);
      equal(
        list
          .map((n) => n.name)
          .sort()
          .join(','),
        'x,z',
        'after deleting y',
      );
      equal(list.find((n) => n.id === z.id)?.parentId, x.id, 'z.parentId after deleting its parent');
      equal(currentOf(list)?.id, z.id, 'current snapshot after deleting another');
      await rejects(s.delete(vm, y.id), 'TANDEM_NOT_FOUND', 'delete a deleted snapshot');
    },
    hasSnapshots,
  );

  test(
    'snapshot delete of a snapshot with several children: they become children of its parent',
    async (t) => {
      const vm = await t.define();
      const s = t.adapter.snapshots!;
      const a = await s.create(vm, { name: 'a' });
      await s.create(vm, { name: 'b' });
      await s.revert(vm, a.id);
      await s.create(vm, { name: 'c' });
      await s.delete(vm, a.id);
      const list = await s.list(vm);
      equal(
        list
          .map((x) => x.name)
          .sort()
          .join(','),
        'b,c',
        'after deleting a',
      );
      check(
        list.every((x) => x.parentId === null),
        'children of a became roots',
      );
    },
    (a) => hasSnapshots(a) && !options.skip?.deleteWithSeveralChildren,
  );

  test(
    'snapshot delete with children removes the subtree',
    async (t) => {
      const vm = await t.define();
      const s = t.adapter.snapshots!;
      const root = await s.create(vm, { name: 'root' });
      const mid = await s.create(vm, { name: 'mid' });
      await s.create(vm, { name: 'leaf' });
      await s.revert(vm, root.id);
      await s.create(vm, { name: 'other' });
      await s.delete(vm, mid.id, { children: true });
      const names = (await s.list(vm)).map((x) => x.name).sort();
      equal(names.join(','), 'other,root', 'remaining snapshots');
    },
    hasDeleteChildren,
  );

  test(
    'a snapshot of a stopped VM reverts a running VM to stopped',
    async (t) => {
      const vm = await t.define();
      const s = t.adapter.snapshots!;
      const snap = await s.create(vm, { name: 'cold' });
      equal(snap.vmState, 'stopped', 'vmState of a snapshot of a stopped VM');
      await t.adapter.start(vm);
      await s.revert(vm, snap.id);
      equal(await t.adapter.state(vm), 'stopped', 'state after revert');
    },
    hasSnapshots,
  );

  test(
    'live snapshot: taken running, reverted from stopped, comes back running',
    async (t) => {
      const vm = await t.define();
      const s = t.adapter.snapshots!;
      await t.adapter.start(vm);
      const snap = await s.create(vm, { name: 'live' });
      equal(snap.vmState, 'running', 'vmState of a live snapshot');
      await t.adapter.stop(vm, { force: true });
      await s.revert(vm, snap.id);
      equal(await t.adapter.state(vm), 'running', 'state after revert');
      await t.adapter.stop(vm, { force: true });
    },
    hasLive,
  );

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
      `suspend, resume, state in one burst: ${describe(ops)}`,
    );
    equal(await t.adapter.state(vm), 'running', 'state after suspend+resume burst');
    if (hasLive(t.adapter)) {
      const snaps = await Promise.all(['p', 'q', 'r'].map((name) => t.adapter.snapshots!.create(vm, { name })));
      equal(new Set(snaps.map((x) => x.id)).size, 3, 'three concurrent snapshots, three ids');
      equal((await t.adapter.snapshots!.list(vm)).length, 3, 'snapshots listed');
    }
    await t.adapter.stop(vm, { force: true });
  });

  test('destroy removes the VM, running or not', async (t) => {
    const vm = await t.define();
    await t.adapter.start(vm);
    await t.adapter.destroy(vm);
    t.forget(vm);
    check(!(await t.adapter.list()).some((v) => v.name === vm), 'destroyed VM still listed');
    await rejects(t.adapter.state(vm), 'TANDEM_NOT_FOUND', 'state of a destroyed VM');
  });
}

class TestKit {
  readonly #vms = new Set<string>();
  constructor(
    readonly subject: ConformanceSubject,
    readonly prefix: string,
  ) {}

  get adapter(): HypervisorAdapter {
    return this.subject.adapter;
  }

  async define(): Promise<string> {
    const name = `${this.prefix}-${randomBytes(4).toString('hex')}`;
    await this.adapter.define(await this.subject.vmSpec(name));
    this.#vms.add(name);
    return name;
  }

  forget(vm: string): void {
    this.#vms.delete(vm);
  }

  async dispose(): Promise<void> {
    for (const vm of this.#vms) {
      try {
        await this.adapter.destroy(vm, { deleteDisks: true });
      } catch {
        // best effort: the test's own failure matters more
      }
    }
    await this.subject.cleanup?.();
    await this.adapter.close?.();
  }
}

function currentOf(list: readonly SnapshotInfo[]): SnapshotInfo | undefined {
  return list.find((s) => s.current);
}

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`conformance: ${what}`);
}

function equal<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected) throw new Error(`conformance: ${what}: expected ${String(expected)}, got ${String(actual)}`);
}

async function rejects(p: Promise<unknown>, code: string, what: string): Promise<TandemError> {
  try {
    await p;
  } catch (err) {
    if (TandemError.is(err, code)) return err;
    throw new Error(`conformance: ${what}: expected a TandemError ${code}, got ${describeError(err)}`, { cause: err });
  }
  throw new Error(`conformance: ${what}: expected a TandemError ${code}, but it succeeded`);
}

async function rejectsInState(p: Promise<unknown>, state: VmState, what: string): Promise<void> {
  const err = await rejects(p, 'TANDEM_INVALID_STATE', what);
  equal(err.details['current'], state, `${what}: details.current`);
}

function describeError(err: unknown): string {
  if (TandemError.is(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function describe(results: PromiseSettledResult<unknown>[]): string {
  return results.map((r) => (r.status === 'fulfilled' ? 'ok' : describeError(r.reason))).join(', ');
}
