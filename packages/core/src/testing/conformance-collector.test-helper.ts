// Runs the conformance suite outside vitest's own collection: a fake `it` records the checks,
// and each is run in turn with a context whose skip() is recorded, so a test can ask which
// checks passed, failed or were skipped against a subject.
import type { HypervisorAdapter } from '../adapter/types.js';
import { NotFoundError } from '../errors.js';
import { adapterConformanceSuite } from './conformance.js';
import type {
  ConformanceIt,
  ConformanceOptions,
  ConformanceSubject,
  ConformanceTestBody,
} from './conformance-types.js';
import type { MockAdapter } from './mock-adapter.js';

export interface CheckOutcome {
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  /** The failure, or the skip's reason. */
  readonly message: string;
  readonly error?: unknown;
}

class SkipSignal extends Error {}

/** Options that keep the suite quick against the mock (its waits are real time). */
export const QUICK: ConformanceOptions = { gracefulStopTimeoutMs: 20, eventSettleMs: 0 };

/** Collects the suite's checks with a fake `it` and runs them one by one. */
export async function runSuite(
  factory: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = QUICK,
): Promise<CheckOutcome[]> {
  const registered: { name: string; fn: ConformanceTestBody; skipped: boolean }[] = [];
  const it: ConformanceIt = Object.assign(
    (name: string, fn: ConformanceTestBody) => void registered.push({ name, fn, skipped: false }),
    { skip: (name: string, fn: ConformanceTestBody) => void registered.push({ name, fn, skipped: true }) },
  );
  adapterConformanceSuite(it, factory, options);
  const out: CheckOutcome[] = [];
  for (const t of registered) {
    if (t.skipped) {
      out.push({ name: t.name, status: 'skipped', message: t.name });
      continue;
    }
    const context = {
      skip: (note?: string): never => {
        throw new SkipSignal(note ?? '');
      },
    };
    try {
      await t.fn.call(undefined, context);
      out.push({ name: t.name, status: 'passed', message: '' });
    } catch (err) {
      if (err instanceof SkipSignal) out.push({ name: t.name, status: 'skipped', message: err.message });
      else out.push({ name: t.name, status: 'failed', message: (err as Error).message, error: err });
    }
  }
  return out;
}

export const failed = (outcomes: readonly CheckOutcome[]): CheckOutcome[] =>
  outcomes.filter((o) => o.status === 'failed');

/** An adapter that forwards every call to the mock, with some members replaced: a broken copy. */
export function brokenCopy(inner: MockAdapter, patch: Partial<HypervisorAdapter> = {}): HypervisorAdapter {
  const base: HypervisorAdapter = {
    name: inner.name,
    version: inner.version,
    capabilities: inner.capabilities,
    probe: () => inner.probe(),
    list: () => inner.list(),
    define: (s) => inner.define(s),
    state: (vm) => inner.state(vm),
    start: (vm, o) => inner.start(vm, o),
    stop: (vm, o) => inner.stop(vm, o),
    suspend: (vm) => inner.suspend(vm),
    resume: (vm) => inner.resume(vm),
    save: (vm) => inner.save(vm),
    restore: (vm, o) => inner.restore(vm, o),
    destroy: (vm, o) => inner.destroy(vm, o),
    snapshots: {
      create: (vm, o) => inner.snapshots.create(vm, o),
      list: (vm) => inner.snapshots.list(vm),
      revert: (vm, s, o) => inner.snapshots.revert(vm, s, o),
      delete: (vm, s, o) => inner.snapshots.delete(vm, s, o),
    },
    seamless: inner.seamless,
    guestChannel: inner.guestChannel,
    diskEncryption: inner.diskEncryption,
    encryptedOverlays: inner.encryptedOverlays,
    watch: (l) => inner.watch(l),
  };
  return { ...base, ...patch };
}

/** Throws NotFoundError unless the mock has the VM (what a broken copy's own check would do). */
export async function requireVm(inner: MockAdapter, vm: string): Promise<void> {
  if (!(await inner.list()).some((v) => v.name === vm)) throw new NotFoundError(`no VM ${vm}`);
}
