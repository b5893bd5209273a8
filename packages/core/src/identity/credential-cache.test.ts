import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { keysDirOf, openEndpointKeys } from '../crypto/release.js';
import type { TrustedTime } from '../crypto/trusted-time.js';
import { TEST_SCRYPT } from './builtin.test-helper.js';
import { credentialFileOf, CredentialCache, envelopeFileOf } from './credential-cache.js';
import type { SignInResult } from './directory.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-03-01T08:00:00Z');

/** A clock a test can set anywhere, back included. */
class SettableClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  sleep(): Promise<void> {
    return Promise.resolve();
  }
}

const online: SignInResult = {
  user: {
    name: 'ana',
    dn: 'uid=ana,ou=people,dc=corp',
    displayName: 'Ana Archer',
    state: {
      disabled: false,
      locked: false,
      expired: false,
      passwordChangedAt: '2026-02-01T00:00:00.000Z',
      passwordExpiresAt: '2026-05-01T00:00:00.000Z',
    },
  },
  groups: [{ name: 'erp-users', dn: 'cn=erp-users,ou=groups,dc=corp' }],
};

describe('CredentialCache', () => {
  let stateDir: string;
  let clock: SettableClock;
  let trustedTime: TrustedTime;
  let cache: CredentialCache;

  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'tandem-cred-'));
    clock = new SettableClock(T0);
    ({ trustedTime } = await openEndpointKeys(keysDirOf(stateDir), { clock }));
    cache = await CredentialCache.open({ stateDir, trustedTime, scrypt: TEST_SCRYPT });
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('signs in offline after an online sign-in, from a 0600 file holding a verifier, not the password', async () => {
    await cache.remember('ana', 'ana-secret-pw', online);
    clock.t = T0 + 3 * DAY;
    const r = await cache.signInOffline('Ana', 'ana-secret-pw');
    expect(r).toMatchObject({
      offline: true,
      user: { name: 'ana' },
      groups: [{ name: 'erp-users' }],
      cachedAt: '2026-03-01T08:00:00.000Z',
      validUntil: '2026-03-15T08:00:00.000Z',
    });
    expect(r.passwordExpiresInMs).toBe(Date.parse('2026-05-01T00:00:00.000Z') - clock.t);
    const file = credentialFileOf(stateDir, 'ana');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('ana-secret-pw');
    expect(text).toMatch(/"verifier": "scrypt\$/);
  });

  it('wrong offline passwords are delayed with a growing delay; the right one then works and resets it', async () => {
    await cache.remember('ana', 'pw', online);
    for (let i = 0; i < 3; i++)
      await expect(cache.signInOffline('ana', 'x')).rejects.toMatchObject({ reason: 'bad-credentials' });
    await expect(cache.signInOffline('ana', 'x')).rejects.toMatchObject({ reason: 'bad-credentials' }); // 4th: 2 s from now
    await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ reason: 'throttled', retryAfterMs: 2000 });
    clock.t += 2000;
    await expect(cache.signInOffline('ana', 'x')).rejects.toMatchObject({ reason: 'bad-credentials' }); // 5th: 4 s
    await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ reason: 'throttled', retryAfterMs: 4000 });
    clock.t += 4000;
    expect((await cache.signInOffline('ana', 'pw')).user.name).toBe('ana');
    await expect(cache.signInOffline('ana', 'x')).rejects.toMatchObject({ reason: 'bad-credentials' });
    expect((await cache.signInOffline('ana', 'pw')).user.name).toBe('ana'); // counter was reset
  });

  it('nobody cached: the same refusal as a wrong password', async () => {
    const e = await cache.signInOffline('bob', 'pw').catch((x: unknown) => x);
    expect(e).toMatchObject({
      reason: 'bad-credentials',
      message: 'The user name or password is incorrect. Check them and try again.',
    });
  });

  it('ends after the offline validity', async () => {
    await cache.remember('ana', 'pw', online);
    clock.t = T0 + 14 * DAY;
    await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ reason: 'offline-expired' });
  });

  it('a clock set back cannot extend it: refused outright, or judged by the trusted time', async () => {
    await cache.remember('ana', 'pw', online);
    clock.t = T0 + 13 * DAY;
    await cache.signInOffline('ana', 'pw'); // the trusted time moves to day 13
    clock.t = T0 + DAY; // set back 12 days
    await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ code: 'TANDEM_CLOCK_ROLLBACK' });
    // An envelope seen at day 14 + 2 min; the clock 3 min behind that (within the tolerance).
    await trustedTime.observe(T0 + 14 * DAY + 120_000, 'envelope');
    clock.t = T0 + 14 * DAY - 60_000;
    await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ reason: 'offline-expired' });
  });

  it('a cached password expiry that has passed is refused as password-expired', async () => {
    await cache.remember('ana', 'pw', online);
    await trustedTime.observe(Date.parse('2026-05-01T00:00:00Z'), 'envelope');
    clock.t = Date.parse('2026-05-01T00:00:00Z');
    await expect(
      (
        await CredentialCache.open({ stateDir, trustedTime, scrypt: TEST_SCRYPT, maxOfflineMs: 100 * DAY })
      ).signInOffline('ana', 'pw'),
    ).rejects.toMatchObject({ reason: 'password-expired' });
  });

  it("reconcile: a disabled, locked, expired or unknown account, or a changed password, deletes the credentials and the user's envelopes", async () => {
    const env = async (id: string): Promise<string> => {
      const f = envelopeFileOf(stateDir, id);
      await mkdir(join(stateDir, 'envelopes'), { recursive: true });
      await writeFile(f, '{}');
      return f;
    };
    const exists = (f: string): Promise<boolean> =>
      stat(f).then(
        () => true,
        () => false,
      );
    const cases = [
      { ...online.user.state, disabled: true },
      { ...online.user.state, locked: true },
      { ...online.user.state, expired: true },
      { ...online.user.state, passwordChangedAt: '2026-03-02T00:00:00.000Z' },
      undefined,
    ];
    for (const state of cases) {
      const erp = await env('legacy-erp');
      const other = await env('someone-elses');
      await cache.remember('ana', 'pw', online, { envelopes: ['legacy-erp'] });
      expect(await cache.reconcile('ana', online.user.state)).toBe(false);
      expect(await cache.reconcile('ana', state)).toBe(true);
      expect(await exists(credentialFileOf(stateDir, 'ana'))).toBe(false);
      expect(await exists(erp)).toBe(false);
      expect(await exists(other)).toBe(true);
      await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ reason: 'bad-credentials' });
    }
  });

  it('forget removes noted envelopes too, refuses path tricks in image ids, and lists users', async () => {
    await cache.remember('ana', 'pw', online);
    await cache.remember('bob', 'pw', { ...online, user: { ...online.user, name: 'bob' } });
    await mkdir(join(stateDir, 'envelopes'), { recursive: true });
    await writeFile(envelopeFileOf(stateDir, 'img'), '{}');
    await cache.noteEnvelope('ana', 'img');
    await expect(cache.noteEnvelope('ana', '../keys/device')).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    expect(await cache.users()).toEqual(['ana', 'bob']);
    expect(await cache.forget('ana')).toEqual(['img']);
    expect(await cache.users()).toEqual(['bob']);
  });

  it('a damaged entry is an IntegrityError that says to sign in online', async () => {
    await cache.remember('ana', 'pw', online);
    await writeFile(credentialFileOf(stateDir, 'ana'), '{"format":"nope"}');
    await expect(cache.signInOffline('ana', 'pw')).rejects.toMatchObject({ code: 'TANDEM_INTEGRITY' });
  });
});
