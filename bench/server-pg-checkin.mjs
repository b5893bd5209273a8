// PostgreSQL's own cost of the check-in write (issue 15), without HTTP or the server: groups of
// concurrent check-ins (bench/server.mjs's 10 events each, from bench/lib/server-load.mjs) written through
// PostgresStore.checkInGroup into a fresh schema, and the CPU time of the PostgreSQL backends that
// served them (from /proc, by their application_name), per check-in. Every event is counted
// afterwards: none lost, none duplicated.
//
//   npx tsc -b && TANDEM_TEST_POSTGRES=postgres://tandem_test:tandem_test@127.0.0.1:5432/tandem_test \
//     node bench/server-pg-checkin.mjs [--check-ins 20000] [--group 16] [--writers 2] [--devices 500]
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { PostgresStore } from '@tandem/server/store';
import { checkInEvents, cpuMs } from './lib/server-load.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const CHECK_INS = Number(arg('check-ins', 20000));
const GROUP = Number(arg('group', 16));
const WRITERS = Number(arg('writers', 2));
const DEVICES = Number(arg('devices', 500));
const PG = process.env.TANDEM_BENCH_POSTGRES ?? process.env.TANDEM_TEST_POSTGRES;
if (!PG) throw new Error('Set TANDEM_TEST_POSTGRES (or TANDEM_BENCH_POSTGRES) to a PostgreSQL URL.');

const schema = `bench_ci_${randomBytes(4).toString('hex')}`;
const app = `tandem-bench-checkin-${schema}`;
const store = new PostgresStore({ url: PG, schema, max: WRITERS, applicationName: app });
await store.migrate();
const devices = Array.from({ length: DEVICES }, (_, i) => `tandem-device1:bench${String(i).padStart(6, '0')}`);
const enrolledAt = new Date().toISOString();
for (const id of devices) {
  await store.putDevice({
    id,
    sealingKey: 'x',
    signingKey: 'y',
    user: `user${id.slice(-3)}`,
    hostName: `host-${id.slice(-6)}`,
    enrolledAt,
  });
}
const admin = postgres(PG, { max: 1, onnotice: () => undefined });
const group = (g) =>
  Array.from({ length: GROUP }, (_, j) => {
    const device = devices[(g * GROUP + j) % DEVICES];
    const now = Date.now();
    const receivedAt = new Date(now).toISOString();
    return {
      device,
      nonce: randomBytes(16).toString('base64url'),
      expiresAt: new Date(now + 600_000).toISOString(),
      at: receivedAt,
      state: { agentVersion: '0.1.0', workspaces: [{ workspace: 'quickstart', version: '1.0.0', state: 'running' }] },
      events: checkInEvents(device, now).map((event) => ({ device, user: null, receivedAt, event })),
    };
  });
// Warm-up: connections open, statement prepared, partitions made.
let warm = 0;
await Promise.all(
  Array.from({ length: WRITERS }, async () => {
    while (warm < 20) await store.checkInGroup(group(warm++));
  }),
);
const pids = (await admin`SELECT pid FROM pg_stat_activity WHERE application_name = ${app}`).map((r) => r.pid);
const groups = Math.ceil(CHECK_INS / GROUP);
let next = 20;
let written = 0;
const cpu0 = await cpuMs(pids);
const start = performance.now();
await Promise.all(
  Array.from({ length: WRITERS }, async () => {
    while (next < 20 + groups) {
      const results = await store.checkInGroup(group(next++));
      for (const r of results) if (r.status === 'ok') written += r.inserted;
    }
  }),
);
const seconds = (performance.now() - start) / 1000;
const cpu1 = await cpuMs(pids);
const [c] = await admin.unsafe(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM "${schema}".events`);
await store.close();
await admin.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
await admin.end({ timeout: 5 });
const checkIns = groups * GROUP;
console.log(
  JSON.stringify({
    checkIns,
    group: GROUP,
    writers: WRITERS,
    checkInsPerSecond: Math.round(checkIns / seconds),
    backendCpuMsPerCheckIn: Number(((cpu1 - cpu0) / checkIns).toFixed(3)),
    backends: pids.length,
    events: { inserted: written, rows: c.n, distinct: c.d, expected: (groups + 20) * GROUP * 10 },
  }),
);
