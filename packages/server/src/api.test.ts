import { openEnvelope } from '@tandem/core/crypto';
import { LdapDirectory } from '@tandem/core/identity';
import { ManagementClient, ManagementError, ROUTES } from '@tandem/core/management';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, sampleEvents, signedPost, rawPost, startFixture, type Fixture } from './api.test-helper.js';

let f: Fixture;
beforeEach(async () => {
  f = await startFixture();
  f.directory.add('alice', 'alice-pw', ['erp-users']);
  f.directory.add('bob', 'bob-pw', ['sales']);
  await f.admin.putWorkspaceKey('root', 'quickstart');
  await f.admin.assign('root', { workspace: 'quickstart', groups: ['cn=erp-users,ou=groups,dc=test'], lease: 'P2D' });
});
afterEach(() => f.close());

async function enrolled(user = 'alice', password = `${user}-pw`) {
  const e = await f.endpoint(user);
  const reply = await e.client.enroll({ user, password, hostName: `${user}-pc` });
  return { ...e, reply };
}

async function failure(p: Promise<unknown>): Promise<ManagementError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ManagementError);
  return err as ManagementError;
}

describe('enrollment, check-in and key release', () => {
  it('enrolls a device, gives the group its workspace with an envelope that opens on that device only', async () => {
    const a = await enrolled();
    expect(a.reply.device).toBe(a.device.deviceId);
    expect(a.reply.signIn.groups).toEqual(['cn=erp-users,ou=groups,dc=test']);
    expect((await f.store.getDevice(a.device.deviceId))?.user).toBe('alice');

    const first = await a.client.checkIn({ events: sampleEvents('aaaaaaaa') });
    expect(first.status).toBe('changed');
    if (first.status !== 'changed') return;
    expect(first.events).toEqual({ inserted: 10, duplicates: 0 });
    expect(first.workspaces.map((w) => w.workspace)).toEqual(['quickstart']);
    expect(first.workspaces[0]?.lease).toBe('P2D');
    expect(first.workspaces[0]?.reason).toMatch(/names a group of alice/);
    expect(first.envelopes).toHaveLength(1);
    const envelope = first.envelopes[0]!.envelope;
    using released = await openEnvelope(envelope, {
      trustedAuthorities: [a.reply.authority],
      device: a.device,
      trustedTime: a.trustedTime,
      imageId: 'quickstart',
      version: '1.0.0',
      clock: f.clock,
    });
    const stored = await f.store.getWorkspaceKey('quickstart');
    using serverKey = f.secrets.openDataKey('quickstart', stored!.sealedDataKey);
    expect(released.dataKey.id).toBe(serverKey.id);
    expect(released.grant.lease.notAfter).toBe(new Date(f.clock.t + 2 * 86400_000).toISOString());

    // Another device cannot open it.
    const b = await enrolled('bob');
    await expect(
      openEnvelope(envelope, {
        trustedAuthorities: [a.reply.authority],
        device: b.device,
        trustedTime: b.trustedTime,
        imageId: 'quickstart',
        version: '1.0.0',
        clock: f.clock,
      }),
    ).rejects.toMatchObject({ code: 'TANDEM_AUTH' });

    // The same state and token again: "unchanged"; the same events again: duplicates, not new rows.
    const grant = released.grant;
    const held = [
      {
        workspace: 'quickstart',
        envelopeId: grant.envelopeId,
        issuedAt: grant.lease.issuedAt,
        notAfter: grant.lease.notAfter,
      },
    ];
    const second = await a.client.checkIn({ token: first.token, envelopes: held, events: sampleEvents('aaaaaaaa') });
    expect(second).toEqual({ status: 'unchanged', token: first.token, events: { inserted: 0, duplicates: 10 } });
    expect(f.store.events.size).toBe(10 + 2); // ten session events, two enrollment sign-ins
    expect((await f.store.getDevice(a.device.deviceId))?.lastCheckInAt).toBe(new Date(f.clock.t).toISOString());

    // Past half the lease the envelope is renewed.
    f.clock.t += 86400_000 + 1000;
    const third = await a.client.checkIn({ token: first.token, envelopes: held });
    expect(third.status).toBe('changed');
    if (third.status === 'changed') expect(third.envelopes.map((e) => e.workspace)).toEqual(['quickstart']);
  });

  it('tells the user when the password expires soon', async () => {
    f.directory.passwordExpiresInMs = 3 * 86400_000;
    const a = await enrolled();
    expect(a.reply.signIn.passwordExpiresInMs).toBe(3 * 86400_000);
  });

  it('a change through the admin is seen at the next check-in; deprovisioning stops renewal', async () => {
    const a = await enrolled();
    const first = await a.client.checkIn({});
    if (first.status !== 'changed') throw new Error('expected changed');
    const [assignment] = await f.admin.listAssignments();
    await f.admin.unassign('root', assignment!.id);
    const held = [
      {
        workspace: 'quickstart',
        envelopeId: 'e1',
        issuedAt: new Date(f.clock.t).toISOString(),
        notAfter: new Date(f.clock.t + 1000).toISOString(),
      },
    ];
    const next = await a.client.checkIn({ token: first.token, envelopes: held });
    expect(next).toMatchObject({ status: 'changed', workspaces: [], envelopes: [], deprovisioned: ['quickstart'] });
    await expect(a.client.fetchEnvelope('quickstart')).rejects.toMatchObject({
      code: 'TANDEM_POLICY_DENIED',
      reason: 'not-assigned',
    });
    expect(f.store.auditLog.map((r) => r.action)).toEqual(['workspace.key', 'assignment.add', 'assignment.remove']);
  });

  it('a new version on the channel reaches the endpoint at its next check-in', async () => {
    await f.admin.assign('root', { workspace: 'payroll', channel: 'stable', users: ['alice'] });
    const a = await enrolled();
    const first = await a.client.checkIn({});
    if (first.status !== 'changed') throw new Error('expected changed');
    expect(first.workspaces.find((w) => w.workspace === 'payroll')).toMatchObject({ channel: 'stable' });
    expect(first.workspaces.find((w) => w.workspace === 'payroll')?.version).toBeUndefined();
    expect(await a.client.checkIn({ token: first.token })).toMatchObject({ status: 'unchanged' });
    expect(await f.admin.setChannelVersion('root', 'payroll', 'stable', '2.1.0')).toBe(1);
    const next = await a.client.checkIn({ token: first.token });
    expect(next.status).toBe('changed');
    if (next.status === 'changed')
      expect(next.workspaces.find((w) => w.workspace === 'payroll')).toMatchObject({
        channel: 'stable',
        version: '2.1.0',
      });
    await expect(f.admin.setChannelVersion('root', 'payroll', 'pilot', '3.0.0')).rejects.toMatchObject({
      code: 'TANDEM_NOT_FOUND',
    });
  });

  it('fetches an envelope for its own user only', async () => {
    const a = await enrolled();
    const got = await a.client.fetchEnvelope('quickstart');
    expect(got.workspace).toBe('quickstart');
    const other = await failure(a.client.fetchEnvelope('quickstart', { user: 'bob' }));
    expect(other).toMatchObject({ code: 'TANDEM_POLICY_DENIED', reason: 'other-user', status: 403 });
    const others = await failure(a.client.assignments({ user: 'bob' }));
    expect(others.reason).toBe('other-user');
    const b = await enrolled('bob');
    expect((await b.client.assignments()).workspaces).toEqual([]);
    expect(await failure(b.client.fetchEnvelope('quickstart'))).toMatchObject({ reason: 'not-assigned' });
  });

  it('deletes cached credentials when the account is disabled, locked, expired or its password changed', async () => {
    const a = await enrolled();
    const first = await a.client.checkIn({});
    if (first.status !== 'changed') throw new Error('expected changed');
    const cachedAt = a.reply.signIn.signedInAt;
    for (const [state, reason] of [
      [{ disabled: true }, 'disabled'],
      [{ locked: true }, 'locked'],
      [{ expired: true }, 'expired'],
      [{ passwordChangedAt: new Date(f.clock.t + 1000).toISOString() }, 'password-changed'],
    ] as const) {
      f.directory.add('alice', 'alice-pw', ['erp-users'], state);
      const reply = await a.client.checkIn({
        token: first.token,
        credentialsCachedAt: cachedAt,
        workspaces: [{ workspace: 'quickstart', version: '1.0.0', state: 'running' }],
      });
      expect(reply).toMatchObject({
        status: 'changed',
        workspaces: [],
        envelopes: [],
        deprovisioned: ['quickstart'],
        revokeCredentials: { reason },
      });
    }
    f.directory.add('alice', 'alice-pw', ['erp-users'], { disabled: true });
    expect(await failure(a.client.fetchEnvelope('quickstart'))).toMatchObject({
      code: 'TANDEM_AUTH',
      reason: 'disabled',
    });
  });
});

