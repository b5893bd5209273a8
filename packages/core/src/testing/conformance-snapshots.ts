// The suite's snapshot checks: trees three levels deep, revert by id and by name, delete with
// and without children, where `current` goes, unique names, and the VM state and disk contents
// a revert brings back.
import { buildSnapshotTree } from '../adapter/snapshot-tree.js';
import { TandemError } from '../errors.js';
import type { SuiteContext } from './conformance.js';
import {
  check,
  describeError,
  equal,
  expectCurrent,
  expectNames,
  expectParent,
  rejects,
  snap,
  snapshotOps,
  step,
  type TestKit,
} from './conformance-kit.js';
import { needsDiskMarker } from './conformance-lifecycle.js';

export function registerSnapshotChecks(ctx: SuiteContext): void {
  const test = ctx.check;
  const skip = ctx.options.skip ?? {};
  const needsSnapshots = { needs: (t: TestKit) => ctx.snapshotsOff(t.adapter) };

  test(
    'snapshot tree: revert to a non-current snapshot by id and by name, and branch from it',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const a = await s.create(vm, { name: 'first', description: 'the first one' });
      const b = await s.create(vm, { name: 'second' });
      expectParent(await s.list(vm), b, a, 'after creating second');
      await s.revert(vm, a.id);
      expectCurrent(await s.list(vm), a, `after reverting to ${snap(a)} by id`);
      const c = await s.create(vm, { name: 'third' });
      let list = await s.list(vm);
      expectParent(list, c, a, `after reverting to ${snap(a)} and creating third`);
      equal(list.length, 3, 'snapshot count');
      expectCurrent(list, c, 'after creating third');
      const tree = buildSnapshotTree(list);
      equal(tree.length, 1, 'number of roots');
      equal(
        tree[0]?.children
          .map((n) => n.name)
          .sort()
          .join(','),
        'second,third',
        `children of ${snap(a)}`,
      );
      await step(`revert by the name "second" to ${snap(b)}`, s.revert(vm, 'second'));
      list = await s.list(vm);
      expectCurrent(list, b, 'after reverting by the name "second"');
      await rejects(s.revert(vm, 'no-such-snapshot'), 'TANDEM_NOT_FOUND', 'revert to an unknown snapshot');
      await rejects(s.delete(vm, 'no-such-snapshot'), 'TANDEM_NOT_FOUND', 'delete an unknown snapshot');
      await step(`delete by the name "third" of ${snap(c)}`, s.delete(vm, 'third'));
      expectNames(await s.list(vm), ['first', 'second'], 'after deleting by the name "third"');
    },
    needsSnapshots,
  );

  test(
    'snapshot tree: revert two levels down to a snapshot off the current branch, and branch there',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const root = await s.create(vm, { name: 'root' });
      const a = await s.create(vm, { name: 'a' });
      const b = await s.create(vm, { name: 'b' });
      const c = await s.create(vm, { name: 'c' });
      await step(`revert by the name "root" to ${snap(root)}`, s.revert(vm, 'root'));
      const side = await s.create(vm, { name: 'side' });
      expectCurrent(await s.list(vm), side, 'after branching at root');
      // b is two levels below root, on a branch the VM is not on.
      await s.revert(vm, b.id);
      expectCurrent(await s.list(vm), b, `after reverting to ${snap(b)}`);
      const d = await s.create(vm, { name: 'd' });
      const list = await s.list(vm);
      expectParent(list, a, root, 'a tree three levels deep');
      expectParent(list, b, a, 'a tree three levels deep');
      expectParent(list, c, b, 'a tree three levels deep');
      expectParent(list, side, root, 'a branch at root');
      expectParent(list, d, b, `a snapshot taken after reverting to ${snap(b)}`);
      expectCurrent(list, d, 'after creating d');
    },
    needsSnapshots,
  );

  test(
    "snapshot delete without children: the child moves up to the deleted one's parent",
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const x = await s.create(vm, { name: 'x' });
      const y = await s.create(vm, { name: 'y' });
      const z = await s.create(vm, { name: 'z' });
      await s.delete(vm, y.id);
      const list = await s.list(vm);
      expectNames(list, ['x', 'z'], `after deleting ${snap(y)}`);
      expectParent(list, z, x, `after deleting ${snap(y)}, its child`);
      expectCurrent(list, z, 'after deleting another snapshot');
      await rejects(s.delete(vm, y.id), 'TANDEM_NOT_FOUND', `delete ${snap(y)} again`);
    },
    needsSnapshots,
  );

  test(
    'snapshot delete of the current snapshot: current moves to its parent',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const root = await s.create(vm, { name: 'root' });
      const leaf = await s.create(vm, { name: 'leaf' });
      await s.delete(vm, leaf.id);
      const list = await s.list(vm);
      expectNames(list, ['root'], `after deleting ${snap(leaf)}`);
      expectCurrent(list, root, `after deleting the current snapshot ${snap(leaf)}`);
      const next = await s.create(vm, { name: 'next' });
      expectParent(await s.list(vm), next, root, 'a snapshot taken after deleting the current one');
    },
    needsSnapshots,
  );

  test(
    'snapshot delete of a snapshot with several children: they become children of its parent',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const a = await s.create(vm, { name: 'a' });
      const b = await s.create(vm, { name: 'b' });
      await s.revert(vm, a.id);
      const c = await s.create(vm, { name: 'c' });
      await s.delete(vm, a.id);
      const list = await s.list(vm);
      expectNames(list, ['b', 'c'], `after deleting ${snap(a)}`);
      expectParent(list, b, null, `after deleting ${snap(a)}, its child`);
      expectParent(list, c, null, `after deleting ${snap(a)}, its child`);
      expectCurrent(list, c, `after deleting ${snap(a)}`);
    },
    {
      off: skip.deleteWithSeveralChildren ? 'skip.deleteWithSeveralChildren' : undefined,
      ...needsSnapshots,
    },
  );

  test(
    'snapshot delete with children removes the whole subtree, three levels deep',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const root = await s.create(vm, { name: 'root' });
      const mid = await s.create(vm, { name: 'mid' });
      await s.create(vm, { name: 'leaf' });
      const tip = await s.create(vm, { name: 'tip' });
      await s.revert(vm, mid.id);
      await s.create(vm, { name: 'twig' });
      await s.revert(vm, root.id);
      const other = await s.create(vm, { name: 'other' });
      await s.delete(vm, mid.id, { children: true });
      const list = await s.list(vm);
      expectNames(list, ['root', 'other'], `after deleting ${snap(mid)} with its children`);
      expectCurrent(list, other, 'after deleting a subtree the VM is not on');
      await rejects(s.revert(vm, tip.id), 'TANDEM_NOT_FOUND', `revert to ${snap(tip)}, deleted with its grandparent`);
    },
    { needs: (t) => ctx.deleteWithChildrenOff(t.adapter) },
  );

  test(
    'snapshot delete with children of the subtree holding the current snapshot: current moves to its parent',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const root = await s.create(vm, { name: 'root' });
      const a = await s.create(vm, { name: 'a' });
      await s.create(vm, { name: 'b' });
      await s.create(vm, { name: 'c' });
      await s.delete(vm, a.id, { children: true });
      const list = await s.list(vm);
      expectNames(list, ['root'], `after deleting ${snap(a)} with its children`);
      expectCurrent(list, root, `after deleting the subtree of ${snap(a)}, which held the current snapshot`);
    },
    { needs: (t) => ctx.deleteWithChildrenOff(t.adapter) },
  );

  test(
    'snapshot names: a second snapshot of the same name is ConflictError, or has its own id and the name alone is ambiguous',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const first = await s.create(vm, { name: 'twice' });
      let second;
      try {
        second = await s.create(vm, { name: 'twice' });
      } catch (err) {
        if (TandemError.is(err, 'TANDEM_CONFLICT')) {
          expectNames(await s.list(vm), ['twice'], 'after a refused duplicate name');
          return;
        }
        throw new Error(
          `conformance: a second snapshot named "twice": expected success or ConflictError, got ${describeError(err)}`,
          {
            cause: err,
          },
        );
      }
      check(second.id !== first.id, `two snapshots named "twice" share the id ${first.id}`);
      equal((await s.list(vm)).length, 2, 'snapshots after creating a duplicate name');
      await rejects(s.revert(vm, 'twice'), 'TANDEM_CONFLICT', 'revert by a name two snapshots have');
      await s.revert(vm, first.id);
      expectCurrent(await s.list(vm), first, `after reverting to ${snap(first)} by id`);
    },
    needsSnapshots,
  );

  test(
    'a snapshot of a stopped VM reverts a running VM to stopped',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      const cold = await s.create(vm, { name: 'cold' });
      equal(cold.vmState, 'stopped', `vmState of ${snap(cold)}, taken of a stopped VM`);
      await t.adapter.start(vm);
      await s.revert(vm, cold.id);
      equal(await t.adapter.state(vm), 'stopped', `state after reverting to ${snap(cold)}`);
    },
    needsSnapshots,
  );

  test(
    "reverting to a snapshot of a stopped VM restores the disk's contents",
    async (t) => {
      const disk = t.hooks.diskMarker!;
      const vm = await t.define();
      const s = snapshotOps(t);
      await disk.write(vm, 'before');
      const cold = await s.create(vm, { name: 'cold' });
      await disk.write(vm, 'after');
      equal(await disk.read(vm), 'after', 'hooks.diskMarker reads back what it wrote (the hook itself)');
      await s.revert(vm, cold.id);
      equal(await disk.read(vm), 'before', `disk marker after reverting a stopped VM to ${snap(cold)}`);
      await disk.write(vm, 'after');
      await t.adapter.start(vm);
      await s.revert(vm, cold.id);
      equal(await t.adapter.state(vm), 'stopped', `state after reverting a running VM to ${snap(cold)}`);
      equal(await disk.read(vm), 'before', `disk marker after reverting a running VM to ${snap(cold)}`);
    },
    { needs: (t) => ctx.snapshotsOff(t.adapter) ?? needsDiskMarker(t) },
  );

  test(
    'live snapshot: taken running, reverted from stopped, comes back running',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      await t.adapter.start(vm);
      const live = await s.create(vm, { name: 'live' });
      equal(live.vmState, 'running', `vmState of ${snap(live)}, taken of a running VM`);
      equal(await t.adapter.state(vm), 'running', 'state after taking a live snapshot');
      await t.adapter.stop(vm, { force: true });
      await s.revert(vm, live.id);
      equal(await t.adapter.state(vm), 'running', `state after reverting to ${snap(live)}`);
      await t.adapter.stop(vm, { force: true });
    },
    { needs: (t) => ctx.liveOff(t.adapter) },
  );

  test(
    'snapshot of a paused VM: taken paused, the VM stays paused, and a revert brings it back paused',
    async (t) => {
      const vm = await t.define();
      const s = snapshotOps(t);
      await t.adapter.start(vm);
      await t.adapter.suspend(vm);
      const held = await s.create(vm, { name: 'held' });
      equal(held.vmState, 'paused', `vmState of ${snap(held)}, taken of a paused VM`);
      equal(await t.adapter.state(vm), 'paused', 'state after taking a snapshot of a paused VM');
      await t.adapter.stop(vm, { force: true });
      await s.revert(vm, held.id);
      equal(await t.adapter.state(vm), 'paused', `state after reverting to ${snap(held)}`);
      await t.adapter.stop(vm, { force: true });
    },
    { needs: (t) => ctx.liveOff(t.adapter) },
  );
}
