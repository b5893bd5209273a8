/**
 * The rows the built-in directory and the sign-in throttle keep in the management server's store.
 * They have the same shapes as the server store's `BuiltinUserRecord`, `BuiltinGroupRecord` and
 * `ThrottleRecord` (`@tandem/server`), so a `ServerStore` satisfies {@link DirectoryRecords}
 * and {@link ThrottleRecords} as it is; core does not depend on the server.
 */

/** A user of the built-in directory. */
export interface BuiltinUserRecord {
  readonly name: string;
  readonly displayName?: string | undefined;
  /** `scrypt$N$r$p$salt$hash` (base64url parts), from `hashPassword`. */
  readonly passwordHash: string;
  readonly passwordChangedAt: string;
  readonly passwordExpiresAt?: string | null | undefined;
  readonly disabled: boolean;
  readonly expiresAt?: string | null | undefined;
  readonly lockedUntil?: string | null | undefined;
}

/** A group of the built-in directory; members are user names or `group:NAME` (nesting). */
export interface BuiltinGroupRecord {
  readonly name: string;
  readonly description?: string | undefined;
  readonly members: readonly string[];
}

/** Failed sign-in attempts for one key. */
export interface ThrottleRecord {
  readonly key: string;
  readonly failures: number;
  readonly lastFailureAt: string;
  /** No attempt is checked before this time. */
  readonly blockedUntil: string;
}

/**
 * Where the sign-in throttle keeps its counters (the server store, or memory).
 *
 * @example
 * ```ts
 * const throttle = new SignInThrottle(serverStore); // a ServerStore is ThrottleRecords
 * ```
 */
export interface ThrottleRecords {
  getThrottle(key: string): Promise<ThrottleRecord | undefined>;
  putThrottle(record: ThrottleRecord): Promise<void>;
  clearThrottle(key: string): Promise<void>;
}

/**
 * What the built-in directory needs of a store: its users, its groups, and failure counters for lockout.
 *
 * @example
 * ```ts
 * const directory = new BuiltinDirectory(serverStore); // a ServerStore is DirectoryRecords
 * ```
 */
export interface DirectoryRecords extends ThrottleRecords {
  putUser(user: BuiltinUserRecord): Promise<void>;
  getUser(name: string): Promise<BuiltinUserRecord | undefined>;
  deleteUser(name: string): Promise<boolean>;
  listUsers(filter?: { search?: string; limit?: number }): Promise<BuiltinUserRecord[]>;
  putGroup(group: BuiltinGroupRecord): Promise<void>;
  getGroup(name: string): Promise<BuiltinGroupRecord | undefined>;
  deleteGroup(name: string): Promise<boolean>;
  listGroups(filter?: { search?: string; limit?: number }): Promise<BuiltinGroupRecord[]>;
}

/**
 * {@link DirectoryRecords} in memory: for tests, the demo and an endpoint-side stand-in.
 * `search` matches a case-insensitive substring of the name or display name.
 *
 * @example
 * ```ts
 * const records = new MemoryDirectoryRecords();
 * const directory = new BuiltinDirectory(records);
 * ```
 */
export class MemoryDirectoryRecords implements DirectoryRecords {
  readonly #users = new Map<string, BuiltinUserRecord>();
  readonly #groups = new Map<string, BuiltinGroupRecord>();
  readonly #throttles = new Map<string, ThrottleRecord>();

  putUser(user: BuiltinUserRecord): Promise<void> {
    this.#users.set(user.name, structuredClone(user));
    return Promise.resolve();
  }
  getUser(name: string): Promise<BuiltinUserRecord | undefined> {
    const u = this.#users.get(name);
    return Promise.resolve(u && structuredClone(u));
  }
  deleteUser(name: string): Promise<boolean> {
    return Promise.resolve(this.#users.delete(name));
  }
  listUsers(filter: { search?: string; limit?: number } = {}): Promise<BuiltinUserRecord[]> {
    const s = filter.search?.toLowerCase();
    const all = [...this.#users.values()]
      .filter(
        (u) => s === undefined || u.name.toLowerCase().includes(s) || (u.displayName ?? '').toLowerCase().includes(s),
      )
      .sort((a, b) => a.name.localeCompare(b.name));
    return Promise.resolve(all.slice(0, filter.limit ?? all.length).map((u) => structuredClone(u)));
  }
  putGroup(group: BuiltinGroupRecord): Promise<void> {
    this.#groups.set(group.name, structuredClone(group));
    return Promise.resolve();
  }
  getGroup(name: string): Promise<BuiltinGroupRecord | undefined> {
    const g = this.#groups.get(name);
    return Promise.resolve(g && structuredClone(g));
  }
  deleteGroup(name: string): Promise<boolean> {
    return Promise.resolve(this.#groups.delete(name));
  }
  listGroups(filter: { search?: string; limit?: number } = {}): Promise<BuiltinGroupRecord[]> {
    const s = filter.search?.toLowerCase();
    const all = [...this.#groups.values()]
      .filter(
        (g) => s === undefined || g.name.toLowerCase().includes(s) || (g.description ?? '').toLowerCase().includes(s),
      )
      .sort((a, b) => a.name.localeCompare(b.name));
    return Promise.resolve(all.slice(0, filter.limit ?? all.length).map((g) => structuredClone(g)));
  }
  getThrottle(key: string): Promise<ThrottleRecord | undefined> {
    const t = this.#throttles.get(key);
    return Promise.resolve(t && { ...t });
  }
  putThrottle(record: ThrottleRecord): Promise<void> {
    this.#throttles.set(record.key, { ...record });
    return Promise.resolve();
  }
  clearThrottle(key: string): Promise<void> {
    this.#throttles.delete(key);
    return Promise.resolve();
  }
}
