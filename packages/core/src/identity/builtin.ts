import { systemClock, type Clock } from '../clock.js';
import { CancelledError, InvalidInputError, NotFoundError } from '../errors.js';
import type {
  AccountState,
  Directory,
  DirectoryGroup,
  DirectoryUser,
  SignInContext,
  SignInResult,
} from './directory.js';
import { DEFAULT_SCRYPT_PARAMS, decoyHash, hashPassword, verifyPassword, type ScryptParams } from './password-hash.js';
import type { BuiltinGroupRecord, BuiltinUserRecord, DirectoryRecords } from './records.js';
import { SignInError } from './sign-in-error.js';

/** How long before a password expires the user is told, by default: 14 days. */
export const DEFAULT_PASSWORD_WARNING_MS = 14 * 24 * 3600 * 1000;

/** Lockout after repeated wrong passwords (what ppolicy's pwdMaxFailure / pwdLockoutDuration do on slapd). */
export interface LockoutPolicy {
  /** Wrong passwords in a row that lock the account. */
  readonly maxFailures: number;
  /** How long the lock lasts. */
  readonly durationMs: number;
}

/** Options of {@link BuiltinDirectory}. */
export interface BuiltinDirectoryOptions {
  readonly clock?: Clock;
  /** scrypt parameters of new hashes (stored hashes keep their own). */
  readonly scrypt?: ScryptParams;
  /** A password expires this long after it was changed, unless the user's record says otherwise. */
  readonly maxPasswordAgeMs?: number | undefined;
  /** Tell the user when the password expires within this; default 14 days. */
  readonly passwordWarningMs?: number;
  /** Lock an account after wrong passwords; default none (the throttle slows guessing instead). */
  readonly lockout?: LockoutPolicy | undefined;
}

/** A new user of the built-in directory. */
export interface NewBuiltinUser {
  readonly name: string;
  readonly password: string;
  readonly displayName?: string | undefined;
  readonly expiresAt?: string | undefined;
  readonly passwordExpiresAt?: string | undefined;
  readonly disabled?: boolean | undefined;
}

const NAME = /^[A-Za-z0-9._@-][A-Za-z0-9._@ -]{0,127}$/;
const GROUP_PREFIX = 'group:';

/**
 * The DN the built-in directory gives a user.
 *
 * @example
 * ```ts
 * builtinUserDn('ana'); // 'builtin:ana'
 * ```
 */
export const builtinUserDn = (name: string): string => `builtin:${name}`;
/**
 * The DN the built-in directory gives a group (what assignments name).
 *
 * @example
 * ```ts
 * builtinGroupDn('erp-users'); // 'builtin:group:erp-users'
 * ```
 */
export const builtinGroupDn = (name: string): string => `builtin:group:${name}`;

/**
 * The built-in directory: users, groups and scrypt password hashes in the management server's
 * own store (any {@link DirectoryRecords}: the server store, or {@link MemoryDirectoryRecords}),
 * so the server runs with no directory at all for small sites and the demo.
 *
 * Account states: `disabled`, `expiresAt` (the account), `lockedUntil` (set by the lockout
 * policy, or by an administrator), `passwordExpiresAt` (or `passwordChangedAt` plus
 * `maxPasswordAgeMs`). A group's members are user names and `group:NAME` for nested groups;
 * cycles are harmless. The password is checked before the account state is told, so a wrong
 * password says `bad-credentials` whatever the account's state, and an unknown user costs the
 * same scrypt work as a known one.
 *
 * @example
 * ```ts
 * const directory = new BuiltinDirectory(new MemoryDirectoryRecords());
 * await directory.createUser({ name: 'ana', password: 'correct horse battery staple' });
 * await directory.putGroup('erp-users', ['ana']);
 * const { groups } = await directory.authenticate('ana', 'correct horse battery staple', { source: '192.0.2.7' });
 * ```
 */
export class BuiltinDirectory implements Directory {
  readonly kind = 'builtin';
  readonly #records: DirectoryRecords;
  readonly #clock: Clock;
  readonly #scrypt: ScryptParams;
  readonly #maxAge: number | undefined;
  readonly #warnMs: number;
  readonly #lockout: LockoutPolicy | undefined;

