// The server process against PostgreSQL connections killed (pg_terminate_backend) while reads
// of every kind are in flight: the shared pool's reads, the check-in group commit, the admin
// API's queries and the LISTEN connection. The process must live through it, each request in
// flight must end as a success or a retryable 503, and the next requests must succeed with
// nothing lost or duplicated.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEndpointKeys } from '@tandem/core/crypto';
import { ManagementClient, ManagementError } from '@tandem/core/management';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvents } from './api.test-helper.js';
import { initServerDirectory, openDeployment, readAdminToken, type Deployment } from './deployment.js';
import { startServer, stop } from './scale-out.test-helper.js';
import { POSTGRES_URL, TestSchema, postgresGate } from './store/postgres-test-db.test-helper.js';

const gate = await postgresGate();

// Enough rounds that the old code (an unawaited type fetch on each new connection, released
// dead connections) died in every run tried by hand; each round kills a few dozen times.
const ROUNDS = 12;
const KILLS_PER_ROUND = 40;

const ADMIN_READS: readonly [string, unknown][] = [
  ['endpoints', {}],
  ['overview', {}],
  ['endpoint-search', {}],
  ['events', {}],
  ['failures', {}],
  ['versions', {}],
  ['audit', {}],
  ['assignments', {}],
  ['users', {}],
];

/** An admin call's outcome: its status and JSON body, thrown on nothing (the test judges). */
async function adminCall(
  url: string,
  token: string,
  action: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}/v1/admin/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe.skipIf(!gate.enabled)('a server process whose PostgreSQL connections are killed', () => {
  const schema = new TestSchema();
  let dir: string;
  let local: Deployment;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-scale-out-faults-'));
    await initServerDirectory(join(dir, 'server'), {
      database: POSTGRES_URL,
      databaseSchema: schema.name,
      tls: 'none',
    });
    local = await openDeployment(join(dir, 'server'));
  }, 120_000);
  afterAll(async () => {
    for (const c of children) await stop(c);
    await local?.close();
    await schema.drop();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it(
    'lives through kills during check-ins, admin reads and LISTEN; the next requests succeed; events stored once',
    { timeout: 900_000 },
    async () => {
      await local.admin.addUser('setup', { name: 'ana', password: 'ana-secret-1' });
      await local.admin.addMembers('setup', 'erp-users', ['ana']);
      await local.admin.putWorkspaceKey('setup', 'quickstart');
      await local.admin.assign('setup', { workspace: 'quickstart', groups: ['erp-users'] });
      const server = await startServer(join(dir, 'server'));
      children.push(server.child);
      let exited: string | undefined;
      server.child.once('exit', (code, signal) => (exited = `code ${code}, signal ${signal}`));
      const token = await readAdminToken(join(dir, 'server'));
      const { device } = await openEndpointKeys(join(dir, 'endpoint', 'keys'));
      // Few attempts: a check-in that gives up during the kills is sent again after them.
      const client = new ManagementClient({ baseUrl: server.url, device, attempts: 2, retryDelayMs: 50 });
      await client.enroll({ user: 'ana', password: 'ana-secret-1', hostName: 'pc-faults' });
      const sql = schema.admin();
      const prefixes = Array.from({ length: ROUNDS }, (_, i) => (0x30000000 + i).toString(16));
      try {
        for (let round = 0; round < ROUNDS; round++) {
          let settled = false;
          // Kills every server connection again and again, so that connections are also killed
          // while being set up (the pool replaced after a loss opens new ones at once).
          const killer = (async () => {
            for (let k = 0; k < KILLS_PER_ROUND && !settled; k++) {
              await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE pid <> pg_backend_pid() AND application_name LIKE ${`tandem-server:${schema.name}%`}`;
            }
          })();
          const checkIn = client.checkIn({ events: sampleEvents(prefixes[round]!) }).then(
            () => 'ok' as const,
            (err: unknown) => {
              // Only a retryable refusal (the store unavailable) is acceptable mid-kill.
              if (!(err instanceof ManagementError) || !err.retryable) throw err;
              return 'retry' as const;
            },
          );
          const reads = ADMIN_READS.map(([action, body]) => adminCall(server.url, token, action, body));
          const outcomes = await Promise.all(reads);
          await checkIn;
          settled = true;
          await killer;
          for (const o of outcomes) {
            if (o.status !== 200)
              expect(o).toMatchObject({ status: 503, body: { code: 'TANDEM_STORE_UNAVAILABLE', retryable: true } });
          }
          expect(exited).toBeUndefined();
          // The next requests succeed: the round's check-in (again, idempotent by event id) and
          // every admin read.
          const after = await new ManagementClient({
            baseUrl: server.url,
            device,
            attempts: 8,
            retryDelayMs: 250,
          }).checkIn({
            events: sampleEvents(prefixes[round]!),
          });
          expect(after.events.inserted + after.events.duplicates).toBe(10);
          for (const [action, body] of ADMIN_READS) {
            // Retried on a 503 as a console would (a connection killed last may not have closed
            // on the process's side yet); anything but a 200 after that fails.
            let outcome = await adminCall(server.url, token, action, body);
            for (let attempt = 1; outcome.status === 503 && attempt < 8; attempt++) {
              await new Promise((r) => setTimeout(r, 250 * attempt));
              outcome = await adminCall(server.url, token, action, body);
            }
            expect(outcome.status, action).toBe(200);
          }
          expect(exited).toBeUndefined();
        }
        const again = await client.checkIn({ events: sampleEvents(prefixes[0]!) });
        expect(again.events).toEqual({ inserted: 0, duplicates: 10 });
        if (again.status !== 'changed') throw new Error('a check-in without a token gets the whole state');
        expect(await client.checkIn({ token: again.token })).toMatchObject({ status: 'unchanged' });
        const stored = await local.store.queryEvents({
          device: device.deviceId,
          type: 'session.transition',
          limit: 1000,
        });
        expect(stored.events).toHaveLength(ROUNDS * 10);
        expect(new Set(stored.events.map((e) => e.event.id)).size).toBe(ROUNDS * 10);
        // A change made now still reaches the process over LISTEN (it listened again after the kills):
        // the endpoint's next check-in gets the new assignment.
        await local.admin.assign('setup', { workspace: 'payroll', users: ['ana'] });
        const next = await client.checkIn({ token: again.token });
        expect(next.status).toBe('changed');
        expect(exited).toBeUndefined();
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  );
});
