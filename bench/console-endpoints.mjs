// Console endpoint table benchmark (issue 16): how long `searchEndpoints` (the console's
// endpoint-search) and `endpointOverview` take at tens of thousands of devices, on SQLite and on
// PostgreSQL: the default page, sorts, the state/workspace/version filters (scans by design:
// check-ins write those columns and they carry no index), a search, a deep page. Median of
// --rounds runs each. Needs the built dist; PostgreSQL through TANDEM_BENCH_POSTGRES or
// TANDEM_TEST_POSTGRES (skipped without):
//
//   npx tsc -b && TANDEM_TEST_POSTGRES=postgres://tandem_test:tandem_test@127.0.0.1:5432/tandem_test \
//     node bench/console-endpoints.mjs [--devices 50000] [--rounds 5]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { PostgresStore, SqliteStore } from '@tandem/server/store';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const DEVICES = arg('devices', 50_000);
const ROUNDS = arg('rounds', 5);
const URL = process.env.TANDEM_BENCH_POSTGRES ?? process.env.TANDEM_TEST_POSTGRES;
const now = Date.now();
const onlineSince = new Date(now - 5 * 60_000).toISOString();

function device(n) {
  return {
    id: `tandem-device1:bench${String(n).padStart(6, '0')}`,
    sealingKey: 'x25519:bench',
    signingKey: 'ed25519:bench',
    user: `user${n % 5000}`,
    hostName: `pc-${n}.corp.example`,
    enrolledAt: new Date(now - 30 * 86_400_000 + n * 1000).toISOString(),
  };
}
function state(n) {
  return {
    agentVersion: '0.4.0',
    workspaces: [
      {
        workspace: n % 3 === 0 ? 'cad' : 'erp',
        version: n % 10 === 0 ? '2.0.0' : '1.0.0',
        state: n % 7 ? 'stopped' : 'running',
      },
    ],
  };
}
const checkInAt = (n) => new Date(now - (n % 4 === 0 ? 60_000 : 3600_000 * (1 + (n % 48)))).toISOString();

async function seed(store) {
  const batch = 2000;
  for (let i = 0; i < DEVICES; i += batch) {
    const ns = Array.from({ length: Math.min(batch, DEVICES - i) }, (_, k) => i + k);
    await Promise.all(ns.map((n) => store.putDevice(device(n))));
    await Promise.all(
      ns.filter((n) => n % 20 !== 19).map((n) => store.recordCheckIn(device(n).id, checkInAt(n), state(n))),
    );
  }
}

const QUERIES = [
  ['first page (by device id)', (s) => s.searchEndpoints({ limit: 50 })],
  [
    'sort by last check-in, newest first',
    (s) => s.searchEndpoints({ sort: 'lastCheckInAt', order: 'desc', limit: 50 }),
  ],
  ['sort by host name', (s) => s.searchEndpoints({ sort: 'hostName', limit: 50 })],
  ['state online', (s) => s.searchEndpoints({ state: 'online', onlineSince, limit: 50 })],
  ['workspace erp at 2.0.0', (s) => s.searchEndpoints({ workspace: 'erp', version: '2.0.0', limit: 50 })],
  ['search "pc-4711."', (s) => s.searchEndpoints({ search: 'pc-4711.', limit: 50 })],
  ['page at offset 40000', (s) => s.searchEndpoints({ offset: Math.max(0, DEVICES - 10_000), limit: 50 })],
  ['overview counts', (s) => s.endpointOverview({ onlineSince, daySince: new Date(now - 86_400_000).toISOString() })],
];

async function measure(kind, store) {
  const t0 = performance.now();
  await seed(store);
  console.log(`${kind}: ${DEVICES} devices seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const [name, q] of QUERIES) {
    const times = [];
    let result;
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      result = await q(store);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const total = result && 'total' in result ? ` (total ${result.total})` : '';
    console.log(
      `  ${kind.padEnd(8)} ${name.padEnd(40)} median ${times[Math.floor(times.length / 2)].toFixed(1)} ms${total}`,
    );
  }
}

const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-console-'));
try {
  const sqlite = new SqliteStore({ path: join(dir, 'store.sqlite') });
  await sqlite.migrate();
  await measure('sqlite', sqlite);
  await sqlite.close();
  if (URL) {
    const schema = `bench_console_${process.pid}`;
    const pg = new PostgresStore({ url: URL, schema, max: 8 });
    try {
      await pg.migrate();
      await measure('postgres', pg);
    } finally {
      await pg.close();
      const sql = postgres(URL, { max: 1, onnotice: () => undefined });
      await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await sql.end();
    }
  } else console.log('postgres: skipped (set TANDEM_TEST_POSTGRES)');
} finally {
  await rm(dir, { recursive: true, force: true });
}
