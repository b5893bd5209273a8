// Server store benchmark (issue 15): events ingested per second through PostgresStore.ingestEvents
// (both batch modes: one INSERT over unnest() arrays, and COPY into a staging table then
// INSERT ... SELECT), against the same rows written straight into the same table with COPY, in
// the same run; and the same ingest through SqliteStore. Every run counts the rows afterwards:
// not one lost, not one duplicated. Needs PostgreSQL (TANDEM_BENCH_POSTGRES or
// TANDEM_TEST_POSTGRES; .ci/run's PostgreSQL step starts one) and the built dist:
//
//   npx tsc -b && TANDEM_TEST_POSTGRES=postgres://tandem_test:tandem_test@127.0.0.1:5432/tandem_test \
//     node bench/server-store.mjs [--events 200000] [--batch 1000] [--concurrency 4] [--rounds 3]
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { PostgresStore, SqliteStore } from '@tandem/server/store';
import { copyLines } from '../packages/server/dist/store/postgres-ingest.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const EVENTS = arg('events', 200_000);
const BATCH = arg('batch', 1000);
const CONCURRENCY = arg('concurrency', 4);
const ROUNDS = arg('rounds', 3);
const URL = process.env.TANDEM_BENCH_POSTGRES ?? process.env.TANDEM_TEST_POSTGRES;
if (!URL) {
  console.error('Set TANDEM_BENCH_POSTGRES (or TANDEM_TEST_POSTGRES) to a PostgreSQL URL.');
  process.exit(2);
}

// Realistic events: what a host agent queues between check-ins (transitions, policy decisions,
// sync progress, the odd error), spread over this month so far.
const now = Date.now();
const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
function makeEvents(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const at = new Date(monthStart + Math.floor(((now - monthStart) * i) / n)).toISOString();
    const kind = i % 10;
    const event =
      kind < 6
        ? {
            type: 'session.transition',
            data: { from: 'stopped', to: 'running', operation: 'start', vm: `tandem-erp-${i % 500}` },
          }
        : kind < 8
          ? {
              type: 'policy.decision',
              data: {
                kind: 'url',
                subject: `https://intranet.example.org/app/${i}`,
                outcome: 'guest',
                rule: '*.example.org',
                layer: 'finance',
                reason: 'matched a guest rule',
              },
            }
          : kind < 9
            ? {
                type: 'sync.completed',
                data: { version: '1.4.2', bytesFetched: 123_456_789, bytesFromSeeds: 987_654_321, requests: 42 },
              }
            : {
                type: 'session.error',
                data: {
                  operation: 'resume',
                  code: 'TANDEM_HYPERVISOR',
                  message: 'the VM did not resume',
                  vm: `tandem-erp-${i % 500}`,
                },
              };
    out.push({
      device: `tandem-device1:${(i % 5000).toString(36).padStart(8, '0')}`,
      user: `user${i % 5000}`,
      receivedAt: new Date(Date.parse(at) + 2000).toISOString(),
      event: {
        id: randomUUID(),
        type: event.type,
        at,
        workspace: 'legacy-erp',
        session: `s-${i % 5000}`,
        data: event.data,
      },
    });
  }
  return out;
}

const batches = (events) =>
  Array.from({ length: Math.ceil(events.length / BATCH) }, (_, i) => events.slice(i * BATCH, (i + 1) * BATCH));

