// What the store suite's checks share: the subject's types, sample records and a condition wait.
import { randomUUID } from 'node:crypto';
import type { AnyTandemEvent } from '@tandem/core';
import type { DeviceRecord, ServerStore, StoredEvent } from './types.js';

/** What the factory gives the suite for one test: a migrated store on a database of its own. */
export interface StoreSubject {
  readonly store: ServerStore;
  /**
   * Opens another store on the same database, as a second server process would (migrated by
   * the suite). Checks of the change feed across processes are skipped without it.
   */
  reopen?(): Promise<ServerStore>;
  /** Closes what the factory opened and removes the database. */
  cleanup(): Promise<void>;
}

/** Makes a fresh subject for each check. */
export type StoreFactory = () => Promise<StoreSubject>;

/** The `it` of vitest, mocha or node:test. Skipped checks go through `skip` where it exists. */
export interface StoreConformanceIt {
  (name: string, fn: () => Promise<void>, timeout?: number): unknown;
  skip?: (name: string, fn: () => Promise<void>, timeout?: number) => unknown;
}

/** Options of the suite. */
export interface StoreConformanceOptions {
  /** Prefix of every check's name. Default `store conformance`. */
  readonly prefix?: string;
  /** Per-check timeout passed to `it`. Default 120 s (real databases on a busy machine). */
  readonly timeoutMs?: number;
}

/** A device record numbered `n`. */
export function sampleDevice(n: number, overrides: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    id: `tandem-device1:dev${String(n).padStart(4, '0')}`,
    sealingKey: `x25519:${n}`,
    signingKey: `ed25519:${n}`,
    user: `user${n % 3}`,
    hostName: `host-${n}.example.org`,
    enrolledAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    ...overrides,
  };
}

/** An event as an endpoint would send it. */
export function sampleEvent(
  at: string,
  fields: { type?: string; device?: string; user?: string | null; workspace?: string | null; id?: string } = {},
): StoredEvent {
  const type = fields.type ?? 'session.transition';
  const event = {
    id: fields.id ?? randomUUID(),
    type,
    at,
    workspace: fields.workspace === undefined ? 'legacy-erp' : fields.workspace,
    session: 's-1',
    data:
      type === 'session.error'
        ? { operation: 'start', code: 'TANDEM_HYPERVISOR', message: 'failed, "quoted", text', vm: 'vm1' }
        : { from: 'stopped', to: 'running', operation: 'start', vm: 'vm1' },
  } as unknown as AnyTandemEvent;
  return {
    device: fields.device ?? 'tandem-device1:dev0001',
    user: fields.user === undefined ? 'alice' : fields.user,
    receivedAt: new Date(Date.parse(at) + 1000).toISOString(),
    event,
  };
}

/** `count` events spread over `spanMs` from `start`, several sharing each timestamp. */
export function sampleEvents(count: number, start: number, spanMs: number): StoredEvent[] {
  return Array.from({ length: count }, (_, i) =>
    sampleEvent(new Date(start + Math.floor(i / 3) * Math.floor(spanMs / Math.max(1, count / 3))).toISOString(), {
      device: `tandem-device1:dev${String(i % 4).padStart(4, '0')}`,
      user: i % 5 === 0 ? null : `user${i % 2}`,
      workspace: i % 7 === 0 ? null : `ws${i % 3}`,
      type: i % 6 === 0 ? 'session.error' : 'session.transition',
    }),
  );
}

/** Waits until `cond` holds (checked every 20 ms), failing after `timeoutMs` with `what`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Orders stored events as the store pages them: by time, then id. */
export function byTimeThenId(a: StoredEvent, b: StoredEvent): number {
  const ta = Date.parse(a.event.at);
  const tb = Date.parse(b.event.at);
  return ta !== tb ? ta - tb : a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0;
}
