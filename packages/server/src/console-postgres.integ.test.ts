// The console over a real PostgreSQL shared by two server processes: a session made through one
// is accepted by the other (sessions live in the store), the stream of one shows a change made
// through the other (LISTEN/NOTIFY) and a new event, and the audit names the console user.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  NOT_ADMIN,
  OTHER_ADMIN,
  openStream,
  raw,
  signIn,
  startConsoleServer,
  type ConsoleServer,
} from './console.test-helper.js';
import { POSTGRES_URL, postgresGate, TestSchema } from './store/postgres-test-db.test-helper.js';

const gate = await postgresGate();

describe.skipIf(!gate.enabled)('management console on PostgreSQL (two server processes)', () => {
  const schema = new TestSchema();
  let s: ConsoleServer;
  beforeAll(async () => {
    s = await startConsoleServer({ database: POSTGRES_URL, databaseSchema: schema.name });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await schema.drop();
  });

  it('a session signed in through one process works through the other; logout ends it in both', async () => {
    const other = await s.second();
    const login = await signIn(s.url, ADMIN);
    const there = await raw(other.url, 'POST', '/v1/admin/overview', {
      headers: { cookie: login.cookie, 'x-csrf-token': login.csrf },
      body: {},
    });
    expect(there.status).toBe(200);
    expect(there.json()).toMatchObject({ endpoints: { total: 0 } });
    expect((await raw(other.url, 'POST', '/v1/console/session', { body: NOT_ADMIN })).status).toBe(403);
    const out = await raw(other.url, 'POST', '/v1/console/logout', {
      headers: { cookie: login.cookie, 'x-csrf-token': login.csrf },
    });
    expect(out.status).toBe(200);
    expect((await login.admin('overview')).status).toBe(401);
  }, 120_000);

  it("the stream shows another admin's change through the other process, and a new event", async () => {
    const login = await signIn(s.url, ADMIN);
    const stream = await openStream(s.url, { cookie: login.cookie });
    try {
      await stream.waitFor((f) => f.event === 'hello', 'the hello frame');
      const other = await s.second();
      const carol = await signIn(other.url, OTHER_ADMIN);
      const r = await carol.admin('assign', {
        workspace: 'erp',
        groups: ['builtin:group:erp-users'],
        channel: 'pilot',
        version: '1.0.0',
      });
      expect(r.status).toBe(200);
      await stream.waitFor((f) => f.event === 'change' && f.data.includes('"assignment"'), 'the assignment change');
      expect((await carol.admin('channel', { workspace: 'erp', channel: 'pilot', version: '1.1.0' })).status).toBe(200);
      await stream.waitFor((f) => f.event === 'change' && f.data.includes('"channel"'), 'the channel move');
      const now = new Date().toISOString();
      await other.deployment.store.ingestEvents([
        {
          device: 'tandem-device1:pg-stream',
          user: 'dave',
          receivedAt: now,
          event: { id: 'ev-pg-stream-1', type: 'sync.failed', at: now, workspace: 'erp', data: {} } as never,
        },
      ]);
      await stream.waitFor((f) => f.event === 'events' && f.data.includes('ev-pg-stream-1'), 'the new event');
      const audit = await login.admin('audit', { actor: 'console:carol' });
      const actions = audit.json<{ rows: { action: string; actor: string }[] }>().rows.map((a) => a.action);
      expect(actions).toEqual(expect.arrayContaining(['assignment.add', 'channel.version']));
      const channels = await login.admin('channels');
      expect(channels.json()).toMatchObject({
        source: 'assignments',
        workspaces: [
          { workspace: 'erp', channels: [{ channel: 'pilot', version: '1.1.0', groups: ['builtin:group:erp-users'] }] },
        ],
      });
    } finally {
      stream.close();
    }
  }, 180_000);
});
