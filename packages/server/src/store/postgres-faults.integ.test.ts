import { afterEach, describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { sampleEvents, until } from './conformance.js';
import { PostgresStore } from './postgres-store.js';
import { POSTGRES_URL, postgresGate, TestSchema } from './postgres-test-db.test-helper.js';
import type { StoredEvent } from './types.js';

const gate = await postgresGate();

/**
 * Inserts `held` in a transaction of `admin` and keeps it open (uncommitted), so a store insert of
 * the same row waits on it. `release` rolls it back; `done` says how it ended.
 */
async function holdEventRow(
  admin: ReturnType<TestSchema['admin']>,
  held: StoredEvent,
): Promise<{ release: () => void; done: Promise<string> }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let holding = false;
  const blocker = admin.begin(async (tx) => {
    await tx`INSERT INTO events (at, id, type, device, user_name, workspace, received_at, body)
             VALUES (${held.event.at}, ${held.event.id}, ${held.event.type}, ${held.device}, ${held.user},
                     ${held.event.workspace}, ${held.receivedAt}, ${JSON.stringify(held.event)}::text::json)`;
    holding = true;
    await released;
    throw new Error('roll back');
  });
  const done = blocker.then(
    () => 'committed',
    (err: unknown) => (err as Error).message,
  );
  await until(() => holding, 'the blocking row');
  return { release, done };
}

describe.skipIf(!gate.enabled)('PostgresStore when the database goes away (real PostgreSQL)', () => {
  let schema: TestSchema | undefined;
  afterEach(async () => {
    await schema?.drop();
    schema = undefined;
  });

  it('an operation that waits longer than operationTimeoutSeconds fails retryably, and the retry stores each event once', async () => {
    schema = new TestSchema();
    const app = `tandem-it-${schema.name}`;
    const store = await schema.open({ applicationName: app, operationTimeoutSeconds: 2 });
    const batch = sampleEvents(50, Date.UTC(2026, 4, 1), 86_400_000);
    const admin = schema.admin();
    try {
      // The batch's month gets its partition first (a warm-up ingest, removed again).
      await store.ingestEvents(sampleEvents(5, Date.UTC(2026, 4, 1), 86_400_000));
      await admin`DELETE FROM events`;
      const { release, done } = await holdEventRow(admin, batch[7]!);
      // The ingest waits on the held row until the store gives up on it.
      const failure = await store.ingestEvents(batch).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(TandemError.is(failure, 'TANDEM_STORE_UNAVAILABLE')).toBe(true);
      expect((failure as TandemError).retryable).toBe(true);
      expect((failure as TandemError).details['reason']).toBe('timeout');
      release();
      expect(await done).toBe('roll back');
      const retry = await store.ingestEvents(batch);
      expect(retry.inserted + retry.duplicates).toBe(50);
      const [counts] =
        (await admin`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM events`) as unknown as [
          { n: number; d: number },
        ];
      expect(counts).toEqual({ n: 50, d: 50 });
    } finally {
      await admin.end({ timeout: 5 });
      await store.close();
    }
  });

  it('operationTimeoutSeconds must be a positive number', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new PostgresStore({ url: POSTGRES_URL, operationTimeoutSeconds: bad })).toThrow(
        /operationTimeoutSeconds must be a positive number of seconds/,
      );
    }
  });

  for (const mode of ['unnest', 'copy'] as const) {
    it(`a connection killed mid-ingest fails retryably, and the retry stores each event exactly once (${mode})`, async () => {
      schema = new TestSchema();
      const app = `tandem-it-${schema.name}`;
      const store = await schema.open({ ingestMode: mode, applicationName: app, max: 1 });
      const batch = sampleEvents(2000, Date.UTC(2026, 4, 1), 20 * 86_400_000);
      const admin = schema.admin();
      try {
        // Another transaction holds one of the batch's rows uncommitted, so the store's insert
        // waits on it: the moment to terminate the store's connection is then certain.
        // The batch's months get their partitions first (an ingest of one event of each month, removed again).
        const warmUp = sampleEvents(60, Date.UTC(2026, 4, 1), 20 * 86_400_000);
        await store.ingestEvents(warmUp);
        await admin`DELETE FROM events`;
        const { release, done: blockerDone } = await holdEventRow(admin, batch[1234]!);
        const ingest = store.ingestEvents(batch);
        await until(
          async () =>
            (await admin`SELECT 1 FROM pg_stat_activity WHERE application_name = ${app} AND wait_event_type = 'Lock'`)
              .length > 0,
          'the ingest to wait on the held row',
        );
        const killed =
          await admin`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = ${app}`;
        expect(killed.length).toBeGreaterThan(0);
        const failure = await ingest.then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(TandemError.is(failure, 'TANDEM_STORE_UNAVAILABLE')).toBe(true);
        expect((failure as TandemError).retryable).toBe(true);
        release();
        expect(await blockerDone).toBe('roll back');
        const [{ n: afterKill }] = (await admin`SELECT count(*)::int AS n FROM events`) as unknown as [{ n: number }];
        expect(afterKill, 'nothing of the killed transaction is stored').toBe(0);
        // The endpoint retries the same batch, twice (its first retry's answer "was lost").
        expect(await store.ingestEvents(batch)).toEqual({ inserted: 2000, duplicates: 0 });
        expect(await store.ingestEvents(batch)).toEqual({ inserted: 0, duplicates: 2000 });
        const [counts] =
          (await admin`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM events`) as unknown as [
            { n: number; d: number },
          ];
        expect(counts).toEqual({ n: 2000, d: 2000 });
      } finally {
        await admin.end({ timeout: 5 });
      }
    });
  }

  it('the change feed listens again after its connection is killed, and says what it missed as one resync', async () => {
    schema = new TestSchema();
    const app = `tandem-it-${schema.name}`;
    const store = await schema.open({ applicationName: app });
    const writer = await schema.open();
    const seen: { revision: number; scope: string }[] = [];
    const stop = await store.onChange((c) => seen.push(c));
    const admin = schema.admin();
    try {
      await writer.publishChange('channel', 'before');
      await until(() => seen.length === 1, 'the first change');
      const killed =
        await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${`${app}-listen`}`;
      expect(killed.length).toBe(1);
      // Changes made while the listener is away are not lost: it hears of them as a resync.
      await writer.publishChange('channel', 'during');
      await until(() => seen.some((c) => c.revision >= 2), 'the listener to catch up', 120_000);
      await writer.publishChange('channel', 'after');
      await until(() => seen.some((c) => c.revision === 3), 'a change after the reconnect', 120_000);
      expect(seen[0]).toEqual({ revision: 1, scope: 'channel', id: 'before' });
      expect(seen.map((c) => c.revision)).toEqual([...new Set(seen.map((c) => c.revision))].sort((a, b) => a - b));
      expect(seen.at(-1)).toEqual({ revision: 3, scope: 'channel', id: 'after' });
    } finally {
      stop();
      await admin.end({ timeout: 5 });
    }
  });

  it('a database that cannot be reached fails every call retryably', async () => {
    const url = new URL(POSTGRES_URL);
    url.port = '1'; // nothing listens there
    const store = new PostgresStore({ url: url.toString(), connectTimeoutSeconds: 5 });
    try {
      for (const call of [
        () => store.migrate(),
        () => store.revision(),
        () => store.ingestEvents(sampleEvents(3, Date.UTC(2026, 4, 1), 1000)),
      ]) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(TandemError.is(err, 'TANDEM_STORE_UNAVAILABLE'), String(err)).toBe(true);
        expect((err as TandemError).retryable).toBe(true);
      }
    } finally {
      await store.close();
    }
  });
});
