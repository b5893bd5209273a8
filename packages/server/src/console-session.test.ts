import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuiltinDirectory, SignInThrottle } from '@tandem/core/identity';
import { systemClock } from '@tandem/core';
import { ConsoleSessions } from './console-session.js';
import {
  ADMIN,
  NOT_ADMIN,
  OTHER_ADMIN,
  cookieOf,
  openStream,
  raw,
  signIn,
  startConsoleServer,
  type ConsoleServer,
} from './console.test-helper.js';
import { SqliteStore } from './store/sqlite-store.js';

describe('management console: sessions, CSRF, static files, stream (SQLite)', () => {
  let s: ConsoleServer;
  beforeAll(async () => {
    s = await startConsoleServer();
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  it('signs an admin in: cookie flags, a CSRF token, the session read back', async () => {
    const r = await raw(s.url, 'POST', '/v1/console/session', { body: ADMIN });
    expect(r.status).toBe(200);
    const set = String(r.headers['set-cookie']);
    expect(set).toMatch(/^tandem_console=[A-Za-z0-9_-]{43};/);
    for (const flag of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) expect(set).toContain(flag);
    const reply = r.json<{ user: string; csrfToken: string; expiresAt: string; idleExpiresAt: string }>();
    expect(reply.user).toBe('alice');
    expect(reply.csrfToken.length).toBeGreaterThan(20);
    expect(Date.parse(reply.idleExpiresAt)).toBeLessThanOrEqual(Date.parse(reply.expiresAt));
    const back = await raw(s.url, 'GET', '/v1/console/session', { headers: { cookie: cookieOf(r) } });
    expect(back.status).toBe(200);
    expect(back.json()).toMatchObject({ user: 'alice', csrfToken: reply.csrfToken });
    // The store keeps only the cookie's hash.
    const secret = cookieOf(r).split('=')[1]!;
    expect(await s.deployment.store.getConsoleSession(secret)).toBeUndefined();
  });

  it('a member through a nested group gets in; a user outside the admin group is refused', async () => {
    expect((await raw(s.url, 'POST', '/v1/console/session', { body: OTHER_ADMIN })).status).toBe(200);
    const r = await raw(s.url, 'POST', '/v1/console/session', { body: NOT_ADMIN });
    expect(r.status).toBe(403);
    expect(r.json()).toMatchObject({ code: 'TANDEM_AUTH', reason: 'not-admin' });
    expect(r.json<{ message: string }>().message).toContain('admins');
    expect(r.headers['set-cookie']).toBeUndefined();
  });

  it('wrong passwords are delayed (429), for that account from that source only', async () => {
    const wrong = { user: OTHER_ADMIN.user, password: 'not-the-password' };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push(
        (await raw(s.url, 'POST', '/v1/console/session', { body: wrong, localAddress: '127.0.0.5' })).status,
      );
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses).toContain(429);
    // The right password from the same source waits too...
    const same = await raw(s.url, 'POST', '/v1/console/session', { body: OTHER_ADMIN, localAddress: '127.0.0.5' });
    expect(same.status).toBe(429);
    expect(same.json()).toMatchObject({ reason: 'throttled', retryable: true });
    // ...but the owner elsewhere is not locked out by the guesser.
    expect((await raw(s.url, 'POST', '/v1/console/session', { body: OTHER_ADMIN })).status).toBe(200);
  });

  it('bad sign-in bodies are refused naming the field', async () => {
    const r = await raw(s.url, 'POST', '/v1/console/session', { body: { user: 'alice' } });
    expect(r.status).toBe(400);
    expect(r.json<{ message: string }>().message).toContain('password');
  });

  it('admin calls with the cookie need the CSRF token; the actor in the audit is console:<user>', async () => {
    const login = await signIn(s.url, ADMIN);
    const body = { workspace: 'quickstart', groups: ['builtin:group:erp'] };
    const none = await raw(s.url, 'POST', '/v1/admin/assign', { headers: { cookie: login.cookie }, body });
    expect(none.status).toBe(403);
    expect(none.json()).toMatchObject({ reason: 'csrf' });
    const wrong = await raw(s.url, 'POST', '/v1/admin/assign', {
      headers: { cookie: login.cookie, 'x-csrf-token': login.csrf.slice(0, -2) + 'xx' },
      body,
    });
    expect(wrong.status).toBe(403);
    // A read action is a POST too: refused without the token.
    expect(
      (await raw(s.url, 'POST', '/v1/admin/overview', { headers: { cookie: login.cookie }, body: {} })).status,
    ).toBe(403);
    // Another session's token does not fit this one.
    const carol = await signIn(s.url, OTHER_ADMIN);
    const crossed = await raw(s.url, 'POST', '/v1/admin/overview', {
      headers: { cookie: login.cookie, 'x-csrf-token': carol.csrf },
      body: {},
    });
    expect(crossed.status).toBe(403);
    expect(await s.deployment.store.listAssignments()).toHaveLength(0);
    const ok = await login.admin('assign', body);
    expect(ok.status).toBe(200);
    const audit = (await s.deployment.admin.audit()).find((a) => a.action === 'assignment.add');
    expect(audit?.actor).toBe('console:alice');
    // No cookie and no bearer: 401.
    expect((await raw(s.url, 'POST', '/v1/admin/overview', { body: {} })).status).toBe(401);
  });

  it('logout deletes the session: the cookie is refused afterwards', async () => {
    const login = await signIn(s.url, ADMIN);
    expect((await raw(s.url, 'DELETE', '/v1/console/session', { headers: { cookie: login.cookie } })).status).toBe(403);
    const out = await raw(s.url, 'DELETE', '/v1/console/session', {
      headers: { cookie: login.cookie, 'x-csrf-token': login.csrf },
    });
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    const after = await login.admin('overview');
    expect(after.status).toBe(401);
    expect(after.json()).toMatchObject({ reason: 'no-session' });
    expect((await raw(s.url, 'GET', '/v1/console/session', { headers: { cookie: login.cookie } })).status).toBe(401);
  });

  it('serves the console with its CSP and security headers, caching hashed assets, refusing traversal', async () => {
    const root = await raw(s.url, 'GET', '/');
    expect(root.status).toBe(302);
    expect(root.headers['location']).toBe('/console/');
    const index = await raw(s.url, 'GET', '/console/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(index.headers['content-security-policy']);
    for (const d of [
      "default-src 'self'",
      "script-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ])
      expect(csp).toContain(d);
    expect(csp).not.toContain('unsafe-inline');
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.headers['referrer-policy']).toBe('no-referrer');
    expect(index.headers['cache-control']).toBe('no-cache');
    const asset = await raw(s.url, 'GET', '/console/assets/app-1a2b3c.js');
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toContain('immutable');
    // A client-side route gets the page; a missing file does not.
    expect((await raw(s.url, 'GET', '/console/endpoints/tandem-device1:abc')).text).toContain('<title>Tandem</title>');
    expect((await raw(s.url, 'GET', '/console/assets/missing.js')).status).toBe(404);
    for (const path of [
      '/console/../secret.txt',
      '/console/%2e%2e/secret.txt',
      '/console/assets/..%2f..%2fsecret.txt',
      '/console/..%5csecret.txt',
      '/console/%00',
      '/console/.hidden',
      '/console/%E0%A4%A',
    ]) {
      const r = await raw(s.url, 'GET', path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.text, path).not.toContain('TOP-SECRET-FILE');
    }
    // The JSON API of the console carries the headers too.
    const session = await raw(s.url, 'GET', '/v1/console/session');
    expect(session.status).toBe(401);
    expect(session.headers['content-security-policy']).toBe(csp);
  });

  it('the stream delivers a change made through another server process and new events', async () => {
    const login = await signIn(s.url, ADMIN);
    // Without credentials the stream is refused.
    await expect(openStream(s.url, {})).rejects.toThrow(/401/);
    const stream = await openStream(s.url, { cookie: login.cookie });
    try {
      await stream.waitFor((f) => f.event === 'hello', 'the hello frame');
      const other = await s.second();
      const carol = await signIn(other.url, OTHER_ADMIN);
      const r = await carol.admin('assign', { workspace: 'cad', users: ['dave'] });
      expect(r.status).toBe(200);
      const id = r.json<{ id: string }>().id;
      await stream.waitFor(
        (f) => f.event === 'change' && (JSON.parse(f.data) as { scope: string; id?: string }).id === id,
        'the assignment change',
      );
      await other.deployment.store.putDevice({
        id: 'tandem-device1:stream',
        sealingKey: 'x',
        signingKey: 'y',
        user: 'dave',
        hostName: 'pc-1',
        enrolledAt: new Date().toISOString(),
      });
      const now = new Date().toISOString();
      await other.deployment.store.ingestEvents([
        {
          device: 'tandem-device1:stream',
          user: 'dave',
          receivedAt: now,
          event: { id: 'ev-stream-1', type: 'session.error', at: now, workspace: 'cad', data: {} } as never,
        },
      ]);
      const f = await stream.waitFor(
        (x) => x.event === 'events' && x.data.includes('ev-stream-1'),
        'the new event on the stream',
      );
      expect((JSON.parse(f.data) as { events: { device: string }[] }).events[0]?.device).toBe('tandem-device1:stream');
    } finally {
      stream.close();
    }
  }, 120_000);

  it('the bearer token opens the stream too (the CLI)', async () => {
    const token = (await import('./deployment.js')).readAdminToken;
    const stream = await openStream(s.url, { authorization: `Bearer ${await token(join(s.dir, 'server'))}` });
    try {
      await stream.waitFor((f) => f.event === 'hello', 'the hello frame');
    } finally {
      stream.close();
    }
  });
});

describe('console sessions expire', () => {
  it('after the idle limit, and after the absolute limit however busy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tandem-console-exp-'));
    let now = Date.parse('2026-05-02T08:00:00Z');
    const clock = { now: () => now, sleep: systemClock.sleep };
    const store = new SqliteStore({ path: join(dir, 's.db'), clock });
    try {
      await store.migrate();
      const directory = new BuiltinDirectory(store, { clock });
      await directory.createUser({ name: 'alice', password: ADMIN.password });
      await store.putGroup({ name: 'admins', members: ['alice'] });
      const sessions = new ConsoleSessions({
        store,
        directory,
        throttle: new SignInThrottle(store, { clock }),
        adminGroup: 'admins',
        clock,
        idleMs: 30 * 60_000,
        absoluteMs: 2 * 3600_000,
      });
      const headersOf = (secret: string) => ({ cookie: `tandem_console=${secret}` });
      const a = await sessions.signIn('alice', ADMIN.password, '127.0.0.1');
      now += 29 * 60_000;
      expect((await sessions.find(headersOf(a.secret)))?.record.user).toBe('alice');
      now += 29 * 60_000; // 29 minutes after the last use: still in
      expect(await sessions.find(headersOf(a.secret))).toBeDefined();
      now += 31 * 60_000; // idle for 31 minutes
      await expect(sessions.find(headersOf(a.secret))).rejects.toMatchObject({ reason: 'session-expired' });
      await expect(sessions.find(headersOf(a.secret))).rejects.toMatchObject({ reason: 'no-session' });
      const b = await sessions.signIn('alice', ADMIN.password, '127.0.0.1');
      for (let i = 0; i < 4; i++) {
        now += 25 * 60_000;
        expect(await sessions.find(headersOf(b.secret))).toBeDefined();
      }
      now += 25 * 60_000; // 125 minutes in, used every 25: past the absolute 2 hours
      await expect(sessions.find(headersOf(b.secret))).rejects.toMatchObject({ reason: 'session-expired' });
      expect(await sessions.find({})).toBeUndefined();
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