  constructor(records: DirectoryRecords, options: BuiltinDirectoryOptions = {}) {
    this.#records = records;
    this.#clock = options.clock ?? systemClock;
    this.#scrypt = options.scrypt ?? DEFAULT_SCRYPT_PARAMS;
    this.#maxAge = options.maxPasswordAgeMs;
    this.#warnMs = options.passwordWarningMs ?? DEFAULT_PASSWORD_WARNING_MS;
    this.#lockout = options.lockout;
  }

  async authenticate(name: string, password: string, context: SignInContext): Promise<SignInResult> {
    if (context.signal?.aborted) throw new CancelledError('The sign-in was cancelled.');
    const record = typeof name === 'string' && NAME.test(name) ? await this.#records.getUser(name) : undefined;
    if (!record) {
      await verifyPassword(password, await decoyHash(this.#scrypt));
      throw new SignInError('bad-credentials');
    }
    const ok = await verifyPassword(password, record.passwordHash);
    const now = this.#clock.now();
    const state = this.#stateOf(record, now);
    if (!ok) {
      if (!state.locked) await this.#countFailure(record, now);
      throw new SignInError('bad-credentials');
    }
    if (state.disabled) throw new SignInError('disabled');
    if (state.expired) throw new SignInError('expired');
    if (state.locked) throw new SignInError('locked', undefined, { lockedUntil: state.lockedUntil });
    if (state.passwordExpiresAt !== undefined && Date.parse(state.passwordExpiresAt) <= now)
      throw new SignInError('password-expired');
    if (this.#lockout) await this.#records.clearThrottle(lockoutKey(record.name));
    const user = this.#userOf(record, state);
    const groups = await this.groupsOf(record.name);
    const left = state.passwordExpiresAt === undefined ? undefined : Date.parse(state.passwordExpiresAt) - now;
    return { user, groups, passwordExpiresInMs: left !== undefined && left <= this.#warnMs ? left : undefined };
  }

  async findUser(name: string): Promise<DirectoryUser | undefined> {
    if (typeof name !== 'string' || !NAME.test(name)) return undefined;
    const record = await this.#records.getUser(name);
    return record && this.#userOf(record, this.#stateOf(record, this.#clock.now()));
  }

  async groupsOf(name: string): Promise<readonly DirectoryGroup[]> {
    const all = await this.#records.listGroups();
    const found = new Map<string, BuiltinGroupRecord>();
    let frontier = [name];
    let prefix = '';
    // Breadth first from the user outwards: groups holding the user, then groups holding those.
    // A group already found is not visited again, so a cycle ends the walk.
    while (frontier.length > 0) {
      const wanted = new Set(frontier.map((n) => prefix + n));
      frontier = [];
      for (const g of all) {
        if (found.has(g.name) || !g.members.some((m) => wanted.has(m))) continue;
        found.set(g.name, g);
        frontier.push(g.name);
      }
      prefix = GROUP_PREFIX;
    }
    return [...found.values()].sort((a, b) => a.name.localeCompare(b.name)).map(groupOf);
  }

  async search(
    text: string,
    options: { limit?: number } = {},
  ): Promise<{ users: DirectoryUser[]; groups: DirectoryGroup[] }> {
    const limit = options.limit ?? 50;
    const now = this.#clock.now();
    const users = await this.#records.listUsers({ search: text, limit });
    const groups = await this.#records.listGroups({ search: text, limit });
    return { users: users.map((u) => this.#userOf(u, this.#stateOf(u, now))), groups: groups.map(groupOf) };
  }

  /** Adds a user (or replaces one of that name), hashing the password. */
  async createUser(user: NewBuiltinUser): Promise<DirectoryUser> {
    checkName(user.name, 'user');
    const now = new Date(this.#clock.now()).toISOString();
    const record: BuiltinUserRecord = {
      name: user.name,
      displayName: user.displayName,
      passwordHash: await hashPassword(user.password, this.#scrypt),
      passwordChangedAt: now,
      passwordExpiresAt: user.passwordExpiresAt ?? null,
      disabled: user.disabled ?? false,
      expiresAt: user.expiresAt ?? null,
      lockedUntil: null,
    };
    await this.#records.putUser(record);
    return this.#userOf(record, this.#stateOf(record, this.#clock.now()));
  }

  /** Sets a new password (now is when it changed); `passwordExpiresAt` replaces the explicit expiry. */
  async setPassword(
    name: string,
    password: string,
    options: { passwordExpiresAt?: string | null } = {},
  ): Promise<void> {
    const record = await this.#require(name);
    await this.#records.putUser({
      ...record,
      passwordHash: await hashPassword(password, this.#scrypt),
      passwordChangedAt: new Date(this.#clock.now()).toISOString(),
      passwordExpiresAt: options.passwordExpiresAt === undefined ? null : options.passwordExpiresAt,
    });
  }

  /** Changes a user's account state: disabled, account expiry, the lock (null unlocks). */
  async updateUser(
    name: string,
    change: { disabled?: boolean; expiresAt?: string | null; lockedUntil?: string | null; displayName?: string },
  ): Promise<void> {
    const record = await this.#require(name);
    await this.#records.putUser({ ...record, ...change });
    if (change.lockedUntil === null) await this.#records.clearThrottle(lockoutKey(name));
  }

  /** Adds or replaces a group; members are user names and `group:NAME`. */
  async putGroup(name: string, members: readonly string[], description?: string): Promise<DirectoryGroup> {
    checkName(name, 'group');
    for (const m of members) checkName(m.startsWith(GROUP_PREFIX) ? m.slice(GROUP_PREFIX.length) : m, 'member');
    const group: BuiltinGroupRecord = { name, members: [...new Set(members)], description };
    await this.#records.putGroup(group);
    return groupOf(group);
  }

  async #require(name: string): Promise<BuiltinUserRecord> {
    const record = await this.#records.getUser(name);
    if (!record)
      throw new NotFoundError(`There is no user "${name}" in the built-in directory.`, { details: { name } });
    return record;
  }

  async #countFailure(record: BuiltinUserRecord, now: number): Promise<void> {
    const policy = this.#lockout;
    if (!policy) return;
    const key = lockoutKey(record.name);
    const failures = ((await this.#records.getThrottle(key))?.failures ?? 0) + 1;
    const at = new Date(now).toISOString();
    if (failures >= policy.maxFailures) {
      await this.#records.putUser({ ...record, lockedUntil: new Date(now + policy.durationMs).toISOString() });
      await this.#records.clearThrottle(key);
      return;
    }
    await this.#records.putThrottle({ key, failures, lastFailureAt: at, blockedUntil: at });
  }

  #stateOf(record: BuiltinUserRecord, now: number): AccountState {
    const lockedUntil = record.lockedUntil ?? undefined;
    const expiresAt =
      record.passwordExpiresAt ??
      (this.#maxAge === undefined
        ? undefined
        : new Date(Date.parse(record.passwordChangedAt) + this.#maxAge).toISOString());
    return {
      disabled: record.disabled,
      locked: lockedUntil !== undefined && Date.parse(lockedUntil) > now,
      lockedUntil: lockedUntil !== undefined && Date.parse(lockedUntil) > now ? lockedUntil : undefined,
      expired: record.expiresAt != null && Date.parse(record.expiresAt) <= now,
      passwordChangedAt: record.passwordChangedAt,
      passwordExpiresAt: expiresAt,
    };
  }

  #userOf(record: BuiltinUserRecord, state: AccountState): DirectoryUser {
    return { name: record.name, dn: builtinUserDn(record.name), displayName: record.displayName, state };
  }
}

const lockoutKey = (name: string): string => `lockout:${name}`;

function groupOf(g: BuiltinGroupRecord): DirectoryGroup {
  return { name: g.name, dn: builtinGroupDn(g.name), description: g.description };
}

function checkName(name: string, what: string): void {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new InvalidInputError(
      `"${String(name)}" is not a valid ${what} name for the built-in directory: letters, digits, space, . _ @ -, up to 128, not starting with a space.`,
      { details: { name } },
    );
}
