import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleEvents, until } from './conformance.js';
import { postgresGate, POSTGRES_URL, TestSchema } from './postgres-test-db.test-helper.js';
import type { StoreChange } from './types.js';

const gate = await postgresGate();
const DIST = join(dirname(fileURLToPath(import.meta.url)), '../../dist/store/index.js');
const DAY = 86_400_000;
// Under TANDEM_IT=required a missing build fails the test instead of skipping it.
const noDist = !existsSync(DIST) && process.env['TANDEM_IT'] !== 'required';

// A second server process: opens the store on the same schema, prints every change it hears as
// a JSON line, and publishes a change for every line it reads.
const CHILD = `
import { createInterface } from 'node:readline';
const { PostgresStore } = await import(process.env.STORE_DIST);
const store = new PostgresStore({ url: process.env.STORE_URL, schema: process.env.STORE_SCHEMA, max: 2 });
await store.migrate();
await store.onChange((c) => process.stdout.write(JSON.stringify({ change: c }) + '\\n'));
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) await store.publishChange('channel', line);
await store.close();
`;

describe.skipIf(!gate.enabled)('PostgresStore partitions and processes (real PostgreSQL)', () => {
  let schema: TestSchema | undefined;
  afterEach(async () => {
    await schema?.drop();
    schema = undefined;
  });

  it('events land in monthly partitions made on demand; retention drops whole months and trims the one it cuts', async () => {
    schema = new TestSchema();
    const store = await schema.open();
    const admin = schema.admin();
    try {
      const partitions = async (): Promise<string[]> =>
        (
          await admin`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
                      WHERE p.relname = 'events' AND n.nspname = ${schema!.name} ORDER BY 1`
        ).map((r) => String(r['name']));
      const now = new Date();
      const thisMonth = `events_p${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
      expect(await partitions(), 'this month and the next are made ahead').toContain(thisMonth);
      const batch = sampleEvents(300, Date.UTC(2025, 10, 20), 80 * DAY); // 2025-11-20 .. 2026-02-08
      await store.ingestEvents(batch);
      expect(await partitions()).toEqual(
        expect.arrayContaining(['events_p202511', 'events_p202512', 'events_p202601', 'events_p202602']),
      );
      const perMonth =
        await admin`SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM events GROUP BY 1 ORDER BY 1`;
      expect(perMonth.reduce((n, r) => n + Number(r['n']), 0)).toBe(300);
      const cut = '2026-01-15T00:00:00.000Z';
      const expected = batch.filter((e) => e.event.at < cut).length;
      expect(await store.applyRetention(cut)).toBe(expected);
      const left = await partitions();
      expect(left).not.toContain('events_p202511');
      expect(left).not.toContain('events_p202512');
      expect(left).toContain('events_p202601'); // the month the cut falls in stays, trimmed
      const [{ n }] = (await admin`SELECT count(*)::int AS n FROM events_p202601 WHERE at < ${cut}`) as unknown as [
        { n: number },
      ];
      expect(n).toBe(0);
      // A second process's cache still names the dropped months: its next ingest makes them again.
      const other = await schema.open();
      await other.ingestEvents(sampleEvents(3, Date.UTC(2026, 0, 20), DAY));
      await store.applyRetention('2026-03-01T00:00:00.000Z');
      expect(await other.ingestEvents(sampleEvents(5, Date.UTC(2026, 1, 2), DAY))).toEqual({
        inserted: 5,
        duplicates: 0,
      });
    } finally {
      await admin.end({ timeout: 5 });
    }
  });

  it.skipIf(noDist)(
    'a second server process hears every change made here over LISTEN/NOTIFY, and this one hears its changes',
    async () => {
      schema = new TestSchema();
      const store = await schema.open();
      const seenHere: StoreChange[] = [];
      const stop = await store.onChange((c) => seenHere.push(c));
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
        env: { ...process.env, STORE_DIST: DIST, STORE_URL: POSTGRES_URL, STORE_SCHEMA: schema.name },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const fromChild: { ready?: boolean; change?: StoreChange }[] = [];
      createInterface({ input: child.stdout }).on('line', (l) =>
        fromChild.push(JSON.parse(l) as (typeof fromChild)[number]),
      );
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      try {
        await until(() => fromChild.some((m) => m.ready), 'the second process to listen', 120_000);
        const base = await store.revision();
        await store.putAssignment({
          id: 'a1',
          workspace: 'legacy-erp',
          channel: 'stable',
          users: [],
          groups: ['erp'],
          policyLayers: [],
          createdAt: '2026-05-01T00:00:00.000Z',
          updatedAt: '2026-05-01T00:00:00.000Z',
        });
        await store.publishChange('policy', 'base');
        await until(
          () => fromChild.filter((m) => m.change).length >= 2,
          'the second process to hear two changes',
          120_000,
        );
        expect(fromChild.filter((m) => m.change).map((m) => m.change)).toEqual([
          { revision: base + 1, scope: 'assignment', id: 'a1' },
          { revision: base + 2, scope: 'policy', id: 'base' },
        ]);
        child.stdin.write('pilot\n');
        await until(() => seenHere.some((c) => c.id === 'pilot'), 'this process to hear the second one', 120_000);
        expect(seenHere.at(-1)).toEqual({ revision: base + 3, scope: 'channel', id: 'pilot' });
        expect(await store.revision()).toBe(base + 3);
      } finally {
        stop();
        child.stdin.end();
        const code = await exited;
        expect(code).toBe(0);
      }
    },
  );
});
