// The admin actions the console uses, through HTTP with a console session (SQLite): overview,
// the endpoint table, device detail, directory search, policy validation, explain, channels,
// events as CSV.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, signIn, startConsoleServer, type ConsoleLogin, type ConsoleServer } from './console.test-helper.js';

const LAYER = {
  apiVersion: 'tandem/v1',
  kind: 'PolicyLayer',
  layer: 'machine-policy',
  policy: { dataTransfer: [{ id: 'dlp', channel: 'clipboard', direction: 'guest-to-host', action: 'deny' }] },
  assignments: [],
};

describe('console admin actions', () => {
  let s: ConsoleServer;
  let a: ConsoleLogin;
  beforeAll(async () => {
    s = await startConsoleServer();
    a = await signIn(s.url, ADMIN);
    const store = s.deployment.store;
    const now = Date.now();
    for (let n = 0; n < 30; n++) {
      const id = `tandem-device1:c${String(n).padStart(3, '0')}`;
      await store.putDevice({
        id,
        sealingKey: 'x',
        signingKey: 'y',
        user: n % 2 ? 'alice' : 'bob',
        hostName: `pc-${n}`,
        enrolledAt: new Date(now - 86_400_000 * 3).toISOString(),
      });
      if (n < 20)
        await store.recordCheckIn(id, new Date(n < 10 ? now - 1000 : now - 3600_000).toISOString(), {
          agentVersion: '0.4.0',
          workspaces: [{ workspace: 'erp', version: n < 5 ? '2.0.0' : '1.0.0', state: n < 3 ? 'running' : 'stopped' }],
          envelopes: [
            {
              workspace: 'erp',
              envelopeId: `env-${n}`,
              issuedAt: new Date(now).toISOString(),
              notAfter: '2099-01-01T00:00:00.000Z',
            },
          ],
        });
    }
    await store.ingestEvents([
      {
        device: 'tandem-device1:c001',
        user: 'alice',
        receivedAt: new Date(now).toISOString(),
        event: {
          id: 'ev-1',
          type: 'session.error',
          at: new Date(now - 5000).toISOString(),
          workspace: 'erp',
          data: { message: 'a, "b"' },
        } as never,
      },
    ]);
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  it('overview counts endpoints, sessions, failures and versions', async () => {
    const r = await a.admin('overview');
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({
      endpoints: { total: 30, onlineNow: 10, lastDay: 20, revoked: 0 },
      sessionsRunning: 3,
      failuresLastDay: { total: 1, byType: [{ type: 'session.error', count: 1 }] },
    });
  });

  it('endpoint-search pages, filters and sorts; bad input names the field', async () => {
    const page = await a.admin('endpoint-search', { state: 'online', sort: 'hostName', order: 'desc', limit: 4 });
    const body = page.json<{ total: number; rows: { device: string; state: string; hostName: string }[] }>();
    expect(body.total).toBe(10);
    expect(body.rows.map((r) => r.hostName)).toEqual(['pc-9', 'pc-8', 'pc-7', 'pc-6']);
    expect(body.rows.every((r) => r.state === 'online')).toBe(true);
    expect((await a.admin('endpoint-search', { version: '2.0.0' })).json()).toMatchObject({ total: 5 });
    expect((await a.admin('endpoint-search', { state: 'never' })).json()).toMatchObject({ total: 10 });
    const bad = await a.admin('endpoint-search', { limit: 5000 });
    expect(bad.status).toBe(400);
    expect(bad.json<{ message: string }>().message).toContain('limit');
  });

  it('device detail gives user, versions, lease expiry and last events; unknown device 404', async () => {
    const r = await a.admin('device', { id: 'tandem-device1:c001' });
    expect(r.json()).toMatchObject({
      device: { id: 'tandem-device1:c001', user: 'alice', agentVersion: '0.4.0', state: 'online' },
      workspaces: [{ workspace: 'erp', version: '2.0.0', state: 'running' }],
      leases: [{ workspace: 'erp', notAfter: '2099-01-01T00:00:00.000Z' }],
      events: [{ event: { id: 'ev-1' } }],
    });
    expect((await a.admin('device', { id: 'tandem-device1:none' })).status).toBe(404);
  });

  it('directory search finds users and groups of the built-in directory', async () => {
    const r = await a.admin('directory-search', { query: 'adm' });
    expect(r.json()).toMatchObject({ directory: 'builtin', groups: [{ name: 'admins', dn: 'builtin:group:admins' }] });
    const u = await a.admin('directory-search', { query: 'ali', kind: 'user' });
    expect(u.json()).toMatchObject({ users: [{ name: 'alice' }], groups: [] });
  });

  it("validate-policy gives core's messages with paths, for objects and for text", async () => {
    expect((await a.admin('validate-policy', { document: LAYER })).json()).toEqual({ ok: true, issues: [] });
    const bad = await a.admin('validate-policy', {
      document: {
        ...LAYER,
        policy: { dataTransfer: [{ ...LAYER.policy.dataTransfer[0], action: 'maybe' }] },
        extra: 1,
      },
    });
    const issues = bad.json<{ ok: boolean; issues: { path: string; message: string }[] }>();
    expect(issues.ok).toBe(false);
    expect(issues.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['policy.dataTransfer[0].action', 'extra']),
    );
    expect(issues.issues.find((i) => i.path === 'extra')?.message).toContain('unknown key');
    const text = await a.admin('validate-policy', { document: 'apiVersion: tandem/v1\nkind: PolicyLayer\nlayer: [\n' });
    expect(text.json()).toMatchObject({ ok: false });
  });

  it('explain decides a question for a user or a device, naming rule and layer', async () => {
    expect((await a.admin('policy', { name: 'site', document: LAYER })).status).toBe(200);
    expect(
      (
        await a.admin('assign', {
          workspace: 'erp',
          users: ['alice'],
          policyLayers: ['site'],
          channel: 'stable',
          version: '1.0.0',
        })
      ).status,
    ).toBe(200);
    const q = { transfer: { channel: 'clipboard', direction: 'guest-to-host' } };
    const r = await a.admin('explain', { user: 'alice', workspace: 'erp', question: q });
    expect(r.json()).toMatchObject({
      user: 'alice',
      decisions: [
        {
          workspace: 'erp',
          decision: { kind: 'transfer', outcome: 'deny', rule: { label: 'dlp' }, layer: 'machine-policy' },
        },
      ],
    });
    expect(r.json<{ decisions: { lines: string[] }[] }>().decisions[0]?.lines[0]).toBe('decision: deny');
    const viaDevice = await a.admin('explain', { device: 'tandem-device1:c001', question: q });
    expect(viaDevice.json()).toMatchObject({ user: 'alice', device: { id: 'tandem-device1:c001' } });
    expect((await a.admin('explain', { user: 'bob', workspace: 'erp', question: q })).status).toBe(404);
    expect((await a.admin('explain', { question: q })).status).toBe(400);
    const channels = await a.admin('channels');
    expect(channels.json()).toMatchObject({
      source: 'assignments',
      workspaces: [
        {
          workspace: 'erp',
          versions: ['1.0.0', '2.0.0'],
          channels: [{ channel: 'stable', version: '1.0.0', users: ['alice'] }],
        },
      ],
    });
  });

  it('events export as CSV', async () => {
    const r = await a.admin('events', { format: 'csv', type: 'session.error' });
    const csv = r.json<{ csv: string }>().csv;
    expect(csv.split('\n')[0]).toContain('type');
    expect(csv).toContain('ev-1');
  });
});
