// Management server benchmark (issue 15): simulated endpoints checking in with realistic
// payloads (10 new events each, their state, the version token of their last reply), signed by
// their device keys like ManagementClient signs, against server processes over PostgreSQL and
// over SQLite, all on this machine with the load generator. Sustained check-ins per second for
// --seconds, latency percentiles, and the events counted in the database afterwards: every
// answered check-in's 10 events there once, none lost, none duplicated.
//
// It also reports the CPU time per check-in of the server processes, of PostgreSQL and of itself
// (from /proc), and the load average, since other work may share the machine.
//
//   npx tsc -b && TANDEM_TEST_POSTGRES=postgres://tandem_test:tandem_test@127.0.0.1:5432/tandem_test \
//     node bench/server.mjs [--seconds 60] [--processes 2] [--devices 2000] [--concurrency 64] [--only postgres|sqlite]
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { devicePublicKeyOf } from '@tandem/core/crypto';
import { ROUTES, SIGNATURE_HEADERS, signingInput } from '@tandem/core/management';
import { initServerDirectory, openDeployment } from '@tandem/server';
import { PostgresStore } from '@tandem/server/store';
import { copyLines } from '../packages/server/dist/store/postgres-ingest.js';
import { checkInEvents, cpuMs } from './lib/server-load.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const SECONDS = Number(arg('seconds', 60));
const PROCESSES = Number(arg('processes', 2));
const DEVICES = Number(arg('devices', 500));
const CONCURRENCY = Number(arg('concurrency', 64));
const ONLY = arg('only', '');
const PG = process.env.TANDEM_BENCH_POSTGRES ?? process.env.TANDEM_TEST_POSTGRES;
const here = dirname(fileURLToPath(import.meta.url));

// Every process named postgres (the PostgreSQL backends serving this run and the cluster's own
// workers), for cpuMs: CPU time is taken around the timed phase, so the cost per check-in can be
// said per component even when other work shares the machine.
async function postgresPids() {
  const out = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((await readFile(`/proc/${name}/comm`, 'utf8')).trim() === 'postgres') out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
// PostgreSQL's processes by what they serve (pg_stat_activity: pid, backend_type and
// application_name are visible to any role): this run's server connections (named
// tandem-server:<schema> by PostgresStore), the cluster's own workers (WAL writer,
// checkpointer, background writer, autovacuum), and every other client (other work sharing the
// cluster), so that the check-in's own cost is told apart from the rest.
async function postgresRoles(sql, schema) {
  const rows = await sql`SELECT pid, backend_type, application_name FROM pg_stat_activity`;
  const roles = new Map();
  for (const r of rows) {
    const role =
      r.backend_type !== 'client backend'
        ? 'workers'
        : r.application_name?.startsWith(`tandem-server:${schema}`)
          ? 'thisRun'
          : 'otherClients';
    roles.set(r.pid, role);
  }
  return roles;
}
async function cpuByPid(pids) {
  const out = new Map();
  for (const pid of pids) out.set(pid, await cpuMs([pid]));
  return out;
}
async function cpuSnapshot(children, pg) {
  const self = process.cpuUsage();
  const pids = await postgresPids();
  return {
    server: await cpuMs(children.map((c) => c.child.pid)),
    postgres: await cpuMs(pids),
    postgresByPid: pg ? await cpuByPid(pids) : undefined,
    postgresRoles: pg ? await postgresRoles(pg.sql, pg.schema) : undefined,
    load: (self.user + self.system) / 1000,
  };
}
// CPU ms of PostgreSQL's processes between two snapshots, by role (a process that started in
// between counts from zero; one that ended in between is not counted).
function postgresSplit(cpu0, cpu1) {
  const split = { thisRun: 0, workers: 0, otherClients: 0 };
  for (const [pid, ms] of cpu1.postgresByPid) {
    const role = cpu1.postgresRoles.get(pid) ?? cpu0.postgresRoles.get(pid) ?? 'otherClients';
    split[role] += ms - (cpu0.postgresByPid.get(pid) ?? 0);
  }
  return split;
}
async function loadAverage() {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).map(Number);
}