describe('sign-in', () => {
  it('refuses wrong passwords and account states with typed errors', async () => {
    const e = await f.endpoint('x');
    expect(await failure(e.client.enroll({ user: 'alice', password: 'nope', hostName: 'h' }))).toMatchObject({
      code: 'TANDEM_AUTH',
      reason: 'bad-credentials',
      status: 401,
    });
    f.directory.add('carol', 'carol-pw', [], { locked: true });
    expect(await failure(e.client.enroll({ user: 'carol', password: 'carol-pw', hostName: 'h' }))).toMatchObject({
      reason: 'locked',
    });
    expect(f.store.devices.size).toBe(0);
  });

  it('LDAP unreachable: online sign-in fails clearly; check-in and the envelope it holds keep working within the lease', async () => {
    const a = await enrolled();
    const first = await a.client.checkIn({});
    if (first.status !== 'changed') throw new Error('expected changed');
    f.directory.unreachable = true;
    const err = await failure(a.client.signIn({ user: 'alice', password: 'alice-pw' }));
    expect(err).toMatchObject({ code: 'TANDEM_AUTH', reason: 'directory-unreachable', status: 503, retryable: true });
    expect(err.message).toMatch(/cannot be reached/);
    const during = await a.client.checkIn({ token: first.token, events: sampleEvents('bbbbbbbb') });
    expect(during.events.inserted).toBe(10);
    if (during.status === 'changed') expect(during.revokeCredentials).toBeUndefined();
    using released = await openEnvelope(first.envelopes[0]!.envelope, {
      trustedAuthorities: [a.reply.authority],
      device: a.device,
      trustedTime: a.trustedTime,
      imageId: 'quickstart',
      version: '1.0.0',
      clock: f.clock,
    });
    expect(released.dataKey.id).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('sign-in throttling (SignInThrottle over the store)', () => {
  it('delays repeated failures for the account and source with a typed, retryable refusal', async () => {
    const g = await startFixture({ throttle: true });
    try {
      g.directory.add('alice', 'alice-pw');
      const e = await g.endpoint('t');
      const client = new ManagementClient({ baseUrl: g.url, device: e.device, clock: g.clock, attempts: 1 });
      const reasons: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++)
        reasons.push((await failure(client.enroll({ user: 'alice', password: 'wrong', hostName: 'h' }))).reason);
      expect(reasons.slice(0, 3)).toEqual(['bad-credentials', 'bad-credentials', 'bad-credentials']);
      expect(reasons).toContain('throttled');
      const throttled = await failure(client.enroll({ user: 'alice', password: 'alice-pw', hostName: 'h' }));
      expect(throttled).toMatchObject({ code: 'TANDEM_AUTH', reason: 'throttled', status: 429, retryable: true });
      g.clock.t += 60 * 60_000; // the delay passes
      expect((await client.enroll({ user: 'alice', password: 'alice-pw', hostName: 'h' })).signIn.user).toBe('alice');
    } finally {
      await g.close();
    }
  });
});

describe('a real LDAP directory that cannot be reached', () => {
  it('online sign-in fails with directory-unreachable (retryable), nothing enrolled', async () => {
    const ldap = new LdapDirectory({
      url: 'ldap://127.0.0.1:1',
      flavor: 'openldap',
      bindDn: 'cn=tandem,dc=test',
      bindPassword: 'x',
      baseDn: 'dc=test',
      connectTimeoutMs: 2000,
      timeoutMs: 2000,
    });
    const g = await startFixture({ directory: ldap });
    try {
      const e = await g.endpoint('ldap');
      const client = new ManagementClient({ baseUrl: g.url, device: e.device, clock: g.clock, attempts: 1 });
      const err = await failure(client.enroll({ user: 'ana', password: 'pw', hostName: 'h' }));
      expect(err).toMatchObject({ code: 'TANDEM_AUTH', reason: 'directory-unreachable', status: 503, retryable: true });
      expect(g.store.devices.size).toBe(0);
    } finally {
      await g.close();
    }
  });
});

describe('bad input and faults', () => {
  it('malformed, oversized, unsigned and unknown-route requests', async () => {
    const a = await enrolled();
    const bad = await signedPost(f.url, ROUTES.checkIn, a.device, Buffer.from('{"events": [{"id": 1}]}'));
    expect(bad).toMatchObject({ status: 400, json: { code: 'TANDEM_INVALID_INPUT', reason: 'malformed' } });
    expect(bad.json.message).toMatch(/events\.0/);
    expect(JSON.stringify(bad.json)).not.toMatch(/at .*\.js/);
    const notJson = await signedPost(f.url, ROUTES.checkIn, a.device, Buffer.from('{not json'));
    expect(notJson.json).toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    const big = await signedPost(f.url, ROUTES.events, a.device, Buffer.alloc(2 * 1024 * 1024, 0x20));
    expect(big).toMatchObject({ status: 413, json: { code: 'TANDEM_TOO_LARGE' } });
    const unsigned = await rawPost(f.url, ROUTES.checkIn, Buffer.from('{}'), { 'content-type': 'application/json' });
    expect(unsigned).toMatchObject({ status: 401, json: { code: 'TANDEM_AUTH', reason: 'unsigned' } });
    const nowhere = await signedPost(f.url, '/v1/nowhere', a.device, Buffer.from('{}'));
    expect(nowhere).toMatchObject({ status: 404, json: { code: 'TANDEM_NOT_FOUND' } });
  });

  it('a replayed request, a stale timestamp, a bad signature, an unknown and a revoked device', async () => {
    const a = await enrolled();
    const body = Buffer.from(JSON.stringify({ events: sampleEvents('cccccccc', 1) }));
    const time = new Date(f.clock.t).toISOString();
    const nonce = 'replayreplayreplay01';
    const once = await signedPost(f.url, ROUTES.events, a.device, body, { time, nonce });
    expect(once).toMatchObject({ status: 200, json: { inserted: 1 } });
    const again = await signedPost(f.url, ROUTES.events, a.device, body, { time, nonce });
    expect(again).toMatchObject({ status: 401, json: { code: 'TANDEM_AUTH', reason: 'replayed' } });
    const stale = await signedPost(f.url, ROUTES.events, a.device, body, {
      time: new Date(f.clock.t - 10 * 60_000).toISOString(),
    });
    expect(stale).toMatchObject({ status: 401, json: { reason: 'stale-request' } });
    const stranger = await f.endpoint('stranger');
    const unknown = await failure(stranger.client.checkIn({}));
    expect(unknown).toMatchObject({ code: 'TANDEM_AUTH', reason: 'unknown-device', status: 401 });
    const forged = await signedPost(f.url, ROUTES.events, stranger.device, body, { deviceId: a.device.deviceId });
    expect(forged).toMatchObject({ status: 401, json: { reason: 'bad-signature' } });
    expect(await f.admin.revokeDevice('root', a.device.deviceId)).toBe(true);
    expect(await failure(a.client.checkIn({}))).toMatchObject({ code: 'TANDEM_AUTH', reason: 'revoked', status: 403 });
    expect(await failure(a.client.enroll({ user: 'alice', password: 'alice-pw', hostName: 'h' }))).toMatchObject({
      reason: 'revoked',
    });
  });

  it('the database going away mid-request: the endpoint retries, nothing is lost or duplicated', async () => {
    const a = await enrolled();
    // The first attempt fails before the events are stored; the second after they are (reading
    // the revision); the third gets through and finds them all there already.
    f.store.failNext.set('ingestEvents', 1);
    f.store.failNext.set('revision', 2);
    const reply = await a.client.checkIn({ events: sampleEvents('dddddddd') });
    expect(reply.events).toEqual({ inserted: 0, duplicates: 10 });
    const mine = [...f.store.events.values()].filter((e) => e.event.id.startsWith('dddddddd'));
    expect(mine).toHaveLength(10);
    expect(new Set(mine.map((e) => e.event.id)).size).toBe(10);
    // Down for longer than the client retries: a retryable typed error, and still nothing half-written.
    f.store.down = true;
    const err = await failure(a.client.checkIn({ events: sampleEvents('eeeeeeee') }));
    expect(err).toMatchObject({ status: 503, retryable: true });
    f.store.down = false;
    expect([...f.store.events.values()].filter((e) => e.event.id.startsWith('eeeeeeee'))).toHaveLength(0);
  });
});

describe('admin API', () => {
  it('refuses a wrong token; with the right one assigns, explains and reports, each change audited', async () => {
    const json = { 'content-type': 'application/json' };
    const wrong = await rawPost(f.url, '/v1/admin/assign', Buffer.from('{}'), {
      ...json,
      authorization: 'Bearer nope',
    });
    expect(wrong).toMatchObject({ status: 401, json: { code: 'TANDEM_AUTH', reason: 'bad-admin-token' } });
    const auth = { ...json, authorization: `Bearer ${ADMIN_TOKEN}` };
    const body = Buffer.from(JSON.stringify({ workspace: 'payroll', users: ['bob'] }));
    const assigned = await rawPost(f.url, '/v1/admin/assign', body, auth);
    expect(assigned).toMatchObject({ status: 200, json: { workspace: 'payroll', users: ['bob'] } });
    const bad = await rawPost(f.url, '/v1/admin/assign', Buffer.from('{"workspace": 7}'), auth);
    expect(bad).toMatchObject({ status: 400, json: { code: 'TANDEM_INVALID_INPUT' } });
    const explained = await rawPost(f.url, '/v1/admin/explain', Buffer.from('{"user":"bob"}'), auth);
    expect(explained.json['workspaces']).toMatchObject([{ workspace: 'payroll' }]);
    expect(explained.json['notGiven']).toMatchObject([{ workspace: 'quickstart' }]);
    expect(f.store.auditLog.at(-1)).toMatchObject({ actor: 'admin-api', action: 'assignment.add' });
    const nothing = await rawPost(f.url, '/v1/admin/nothing', Buffer.from('{}'), auth);
    expect(nothing).toMatchObject({ status: 404, json: { code: 'TANDEM_NOT_FOUND' } });
  });
});
