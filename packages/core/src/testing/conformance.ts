import type { HypervisorAdapter } from '../adapter/types.js';
import { registerEventChecks } from './conformance-events.js';
import { registerLifecycleChecks } from './conformance-lifecycle.js';
import { registerSnapshotChecks } from './conformance-snapshots.js';
import { TestKit } from './conformance-kit.js';
import type {
  ConformanceIt,
  ConformanceOptions,
  ConformanceSubject,
  ConformanceTestApi,
  ConformanceTestBody,
} from './conformance-types.js';

export type {
  ConformanceGuest,
  ConformanceHooks,
  ConformanceIt,
  ConformanceOptions,
  ConformanceSubject,
  ConformanceTestApi,
  ConformanceTestBody,
} from './conformance-types.js';

/** When a check runs: `off` (a reason) switches it off outright; `needs` decides per subject. */
export interface CheckGate {
  /** Set (to the reason) when the options switch the check off: it is registered as skipped. */
  readonly off?: string | false | undefined;
  /** Returns why the check cannot run against this subject, or null when it can. */
  readonly needs?: (t: TestKit) => string | null;
}

/** Registers one check of the suite. */
export type RegisterCheck = (name: string, body: (t: TestKit) => Promise<void>, gate?: CheckGate) => void;

/** What each group of checks gets from {@link adapterConformanceSuite}. */
export interface SuiteContext {
  readonly check: RegisterCheck;
  readonly options: ConformanceOptions;
  readonly prefix: string;
  readonly graceMs: number;
  /** Why the adapter's snapshots cannot be tested, or null. */
  snapshotsOff(a: HypervisorAdapter): string | null;
  liveOff(a: HypervisorAdapter): string | null;
  saveOff(a: HypervisorAdapter): string | null;
  deleteWithChildrenOff(a: HypervisorAdapter): string | null;
}

/**
 * The suite every adapter runs: probe, capabilities against members, every legal transition
 * and the illegal ones, graceful and forced stops, save/restore, snapshot trees three levels
 * deep (revert by id and by name, delete with and without children, where `current` goes),
 * snapshots of stopped, running and paused VMs, unknown VMs, concurrent calls, destroy, and
 * `watch()` staying silent about the adapter's own calls.
 *
 * Checks the adapter's capabilities or the options switch off, and checks that need a hook
 * the subject does not offer, are reported as skipped with the reason, never as passed.
 *
 * @param api - the test API: vitest's `it` or `test` (or `{ it }`), mocha's, node:test's.
 * @param factory - makes a fresh subject for each test.
 *
 * @example
 * ```ts
 * import { it } from 'vitest';
 * import { adapterConformanceSuite, mockConformanceSubject } from '@tandem/core/testing';
 *
 * adapterConformanceSuite(it, async () => mockConformanceSubject(), { gracefulStopTimeoutMs: 50 });
 * ```
 */
export function adapterConformanceSuite(
  api: ConformanceTestApi,
  factory: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = {},
): void {
  const it = testFunction(api);
  const timeout = options.timeoutMs ?? 60_000;
  const prefix = options.prefix ?? 'tandem-conf';
  const skip = options.skip ?? {};

  const check: RegisterCheck = (name, body, gate = {}) => {
    if (gate.off) {
      const reason = `switched off: ${gate.off}`;
      if (it.skip) it.skip(`${name} (skipped, ${reason})`, async () => undefined, timeout);
      else it(name, runtimeSkip(reason), timeout);
      return;
    }
    const run: ConformanceTestBody = async function (this: unknown, ...args: unknown[]) {
      const subject = await factory();
      const kit = new TestKit(subject, prefix);
      let failure: unknown;
      let failed = false;
      try {
        const reason = gate.needs?.(kit) ?? null;
        if (reason !== null) skipNow(this, args[0], reason);
        else await body(kit);
      } catch (err) {
        failed = true;
        failure = err;
      }
      const cleanupFailures = await kit.dispose();
      if (failed && cleanupFailures.length > 0) {
        const message = (failure as Error | undefined)?.message ?? String(failure);
        throw new AggregateError(
          [failure, ...cleanupFailures],
          `${message}\n(cleanup after this failure also failed: ${cleanupFailures.map((e) => e.message).join('; ')})`,
        );
      }
      // Rethrown as it came: a test API's skip signal must reach the test API unchanged.
      if (failed) throw failure;
      const [only] = cleanupFailures;
      if (only && cleanupFailures.length === 1) throw only;
      if (cleanupFailures.length > 1) throw new AggregateError(cleanupFailures, 'conformance: cleanup failed');
    };
    it(name, run, timeout);
  };

  const snapshotsOff = (a: HypervisorAdapter): string | null =>
    skip.snapshots ? 'skip.snapshots' : a.capabilities.snapshots === false ? 'capabilities.snapshots is false' : null;
  const ctx: SuiteContext = {
    check,
    options,
    prefix,
    graceMs: options.gracefulStopTimeoutMs ?? 2_000,
    snapshotsOff,
    liveOff: (a) =>
      snapshotsOff(a) ??
      (skip.liveSnapshots
        ? 'skip.liveSnapshots'
        : a.capabilities.snapshots !== false && !a.capabilities.snapshots.live
          ? 'capabilities.snapshots.live is false'
          : null),
    saveOff: (a) =>
      skip.save ? 'skip.save' : !a.capabilities.suspend.save ? 'capabilities.suspend.save is false' : null,
    deleteWithChildrenOff: (a) =>
      snapshotsOff(a) ??
      (skip.deleteWithChildren
        ? 'skip.deleteWithChildren'
        : a.capabilities.snapshots !== false && !a.capabilities.snapshots.deleteWithChildren
          ? 'capabilities.snapshots.deleteWithChildren is false'
          : null),
  };
  registerLifecycleChecks(ctx);
  registerEventChecks(ctx);
  registerSnapshotChecks(ctx);
}

function testFunction(api: ConformanceTestApi): ConformanceIt {
  if (typeof api === 'function') return api;
  if ('it' in api && typeof api.it === 'function') return api.it;
  if ('test' in api && typeof api.test === 'function') return api.test;
  throw new TypeError('adapterConformanceSuite: pass the test API: `it` or `test` (or an object holding one)');
}

function runtimeSkip(reason: string): ConformanceTestBody {
  return async function (this: unknown, ...args: unknown[]) {
    skipNow(this, args[0], reason);
  };
}

/**
 * Marks the running test skipped through whatever the test API offers: vitest's and node:test's
 * context (`ctx.skip(note)`), mocha's `this.skip()`. Without either, the test fails with the
 * reason rather than pass.
 */
function skipNow(self: unknown, context: unknown, reason: string): void {
  const note = `skipped: ${reason}`;
  const ctx = context as { skip?: (note?: string) => void } | undefined;
  if (isObjectLike(ctx) && typeof ctx.skip === 'function') {
    ctx.skip(note);
    return;
  }
  const mocha = self as { skip?: () => void } | undefined;
  if (isObjectLike(mocha) && typeof mocha.skip === 'function') {
    mocha.skip();
    return;
  }
  throw new Error(
    `conformance: this check must be skipped (${reason}), but the test API has no way to skip a running test; use vitest, mocha or node:test, or switch the check off in the options`,
  );
}

// vitest's test context is a function object.
function isObjectLike<T>(x: T | undefined): x is T {
  return x !== null && (typeof x === 'object' || typeof x === 'function');
}