function raw(key) {
  return key.export({ format: 'jwk' });
}

function makeDevices(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const x = generateKeyPairSync('x25519');
    const ed = generateKeyPairSync('ed25519');
    const pub = devicePublicKeyOf(raw(x.publicKey).x, raw(ed.publicKey).x);
    out.push({ id: pub.deviceId, pub, key: ed.privateKey, token: undefined, n: 0 });
  }
  return out;
}

// The load generator is kept cheap, since it shares the 2 cores with the server and PostgreSQL:
// a check-in body is put together from JSON pieces made once (per event kind and per device),
// with fresh event ids (this run's random prefix and a counter: unique, 8..64 characters) and
// times; only the signature is made per request, here (the server checks each nonce once, so
// nothing can be signed ahead).
const RUN = randomBytes(6).toString('hex');
let eventCounter = 0;
const templates = checkInEvents('0'.repeat(32), Date.now()).map((e) => {
  const text = JSON.stringify({ ...e, id: '\u0001', at: '\u0002' });
  const [head, rest] = text.split('"\\u0001"');
  const [middle, tail] = rest.split('"\\u0002"');
  return { head, middle, tail };
});
function cheapBody(device, token) {
  const session = `quickstart-${device.id.slice(0, 6)}`;
  device.tails ??= templates.map((t) => t.tail.replace('quickstart-000000', session));
  const now = Date.now();
  let out = `{${token === undefined ? '' : `"token":${JSON.stringify(token)},`}"agentVersion":"0.1.0","workspaces":[{"workspace":"quickstart","version":"1.0.0","state":"running"}],"events":[`;
  for (let i = 0; i < templates.length; i++) {
    const t = templates[i];
    const id = `${RUN}-${(eventCounter++).toString(36).padStart(8, '0')}`;
    const at = new Date(now - (10 - i) * 6000).toISOString();
    out += `${i ? ',' : ''}${t.head}"${id}"${t.middle}"${at}"${device.tails[i]}`;
  }
  return out + ']}';
}

// Nonces: 16 random bytes each, as ManagementClient makes them, cut from a pool refilled 4,096
// at a time (one call into the random source per 4,096 requests, not one each).
let noncePool = Buffer.alloc(0);
let nonceAt = 0;
function nonce() {
  if (nonceAt + 16 > noncePool.length) {
    noncePool = randomBytes(16 * 4096);
    nonceAt = 0;
  }
  nonceAt += 16;
  return noncePool.toString('base64url', nonceAt - 16, nonceAt);
}
const urls = new Map();

function post(agent, url, path, device, payload) {
  const body = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const time = new Date().toISOString();
  const n = nonce();
  const sig = sign(null, signingInput({ method: 'POST', path, device: device.id, time, nonce: n, body }), device.key);
  let u = urls.get(url);
  if (!u) urls.set(url, (u = new URL(url)));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        hostname: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          [SIGNATURE_HEADERS.device]: device.id,
          [SIGNATURE_HEADERS.time]: time,
          [SIGNATURE_HEADERS.nonce]: n,
          [SIGNATURE_HEADERS.signature]: sig.toString('base64url'),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function startProcess(dir) {
  // TANDEM_BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server processes;
  // TANDEM_BENCH_SERVER_PROCESS=/path/to/server-process.mjs runs another build of the server (a
  // copy of bench/lib/server-process.mjs importing an older dist), to set before against after.
  const nodeArgs = (process.env.TANDEM_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const script = process.env.TANDEM_BENCH_SERVER_PROCESS ?? join(here, 'lib', 'server-process.mjs');
  const child = spawn(process.execPath, [...nodeArgs, script, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ child, url: JSON.parse(line).url }));
    child.once('exit', (code) => reject(new Error(`server process exited (${code})`)));
  });
}

