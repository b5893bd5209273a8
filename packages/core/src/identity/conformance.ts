import { deepStrictEqual, ok, strictEqual } from 'node:assert/strict';
import type { Directory, SignInResult } from './directory.js';
import { SignInError } from './sign-in-error.js';

const DAY = 24 * 3600 * 1000;

/** A user of the {@link DIRECTORY_FIXTURE}; times are relative to when the subject is made. */
export interface FixtureUser {
  readonly name: string;
  readonly displayName: string;
  readonly disabled?: boolean;
  /** The account expired a day ago. */
  readonly accountExpired?: boolean;
  /** The password expires this long from now (negative: it expired that long ago); absent: it is fresh. */
  readonly passwordExpiresInMs?: number;
  /** The password was changed this long ago (default 0). */
  readonly passwordAgeMs?: number;
}

/** A group of the fixture: users by name, nested groups by name in `groups`. */
export interface FixtureGroup {
  readonly name: string;
  readonly description: string;
  readonly users: readonly string[];
  readonly groups: readonly string[];
}

/** What every directory is loaded with before each check of {@link directoryConformanceSuite}. */
export interface DirectoryFixture {
  /** Every fixture user's password. */
  readonly password: string;
  readonly users: readonly FixtureUser[];
  readonly groups: readonly FixtureGroup[];
}

/**
 * The fixture: alice is in squad, squad in team, team in staff (three deep); bob is disabled,
 * carol's account has expired, dave's password expires in two days, gina's expired yesterday,
 * erin is the lockout target, frank changes his password, hank is in no group.
 *
 * @example
 * ```ts
 * const slapd = await startSlapd({ fixture: DIRECTORY_FIXTURE });
 * ```
 */
export const DIRECTORY_FIXTURE: DirectoryFixture = {
  password: 'Tandem-fixture-pw-7',
  users: [
    { name: 'alice', displayName: 'Alice Archer' },
    { name: 'bob', displayName: 'Bob Baker', disabled: true },
    { name: 'carol', displayName: 'Carol Cole', accountExpired: true },
    { name: 'dave', displayName: 'Dave Dunn', passwordExpiresInMs: 2 * DAY, passwordAgeMs: 10 * DAY },
    { name: 'erin', displayName: 'Erin Ebb' },
    { name: 'frank', displayName: 'Frank Fox', passwordAgeMs: DAY },
    { name: 'gina', displayName: 'Gina Gale', passwordExpiresInMs: -DAY, passwordAgeMs: 100 * DAY },
    { name: 'hank', displayName: 'Hank Hill' },
  ],
  groups: [
    { name: 'squad', description: 'The innermost group', users: ['alice'], groups: [] },
    { name: 'team', description: 'The middle group', users: ['dave'], groups: ['squad'] },
    { name: 'staff', description: 'The outer group', users: [], groups: ['team'] },
  ],
};

/** A directory loaded with the fixture, and what the suite needs to drive it. */
export interface DirectorySubject {
  readonly directory: Directory;
  /** Wrong passwords in a row after which the directory locks an account. */
  readonly maxFailures: number;
  /** Changes a user's password the way the directory's users do (LDAP: a modify bound as the user). */
  changePassword(name: string, oldPassword: string, newPassword: string): Promise<void>;
  /** Called after each check. */
  dispose?(): Promise<void>;
}

/** The `it` (or `test`) of vitest, mocha, jest or node:test. */
export type DirectoryIt = (name: string, fn: () => Promise<void>, timeout?: number) => unknown;

/** Options of {@link directoryConformanceSuite}. */
export interface DirectoryConformanceOptions {
  /** Per check; default 60 s (a real slapd on a busy machine). */
  readonly timeoutMs?: number;
}

async function refusal(p: Promise<unknown>): Promise<SignInError> {
  try {
    await p;
  } catch (err) {
    ok(SignInError.isRefusal(err), `expected a SignInError, got ${String(err)}`);
    return err;
  }
  throw new Error('expected the sign-in to be refused, and it was accepted');
}

