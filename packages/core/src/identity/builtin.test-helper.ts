import type { Clock } from '../clock.js';
import { BuiltinDirectory, type LockoutPolicy } from './builtin.js';
import type { DirectoryFixture, DirectorySubject } from './conformance.js';
import { hashPassword, type ScryptParams } from './password-hash.js';
import { MemoryDirectoryRecords, type DirectoryRecords } from './records.js';

/** Cheap scrypt parameters for tests (never for real passwords). */
export const TEST_SCRYPT: ScryptParams = { N: 1024, r: 8, p: 1 };

/** Writes the fixture's users and groups into built-in records, times relative to `now`. */
export async function loadBuiltinFixture(
  records: DirectoryRecords,
  fixture: DirectoryFixture,
  now: number,
): Promise<void> {
  const iso = (t: number): string => new Date(t).toISOString();
  const hash = await hashPassword(fixture.password, TEST_SCRYPT);
  for (const u of fixture.users) {
    await records.putUser({
      name: u.name,
      displayName: u.displayName,
      passwordHash: hash,
      passwordChangedAt: iso(now - (u.passwordAgeMs ?? 0)),
      passwordExpiresAt: u.passwordExpiresInMs === undefined ? null : iso(now + u.passwordExpiresInMs),
      disabled: u.disabled ?? false,
      expiresAt: u.accountExpired ? iso(now - 24 * 3600 * 1000) : null,
      lockedUntil: null,
    });
  }
  for (const g of fixture.groups)
    await records.putGroup({
      name: g.name,
      description: g.description,
      members: [...g.users, ...g.groups.map((n) => `group:${n}`)],
    });
}

/** A built-in directory over memory records, loaded with the fixture, as the conformance suite wants it. */
export async function builtinSubject(
  fixture: DirectoryFixture,
  options: { clock?: Clock; lockout?: LockoutPolicy; records?: DirectoryRecords } = {},
): Promise<DirectorySubject & { directory: BuiltinDirectory; records: DirectoryRecords }> {
  const records = options.records ?? new MemoryDirectoryRecords();
  const lockout = options.lockout ?? { maxFailures: 3, durationMs: 10 * 60 * 1000 };
  await loadBuiltinFixture(records, fixture, options.clock?.now() ?? Date.now());
  const directory = new BuiltinDirectory(records, {
    lockout,
    scrypt: TEST_SCRYPT,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  return {
    directory,
    records,
    maxFailures: lockout.maxFailures,
    changePassword: async (name, _old, password) => {
      // The built-in clock is the wall clock here: wait until the stored second has passed, so
      // "changed since" is strictly later.
      await new Promise((r) => setTimeout(r, 5));
      await directory.setPassword(name, password);
    },
  };
}
