import { registerEventChecks } from './conformance-events.js';
import type { StoreConformanceIt, StoreConformanceOptions, StoreFactory, StoreSubject } from './conformance-kit.js';
import { registerConsoleChecks } from './conformance-console.js';
import { registerRecordChecks } from './conformance-records.js';

export { sampleDevice, sampleEvent, sampleEvents, until } from './conformance-kit.js';
export type { StoreConformanceIt, StoreConformanceOptions, StoreFactory, StoreSubject } from './conformance-kit.js';

/**
 * The suite every `ServerStore` passes: every method, idempotent ingestion under concurrent
 * retries (also through a second store on the same database), paging with cursors, filters,
 * retention across days and months, the three reports, and the change feed seen by this process
 * and by a second one. Each check gets a fresh subject from `factory` and cleans it up.
 *
 * @param it - vitest's `it` (or mocha's, node:test's).
 * @param factory - makes a migrated store on a database of its own for each check.
 *
 * @example
 * ```ts
 * import { it } from 'vitest';
 * storeConformanceSuite(it, async () => {
 *   const dir = await mkdtemp(join(tmpdir(), 'store-'));
 *   const store = new SqliteStore({ path: join(dir, 'store.sqlite') });
 *   await store.migrate();
 *   return { store, cleanup: async () => { await store.close(); await rm(dir, { recursive: true }); } };
 * });
 * ```
 */
export function storeConformanceSuite(
  it: StoreConformanceIt,
  factory: StoreFactory,
  options: StoreConformanceOptions = {},
): void {
  const prefix = options.prefix ?? 'store conformance';
  const timeout = options.timeoutMs ?? 120_000;
  const check = (
    name: string,
    body: (s: StoreSubject) => Promise<void>,
    needs?: (s: StoreSubject) => string | null,
  ): void => {
    it(
      `${prefix}: ${name}`,
      async function (this: unknown, ...args: unknown[]) {
        const subject = await factory();
        try {
          const missing = needs?.(subject) ?? null;
          if (missing !== null) {
            const ctx = args[0] as { skip?: (note?: string) => void } | undefined;
            if (typeof ctx?.skip === 'function') ctx.skip(missing);
            else throw new Error(`cannot run: ${missing}`);
            return;
          }
          await body(subject);
        } finally {
          await subject.cleanup();
        }
      },
      timeout,
    );
  };
  registerRecordChecks(check);
  registerEventChecks(check);
  registerConsoleChecks(check);
}
