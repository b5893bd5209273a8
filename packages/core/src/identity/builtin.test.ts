import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { builtinSubject, TEST_SCRYPT } from './builtin.test-helper.js';
import { BuiltinDirectory } from './builtin.js';
import { DIRECTORY_FIXTURE, directoryConformanceSuite } from './conformance.js';
import { MemoryDirectoryRecords } from './records.js';
import { SignInError } from './sign-in-error.js';

describe('BuiltinDirectory: the shared directory suite', () => {
  directoryConformanceSuite(it, (fixture) => builtinSubject(fixture));
});

describe('BuiltinDirectory', () => {
  const ctx = { source: '198.51.100.1' };

  it('nested groups with a cycle end, and each group is listed once', async () => {
    const records = new MemoryDirectoryRecords();
    const d = new BuiltinDirectory(records, { scrypt: TEST_SCRYPT });
    await d.createUser({ name: 'ana', password: 'pw-ana-1' });
    await d.putGroup('a', ['ana', 'group:c']);
    await d.putGroup('b', ['group:a']);
    await d.putGroup('c', ['group:b']);
    await d.putGroup('unrelated', ['someone']);
    expect((await d.groupsOf('ana')).map((g) => g.name)).toEqual(['a', 'b', 'c']);
    expect((await d.groupsOf('ana'))[0]?.dn).toBe('builtin:group:a');
  });

  it('a lock lapses with time, and the lockout counter restarts after a good sign-in', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-01T08:00:00Z'));
    const s = await builtinSubject(DIRECTORY_FIXTURE, { clock, lockout: { maxFailures: 2, durationMs: 60_000 } });
    const pw = DIRECTORY_FIXTURE.password;
    await expect(s.directory.authenticate('erin', 'x', ctx)).rejects.toMatchObject({ reason: 'bad-credentials' });
    await s.directory.authenticate('erin', pw, ctx); // resets the count
    await expect(s.directory.authenticate('erin', 'x', ctx)).rejects.toMatchObject({ reason: 'bad-credentials' });
    await s.directory.authenticate('erin', pw, ctx);
    await expect(s.directory.authenticate('erin', 'x', ctx)).rejects.toThrow(SignInError);
    await expect(s.directory.authenticate('erin', 'x', ctx)).rejects.toThrow(SignInError);
    const locked = await s.directory.authenticate('erin', pw, ctx).catch((e: unknown) => e);
    expect(locked).toMatchObject({ reason: 'locked', details: { lockedUntil: '2026-03-01T08:01:00.000Z' } });
    await clock.advance(60_001);
    expect((await s.directory.authenticate('erin', pw, ctx)).user.state.locked).toBe(false);
  });

  it('an administrator unlock clears the lock', async () => {
    const s = await builtinSubject(DIRECTORY_FIXTURE);
    for (let i = 0; i < 3; i++) await s.directory.authenticate('erin', 'x', ctx).catch(() => undefined);
    await expect(s.directory.authenticate('erin', DIRECTORY_FIXTURE.password, ctx)).rejects.toMatchObject({
      reason: 'locked',
    });
    await s.directory.updateUser('erin', { lockedUntil: null });
    expect((await s.directory.authenticate('erin', DIRECTORY_FIXTURE.password, ctx)).user.name).toBe('erin');
  });

  it('a wrong password on a disabled account says bad-credentials, not the state', async () => {
    const s = await builtinSubject(DIRECTORY_FIXTURE);
    await expect(s.directory.authenticate('bob', 'wrong', ctx)).rejects.toMatchObject({ reason: 'bad-credentials' });
  });

  it('maxPasswordAgeMs expires a password by its age', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-01T08:00:00Z'));
    const d = new BuiltinDirectory(new MemoryDirectoryRecords(), {
      clock,
      scrypt: TEST_SCRYPT,
      maxPasswordAgeMs: 30 * 86_400_000,
    });
    await d.createUser({ name: 'ana', password: 'pw-ana-1' });
    await clock.advance(20 * 86_400_000);
    const r = await d.authenticate('ana', 'pw-ana-1', ctx);
    expect(r.passwordExpiresInMs).toBe(10 * 86_400_000);
    await clock.advance(10 * 86_400_000);
    await expect(d.authenticate('ana', 'pw-ana-1', ctx)).rejects.toMatchObject({ reason: 'password-expired' });
    await d.setPassword('ana', 'pw-ana-2');
    expect((await d.authenticate('ana', 'pw-ana-2', ctx)).passwordExpiresInMs).toBeUndefined();
  });

  it('refuses names it could not store, and a cancelled sign-in', async () => {
    const d = new BuiltinDirectory(new MemoryDirectoryRecords(), { scrypt: TEST_SCRYPT });
    await expect(d.createUser({ name: 'a:b', password: 'x' })).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    await expect(d.putGroup('g', ['bad\nname'])).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    await expect(d.setPassword('nobody', 'x')).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
    const ac = new AbortController();
    ac.abort();
    await expect(d.authenticate('a', 'b', { source: 'x', signal: ac.signal })).rejects.toMatchObject({
      code: 'TANDEM_CANCELLED',
    });
  });
});
