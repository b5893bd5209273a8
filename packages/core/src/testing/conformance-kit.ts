// What every conformance check uses: the VMs it defined (destroyed afterwards) and assertions
// whose messages say what the contract expected. Internal to the suite.
import { randomBytes } from 'node:crypto';
import type { HypervisorAdapter, SnapshotInfo, SnapshotOps, VmSpec, VmState } from '../adapter/types.js';
import { TandemError } from '../errors.js';
import type { ConformanceHooks, ConformanceSubject } from './conformance-types.js';

/** One test's view of the subject: the VMs it defined are destroyed after it. */
export class TestKit {
  readonly #vms = new Set<string>();
  constructor(
    readonly subject: ConformanceSubject,
    readonly prefix: string,
  ) {}

  get adapter(): HypervisorAdapter {
    return this.subject.adapter;
  }

  get hooks(): ConformanceHooks {
    return this.subject.hooks ?? {};
  }

  /** A fresh VM name with the suite's prefix. */
  name(): string {
    return `${this.prefix}-${randomBytes(4).toString('hex')}`;
  }

  /** Defines a VM from the subject's `vmSpec` (or `spec`), and remembers to destroy it. */
  async define(spec?: (name: string) => VmSpec | Promise<VmSpec>): Promise<string> {
    const name = this.name();
    const make = spec ?? ((n: string) => this.subject.vmSpec(n));
    const built = await make(name);
    this.#vms.add(name);
    await this.adapter.define(built);
    return name;
  }

  forget(vm: string): void {
    this.#vms.delete(vm);
  }

  /**
   * Destroys the test's VMs (with `deleteDisks: true`), then calls the subject's `cleanup()`
   * and the adapter's `close()`. Returns every failure instead of stopping at the first.
   */
  async dispose(): Promise<Error[]> {
    const failures: Error[] = [];
    for (const vm of this.#vms) {
      try {
        await this.adapter.destroy(vm, { deleteDisks: true });
      } catch (err) {
        if (!TandemError.is(err, 'TANDEM_NOT_FOUND')) failures.push(wrap(`destroy(${vm}) after the test`, err));
      }
    }
    try {
      await this.subject.cleanup?.();
    } catch (err) {
      failures.push(wrap("the subject's cleanup()", err));
    }
    try {
      await this.adapter.close?.();
    } catch (err) {
      failures.push(wrap('adapter.close()', err));
    }
    return failures;
  }
}

function wrap(what: string, err: unknown): Error {
  return new Error(`${what} failed: ${describeError(err)}`, { cause: err });
}

/** A snapshot as failure messages name it: by name and by id. */
export function snap(s: Pick<SnapshotInfo, 'id' | 'name'> | undefined | null): string {
  if (!s) return '(none)';
  return s.id === s.name ? `"${s.name}"` : `"${s.name}" (id ${s.id})`;
}

export function currentOf(list: readonly SnapshotInfo[]): SnapshotInfo | undefined {
  return list.find((s) => s.current);
}

export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`conformance: ${what}`);
}

export function equal<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected) throw new Error(`conformance: ${what}: expected ${String(expected)}, got ${String(actual)}`);
}

/** Fails unless `current` is the snapshot expected, naming both by name and id. */
export function expectCurrent(list: readonly SnapshotInfo[], expected: SnapshotInfo | null, what: string): void {
  const current = list.filter((s) => s.current);
  check(
    current.length <= 1,
    `${what}: ${current.length} snapshots are marked current (${current.map(snap).join(', ')})`,
  );
  if ((current[0]?.id ?? null) !== (expected?.id ?? null)) {
    throw new Error(`conformance: ${what}: expected current snapshot ${snap(expected)}, got ${snap(current[0])}`);
  }
}

/** Fails unless the list holds exactly these snapshot names. */
export function expectNames(list: readonly SnapshotInfo[], names: readonly string[], what: string): void {
  const got = list.map((s) => s.name).sort();
  const want = [...names].sort();
  if (got.join(',') !== want.join(',')) {
    throw new Error(
      `conformance: ${what}: expected snapshots [${want.join(', ')}], got [${list.map(snap).join(', ')}]`,
    );
  }
}

/** Fails unless `child`'s parent in the list is `parent`. */
export function expectParent(
  list: readonly SnapshotInfo[],
  child: SnapshotInfo,
  parent: SnapshotInfo | null,
  what: string,
): void {
  const found = list.find((s) => s.id === child.id);
  check(found !== undefined, `${what}: snapshot ${snap(child)} is missing from list()`);
  if (found.parentId !== (parent?.id ?? null)) {
    const actual = list.find((s) => s.id === found.parentId);
    throw new Error(
      `conformance: ${what}: expected the parent of ${snap(child)} to be ${snap(parent)}, got ${actual ? snap(actual) : String(found.parentId)}`,
    );
  }
}

/** Awaits one step of a check; a failure says which step, with the adapter's error as cause. */
export async function step<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new Error(`conformance: ${what} failed: ${describeError(err)}`, { cause: err });
  }
}

export async function rejects(p: Promise<unknown>, code: string, what: string): Promise<TandemError> {
  try {
    await p;
  } catch (err) {
    if (TandemError.is(err, code)) return err;
    throw new Error(`conformance: ${what}: expected a TandemError ${code}, got ${describeError(err)}`, { cause: err });
  }
  throw new Error(`conformance: ${what}: expected a TandemError ${code}, but it succeeded`);
}

export async function rejectsInState(p: Promise<unknown>, state: VmState, what: string): Promise<void> {
  const err = await rejects(p, 'TANDEM_INVALID_STATE', what);
  equal(err.details['current'], state, `${what}: details.current`);
}

export function describeError(err: unknown): string {
  if (TandemError.is(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export function describeSettled(results: PromiseSettledResult<unknown>[]): string {
  return results.map((r) => (r.status === 'fulfilled' ? 'ok' : describeError(r.reason))).join(', ');
}

/** The adapter's snapshot operations, or a failure saying the capabilities promised them. */
export function snapshotOps(t: TestKit): SnapshotOps {
  const s = t.adapter.snapshots;
  if (!s || typeof s.create !== 'function') {
    throw new Error('conformance: capabilities.snapshots is set but the adapter has no snapshots member');
  }
  return s;
}