// The same rows (10 per simulated check-in, the same shape) written straight into a fresh
// copy of the events table with COPY, in batches of 1,000, 4 at a time: the database's own
// ingest ceiling in this run, to set the server's events per second against.
async function copyBaseline(database, rowCount) {
  const schema = `bench_copy_${randomBytes(4).toString('hex')}`;
  const store = new PostgresStore({ url: database, schema, max: 1 });
  await store.migrate();
  await store.close();
  const devices = makeDevices(50);
  const rows = [];
  const receivedAt = new Date().toISOString();
  for (let i = 0; rows.length < rowCount; i++) {
    const d = devices[i % devices.length];
    for (const event of checkInEvents(d.id, Date.now())) rows.push({ device: d.id, user: 'ana', receivedAt, event });
  }
  rows.length = rowCount;
  const batches = [];
  for (let i = 0; i < rows.length; i += 1000) batches.push(rows.slice(i, i + 1000));
  const sql = postgres(database, { max: 4, onnotice: () => undefined, connection: { search_path: schema } });
  let next = 0;
  const pg0 = await cpuMs(await postgresPids());
  const start = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < batches.length) {
        const b = batches[next++];
        const w =
          await sql`COPY events (at, id, type, device, user_name, workspace, received_at, body) FROM STDIN`.writable();
        await pipeline(Readable.from(copyLines(b)), w);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const pg1 = await cpuMs(await postgresPids());
  const [c] = await sql`SELECT count(*)::int AS n FROM events`;
  await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
  await sql.end({ timeout: 5 });
  return {
    rows: c.n,
    perSecond: Math.round(c.n / seconds),
    postgresCpuMsPer1000Rows: Number((((pg1 - pg0) / c.n) * 1000).toFixed(1)),
  };
}