async function inParallel(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function countRows(sql) {
  const [r] = await sql`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM events`;
  return r;
}

const newSchema = () => `bench_${randomBytes(5).toString('hex')}`;

async function dropSchema(schema) {
  const sql = postgres(URL, { max: 1, onnotice: () => undefined });
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await sql.end({ timeout: 5 });
}

async function benchStore(mode, events) {
  const schema = newSchema();
  const store = new PostgresStore({ url: URL, schema, max: CONCURRENCY, ingestMode: mode });
  await store.migrate();
  const start = performance.now();
  let inserted = 0;
  await inParallel(batches(events), CONCURRENCY, async (b) => {
    const r = await store.ingestEvents(b);
    inserted += r.inserted;
  });
  const ms = performance.now() - start;
  await store.close();
  const sql = postgres(URL, { max: 1, onnotice: () => undefined, connection: { search_path: schema } });
  const rows = await countRows(sql);
  await sql.end({ timeout: 5 });
  await dropSchema(schema);
  return { ms, inserted, rows };
}

async function benchCopy(events) {
  const schema = newSchema();
  const store = new PostgresStore({ url: URL, schema, max: 1 });
  await store.migrate(); // the same table, indexes and partitions
  await store.close();
  const sql = postgres(URL, { max: CONCURRENCY, onnotice: () => undefined, connection: { search_path: schema } });
  const start = performance.now();
  await inParallel(batches(events), CONCURRENCY, async (b) => {
    const w =
      await sql`COPY events (at, id, type, device, user_name, workspace, received_at, body) FROM STDIN`.writable();
    await pipeline(Readable.from(copyLines(b)), w);
  });
  const ms = performance.now() - start;
  const rows = await countRows(sql);
  await sql.end({ timeout: 5 });
  await dropSchema(schema);
  return { ms, inserted: rows.n, rows };
}

async function benchSqlite(events) {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-store-'));
  const store = new SqliteStore({ path: join(dir, 'store.sqlite') });
  await store.migrate();
  const start = performance.now();
  let inserted = 0;
  for (const b of batches(events)) {
    const r = await store.ingestEvents(b);
    inserted += r.inserted;
  }
  const ms = performance.now() - start;
  let n = 0;
  const ids = new Set();
  let after;
  do {
    const page = await store.queryEvents({ limit: 10_000, ...(after ? { after } : {}) });
    for (const e of page.events) ids.add(e.event.id);
    n += page.events.length;
    after = page.next;
  } while (after);
  await store.close();
  await rm(dir, { recursive: true, force: true });
  return { ms, inserted, rows: { n, d: ids.size } };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rowsByName = {
  'COPY straight into events': [],
  'PostgresStore (unnest)': [],
  'PostgresStore (copy + insert-select)': [],
  SqliteStore: [],
};
let lost = 0;
for (let round = 0; round < ROUNDS; round++) {
  // Rounds interleave the rows, so a busy moment of the machine hits every row alike.
  const runs = [
    ['COPY straight into events', (e) => benchCopy(e)],
    ['PostgresStore (unnest)', (e) => benchStore('unnest', e)],
    ['PostgresStore (copy + insert-select)', (e) => benchStore('copy', e)],
    ['SqliteStore', (e) => benchSqlite(e)],
  ];
  for (const [name, fn] of runs) {
    const events = makeEvents(EVENTS); // fresh ids for every run
    const r = await fn(events);
    if (r.rows.n !== EVENTS || r.rows.d !== EVENTS || r.inserted !== EVENTS) {
      lost++;
      console.error(
        `${name}: ${r.rows.n} rows, ${r.rows.d} distinct ids, ${r.inserted} reported inserted, of ${EVENTS}`,
      );
    }
    rowsByName[name].push(EVENTS / (r.ms / 1000));
    console.log(
      `round ${round + 1}: ${name}: ${Math.round(EVENTS / (r.ms / 1000))} events/s (${r.rows.n} rows, ${r.rows.d} distinct)`,
    );
  }
}
const copy = median(rowsByName['COPY straight into events']);
console.log(
  `\n${EVENTS} events in batches of ${BATCH}, ${CONCURRENCY} concurrent, median of ${ROUNDS} rounds, Node ${process.version}`,
);
console.log('| path | events/s | of COPY |');
console.log('|---|---:|---:|');
const summary = {};
for (const [name, xs] of Object.entries(rowsByName)) {
  const m = median(xs);
  summary[name] = Math.round(m);
  console.log(`| ${name} | ${Math.round(m).toLocaleString('en')} | ${(m / copy).toFixed(2)}x |`);
}
console.log(
  lost === 0 ? 'rows counted after every run: none lost, none duplicated' : `${lost} runs lost or duplicated rows`,
);
const out = resolve('bench/out');
await mkdir(out, { recursive: true });
await writeFile(
  join(out, 'server-store.json'),
  JSON.stringify(
    {
      events: EVENTS,
      batch: BATCH,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      node: process.version,
      eventsPerSecond: summary,
      lost,
    },
    null,
    2,
  ) + '\n',
);
process.exitCode = lost === 0 ? 0 : 1;
