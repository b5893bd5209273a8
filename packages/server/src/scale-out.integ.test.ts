import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEndpointKeys } from '@tandem/core/crypto';
import { ManagementClient } from '@tandem/core/management';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvents } from './api.test-helper.js';
import { initServerDirectory, openDeployment, readAdminToken, type Deployment } from './deployment.js';
import { startServer, stop } from './scale-out.test-helper.js';
import { POSTGRES_URL, TestSchema, postgresGate } from './store/postgres-test-db.test-helper.js';

const gate = await postgresGate();

async function adminCall(url: string, token: string, action: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${url}/v1/admin/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`admin ${action}: ${JSON.stringify(json)}`);
  return json;
}

describe.skipIf(!gate.enabled)('two server processes on one PostgreSQL', () => {
  const schema = new TestSchema();
  let dir: string;
  let local: Deployment;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-scale-out-'));
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
    'a change made through one process is seen by an endpoint checking in through the other at once; events stored once',
    { timeout: 180_000 },
    async () => {
      await local.admin.addUser('setup', { name: 'ana', password: 'ana-secret-1' });
      await local.admin.addMembers('setup', 'erp-users', ['ana']);
      await local.admin.putWorkspaceKey('setup', 'quickstart');
      await local.admin.assign('setup', { workspace: 'quickstart', groups: ['erp-users'] });
      const a = await startServer(join(dir, 'server'));
      children.push(a.child);
      const b = await startServer(join(dir, 'server'));
      children.push(b.child);
      expect(a.url).not.toBe(b.url);

      const keysDir = join(dir, 'endpoint', 'keys');
      const { device } = await openEndpointKeys(keysDir);
      const viaA = new ManagementClient({ baseUrl: a.url, device });
      const viaB = new ManagementClient({ baseUrl: b.url, device });
      await viaA.enroll({ user: 'ana', password: 'ana-secret-1', hostName: 'pc-1' });
      const first = await viaB.checkIn({ events: sampleEvents('11111111') });
      expect(first).toMatchObject({ status: 'changed', workspaces: [{ workspace: 'quickstart' }] });
      if (first.status !== 'changed') return;
      expect(first.envelopes).toHaveLength(1);
      const again = await viaA.checkIn({ token: first.token, events: sampleEvents('11111111') });
      expect(again).toMatchObject({ status: 'unchanged', events: { inserted: 0, duplicates: 10 } });

      // An administrator assigns another workspace through process A's admin API ...
      const token = await readAdminToken(join(dir, 'server'));
      await adminCall(a.url, token, 'assign', { workspace: 'payroll', users: ['ana'] });
      // ... and the endpoint's very next check-in, through B, gets it.
      const next = await viaB.checkIn({ token: first.token });
      expect(next.status).toBe('changed');
      if (next.status === 'changed') expect(next.workspaces.map((w) => w.workspace)).toEqual(['payroll', 'quickstart']);

      const stored = await local.store.queryEvents({ device: device.deviceId, type: 'session.transition' });
      expect(stored.events).toHaveLength(10);
      expect(new Set(stored.events.map((e) => e.event.id)).size).toBe(10);
    },
  );

  it(
    'the database connections killed mid-request: the endpoint retries, nothing lost, nothing duplicated',
    { timeout: 180_000 },
    async () => {
      const { device } = await openEndpointKeys(join(dir, 'endpoint2', 'keys'));
      const server = await startServer(join(dir, 'server'));
      children.push(server.child);
      const client = new ManagementClient({ baseUrl: server.url, device, attempts: 8, retryDelayMs: 250 });
      await client.enroll({ user: 'ana', password: 'ana-secret-1', hostName: 'pc-2' });
      const sql = schema.admin();
      try {
        const kill = async (): Promise<void> => {
          await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND application_name LIKE ${`tandem-server:${schema.name}%`}`;
        };
        const prefixes = Array.from({ length: 12 }, (_, i) => `${(0x20000000 + i).toString(16)}`);
        const results = await Promise.all(
          prefixes.map(async (p, i) => {
            if (i === 4) await kill();
            return client.checkIn({ events: sampleEvents(p) });
          }),
        );
        await kill();
        const last = await client.checkIn({ events: sampleEvents(prefixes[0]!) });
        expect(last.events).toEqual({ inserted: 0, duplicates: 10 });
        expect(results.reduce((n, r) => n + r.events.inserted + r.events.duplicates, 0)).toBe(120);
        const stored = await local.store.queryEvents({
          device: device.deviceId,
          type: 'session.transition',
          limit: 1000,
        });
        expect(stored.events).toHaveLength(120);
        expect(new Set(stored.events.map((e) => e.event.id)).size).toBe(120);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  );
});