const names = (r: { readonly groups: readonly { name: string }[] }): string[] => r.groups.map((g) => g.name).sort();

/**
 * The suite every {@link Directory} passes (the built-in one on every test run, LDAP against a
 * real slapd): a good password, a wrong one, an unknown user (the same refusal and message as a
 * wrong password), disabled, locked after repeated failures, expired, a password about to expire
 * (`passwordExpiresInMs`), an expired password, a password changed since a given time, groups
 * nested three deep, search, and hostile names.
 *
 * @param it - the test API's `it` or `test`.
 * @param factory - makes a fresh directory loaded with {@link DIRECTORY_FIXTURE} for each check.
 *
 * @example
 * ```ts
 * import { it } from 'vitest';
 * directoryConformanceSuite(it, async (fixture) => {
 *   const directory = new BuiltinDirectory(new MemoryDirectoryRecords(), { lockout: { maxFailures: 3, durationMs: 600_000 } });
 *   await loadFixture(directory, fixture);
 *   return { directory, maxFailures: 3, changePassword: (name, _old, pw) => directory.setPassword(name, pw) };
 * });
 * ```
 */
export function directoryConformanceSuite(
  it: DirectoryIt,
  factory: (fixture: DirectoryFixture) => Promise<DirectorySubject>,
  options: DirectoryConformanceOptions = {},
): void {
  const fx = DIRECTORY_FIXTURE;
  const pw = fx.password;
  const ctx = { source: '192.0.2.10' };
  const check = (name: string, body: (s: DirectorySubject) => Promise<void>): void => {
    it(
      `directory conformance: ${name}`,
      async () => {
        const subject = await factory(fx);
        try {
          await body(subject);
        } finally {
          await subject.dispose?.();
          await subject.directory.close?.();
        }
      },
      options.timeoutMs ?? 60_000,
    );
  };

  check('a good password signs in, with the account state and every group', async ({ directory }) => {
    const r: SignInResult = await directory.authenticate('alice', pw, ctx);
    strictEqual(r.user.name, 'alice');
    strictEqual(r.user.displayName, 'Alice Archer');
    ok(r.user.dn.length > 0);
    strictEqual(r.user.state.disabled, false);
    strictEqual(r.user.state.locked, false);
    strictEqual(r.user.state.expired, false);
    deepStrictEqual(names(r), ['squad', 'staff', 'team']);
    for (const g of r.groups) ok(g.dn.length > 0, `group ${g.name} has a DN`);
    strictEqual(r.passwordExpiresInMs, undefined, 'a fresh password gives no expiry warning');
  });

  check('a wrong password is bad-credentials', async ({ directory }) => {
    const e = await refusal(directory.authenticate('alice', pw + 'x', ctx));
    strictEqual(e.reason, 'bad-credentials');
    strictEqual(e.code, 'TANDEM_AUTH');
    strictEqual(e.retryable, false);
  });

  check('an empty password is bad-credentials (never an anonymous bind)', async ({ directory }) => {
    strictEqual((await refusal(directory.authenticate('alice', '', ctx))).reason, 'bad-credentials');
  });

  check('an unknown user gets the same refusal and message as a wrong password', async ({ directory }) => {
    const unknown = await refusal(directory.authenticate('nobody-here', pw, ctx));
    const wrong = await refusal(directory.authenticate('alice', 'not-the-password', ctx));
    strictEqual(unknown.reason, 'bad-credentials');
    strictEqual(unknown.message, wrong.message);
    deepStrictEqual(unknown.details, wrong.details);
  });

  check('a disabled account is refused as disabled', async ({ directory }) => {
    strictEqual((await refusal(directory.authenticate('bob', pw, ctx))).reason, 'disabled');
    strictEqual((await directory.findUser('bob'))?.state.disabled, true);
  });

  check('an expired account is refused as expired', async ({ directory }) => {
    strictEqual((await refusal(directory.authenticate('carol', pw, ctx))).reason, 'expired');
    strictEqual((await directory.findUser('carol'))?.state.expired, true);
  });

  check('an expired password is refused as password-expired', async ({ directory }) => {
    strictEqual((await refusal(directory.authenticate('gina', pw, ctx))).reason, 'password-expired');
  });

  check('a password about to expire signs in and says when', async ({ directory }) => {
    const r = await directory.authenticate('dave', pw, ctx);
    ok(r.passwordExpiresInMs !== undefined, 'passwordExpiresInMs is set');
    ok(
      r.passwordExpiresInMs > DAY && r.passwordExpiresInMs <= 2 * DAY + 60_000,
      `about two days: ${r.passwordExpiresInMs}`,
    );
    ok(r.user.state.passwordExpiresAt !== undefined);
  });

  check('repeated wrong passwords lock the account; the right one is then refused as locked', async (s) => {
    for (let i = 0; i < s.maxFailures; i++) await refusal(s.directory.authenticate('erin', `wrong-${i}`, ctx));
    const e = await refusal(s.directory.authenticate('erin', pw, ctx));
    strictEqual(e.reason, 'locked');
    strictEqual((await s.directory.findUser('erin'))?.state.locked, true);
    // Another account is untouched.
    strictEqual((await s.directory.authenticate('alice', pw, ctx)).user.name, 'alice');
  });

  check('a changed password: the old one is refused, the new one works, passwordChangedAt moved', async (s) => {
    const before = await s.directory.findUser('frank');
    ok(before?.state.passwordChangedAt !== undefined, 'the directory says when the password was changed');
    const since = Date.parse(before.state.passwordChangedAt) + 1000;
    await s.changePassword('frank', pw, 'Frank-new-pw-9');
    strictEqual((await refusal(s.directory.authenticate('frank', pw, ctx))).reason, 'bad-credentials');
    const r = await s.directory.authenticate('frank', 'Frank-new-pw-9', ctx);
    ok(r.user.state.passwordChangedAt !== undefined);
    ok(Date.parse(r.user.state.passwordChangedAt) >= since, 'changed since the cached time');
  });

  check('nested groups three deep, and none for a user in none', async ({ directory }) => {
    deepStrictEqual(names({ groups: await directory.groupsOf('alice') }), ['squad', 'staff', 'team']);
    deepStrictEqual(names({ groups: await directory.groupsOf('dave') }), ['staff', 'team']);
    deepStrictEqual(await directory.groupsOf('hank'), []);
  });

  check('findUser and search', async ({ directory }) => {
    const alice = await directory.findUser('alice');
    strictEqual(alice?.name, 'alice');
    strictEqual(await directory.findUser('nobody-here'), undefined);
    const byName = await directory.search('lic');
    deepStrictEqual(
      byName.users.map((u) => u.name),
      ['alice'],
    );
    const byDisplay = await directory.search('Baker');
    deepStrictEqual(
      byDisplay.users.map((u) => u.name),
      ['bob'],
    );
    const groups = await directory.search('squ');
    deepStrictEqual(
      groups.groups.map((g) => g.name),
      ['squad'],
    );
    strictEqual((await directory.search('a', { limit: 2 })).users.length <= 2, true);
  });

  check('hostile names are names: no filter or DN injection', async ({ directory }) => {
    for (const name of [
      '*',
      '*)(uid=*',
      'alice)(|(uid=*',
      'alice*',
      '\\2a',
      'cn=alice,dc=x',
      '(|(uid=*))',
      'alice\u0000',
    ]) {
      strictEqual((await refusal(directory.authenticate(name, pw, ctx))).reason, 'bad-credentials', name);
      strictEqual(await directory.findUser(name), undefined, name);
      deepStrictEqual(await directory.groupsOf(name), [], name);
    }
    const r = await directory.search('*)(uid=*');
    deepStrictEqual(r.users, []);
    deepStrictEqual(r.groups, []);
  });
}