async function run(label, database, schema) {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-server-'));
  const children = [];
  try {
    await initServerDirectory(dir, { database, ...(schema ? { databaseSchema: schema } : {}), tls: 'none' });
    const setup = await openDeployment(dir);
    await setup.admin.addUser('bench', { name: 'ana', password: 'bench-password-1' });
    await setup.admin.addMembers('bench', 'erp-users', ['ana']);
    await setup.admin.putWorkspaceKey('bench', 'quickstart');
    await setup.admin.assign('bench', { workspace: 'quickstart', groups: ['erp-users'] });
    const devices = makeDevices(DEVICES);
    const enrolledAt = new Date().toISOString();
    for (const d of devices)
      await setup.store.putDevice({
        id: d.id,
        sealingKey: d.pub.sealingKey,
        signingKey: d.pub.signingKey,
        user: 'ana',
        hostName: `pc-${d.id.slice(0, 8)}`,
        enrolledAt,
        revokedAt: null,
      });
    await setup.close();
    for (let i = 0; i < PROCESSES; i++) children.push(await startProcess(dir));
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    // Warm-up, not timed: each endpoint's first check-in (the full reply, its envelope sealed);
    // from then on each holds the token of its last reply, as a running host agent does.
    let warm = 0;
    const warmNext = { i: 0 };
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, w) => {
        while (warmNext.i < devices.length) {
          const device = devices[warmNext.i++];
          const r = await post(agent, children[w % children.length].url, ROUTES.checkIn, device, {
            agentVersion: '0.1.0',
            workspaces: [{ workspace: 'quickstart', version: '1.0.0', state: 'running' }],
            events: checkInEvents(device.id, Date.now()),
          });
          if (r.status !== 200) throw new Error(`warm-up check-in failed: ${JSON.stringify(r.json)}`);
          device.token = r.json.token;
          warm++;
        }
      }),
    );
    const latencies = [];
    let ok = 0;
    let failed = 0;
    let changed = 0;
    let next = 0;
    const pgAdmin = schema ? postgres(database, { max: 1, onnotice: () => undefined }) : undefined;
    const pg = pgAdmin ? { sql: pgAdmin, schema } : undefined;
    const cpu0 = await cpuSnapshot(children, pg);
    const load0 = await loadAverage();
    const deadline = Date.now() + SECONDS * 1000;
    const started = Date.now();
    const worker = async (w) => {
      while (Date.now() < deadline) {
        const device = devices[next++ % devices.length];
        if (device.busy) continue;
        device.busy = true;
        const url = children[(w + device.n++) % children.length].url;
        const t0 = performance.now();
        try {
          const r = await post(agent, url, ROUTES.checkIn, device, cheapBody(device, device.token));
          if (r.status === 200) {
            ok++;
            device.token = r.json.token;
            if (r.json.status === 'changed') changed++;
            latencies.push(performance.now() - t0);
          } else failed++;
        } catch {
          failed++;
        } finally {
          device.busy = false;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    const elapsed = (Date.now() - started) / 1000;
    const cpu1 = await cpuSnapshot(children, pg);
    await pgAdmin?.end({ timeout: 5 });
    const load1 = await loadAverage();
    agent.destroy();
    for (const c of children) {
      const exited = new Promise((r) => c.child.once('exit', r));
      c.child.kill('SIGTERM');
      await exited;
    }
    children.length = 0;
    let rows;
    let distinct;
    if (schema) {
      const sql = postgres(database, { max: 1, onnotice: () => undefined });
      const [r] = await sql.unsafe(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM "${schema}".events`);
      rows = r.n;
      distinct = r.d;
      await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
      await sql.end();
    } else {
      const db = new DatabaseSync(join(dir, 'server.db'));
      const r = db.prepare('SELECT count(*) AS n, count(DISTINCT id) AS d FROM events').get();
      rows = Number(r.n);
      distinct = Number(r.d);
      db.close();
    }
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    const result = {
      store: label,
      processes: PROCESSES,
      seconds: Number(elapsed.toFixed(1)),
      checkIns: ok,
      failed,
      perSecond: Math.round(ok / elapsed),
      changedReplies: changed,
      warmUpCheckIns: warm,
      p50ms: Number(pct(0.5).toFixed(1)),
      p99ms: Number(pct(0.99).toFixed(1)),
      eventsExpected: (ok + warm) * 10,
      eventsInDatabase: rows,
      distinctIds: distinct,
      lostOrDuplicated: rows !== (ok + warm) * 10 || distinct !== rows,
      // CPU ms per answered check-in during the timed phase, per component; on this machine's
      // 2 cores, 2000 / (their sum) check-ins per second is the most the CPU allows.
      cpuMsPerCheckIn: {
        server: Number(((cpu1.server - cpu0.server) / ok).toFixed(3)),
        postgres: Number(((cpu1.postgres - cpu0.postgres) / ok).toFixed(3)),
        loadGenerator: Number(((cpu1.load - cpu0.load) / ok).toFixed(3)),
      },
      ...(pg
        ? {
            // postgres above, by process: this run's server connections, the cluster's workers,
            // other clients of the cluster.
            postgresCpuMsPerCheckIn: Object.fromEntries(
              Object.entries(postgresSplit(cpu0, cpu1)).map(([k, v]) => [k, Number((v / ok).toFixed(3))]),
            ),
          }
        : {}),
      loadAverageBeforeAfter: [load0[0], load1[0]],
    };
    if (schema) {
      const copy = await copyBaseline(database, rows);
      result.eventsPerSecondThroughServer = Math.round((ok * 10) / elapsed);
      result.copyRowsPerSecond = copy.perSecond;
      result.serverOfCopy = Number((result.eventsPerSecondThroughServer / copy.perSecond).toFixed(3));
      result.copyPostgresCpuMsPer1000Rows = copy.postgresCpuMsPer1000Rows;
    }
    console.log(JSON.stringify(result));
    return result;
  } finally {
    for (const c of children) c.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  `# ${SECONDS} s of check-ins, ${DEVICES} devices, ${CONCURRENCY} in flight, ${PROCESSES} server process(es), 10 events each`,
);
if (ONLY !== 'sqlite') {
  if (!PG) console.log('# PostgreSQL skipped: set TANDEM_TEST_POSTGRES (or TANDEM_BENCH_POSTGRES)');
  else await run('postgres', PG, `bench_${randomBytes(4).toString('hex')}`);
}
if (ONLY !== 'postgres') await run('sqlite', 'sqlite:server.db', undefined);
