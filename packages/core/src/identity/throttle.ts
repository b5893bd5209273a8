import { systemClock, type Clock } from '../clock.js';
import type { SignInContext } from './directory.js';
import type { ThrottleRecord, ThrottleRecords } from './records.js';
import { SignInError } from './sign-in-error.js';

/** The delays of a {@link SignInThrottle}; every delay doubles per failure past the free ones, up to its cap. */
export interface ThrottlePolicy {
  /** The first delay. Default 1 s. */
  readonly baseDelayMs: number;
  /** One account from one source: failures before any delay (default 3), and the cap (default 15 min). */
  readonly pairFreeFailures: number;
  readonly pairMaxDelayMs: number;
  /** One source across every account (password spraying): free failures (default 10), cap (default 15 min). */
  readonly sourceFreeFailures: number;
  readonly sourceMaxDelayMs: number;
  /**
   * One account from every source (a distributed guesser): free failures (default 20), and a
   * soft cap (default 30 s): the owner waits at most this long however many sources guess.
   */
  readonly accountFreeFailures: number;
  readonly accountMaxDelayMs: number;
  /** Failures older than this are forgotten. Default 1 h. */
  readonly forgetAfterMs: number;
}

/** The defaults of {@link ThrottlePolicy}. */
export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = {
  baseDelayMs: 1000,
  pairFreeFailures: 3,
  pairMaxDelayMs: 15 * 60 * 1000,
  sourceFreeFailures: 10,
  sourceMaxDelayMs: 15 * 60 * 1000,
  accountFreeFailures: 20,
  accountMaxDelayMs: 30 * 1000,
  forgetAfterMs: 3600 * 1000,
};

type Scope = 'pair' | 'source' | 'account';

/**
 * The throttle keys of one attempt.
 *
 * @example
 * ```ts
 * throttleKeysOf('Ana', '192.0.2.7').pair; // 'account:ana|source:192.0.2.7'
 * ```
 */
export function throttleKeysOf(name: string, source: string): Record<Scope, string> {
  const account = name.normalize('NFC').trim().toLowerCase();
  return {
    pair: `account:${account}|source:${source}`,
    source: `source:${source}`,
    account: `account:${account}`,
  };
}

/**
 * Delays repeated failed sign-ins with a growing delay per account and per source, without
 * letting an attacker lock the owner out by guessing. Three counters, each in the store shared
 * by every server process ({@link ThrottleRecords}: the server store, or memory):
 *
 * - **account + source**: the steep one (doubling to 15 min). It only slows whoever is failing
 *   from that source; the owner signing in from elsewhere is not affected.
 * - **source**, across accounts: slows a source spraying one password over many accounts.
 * - **account**, across sources: a soft ceiling (30 s by default) against many sources guessing
 *   one account; soft, so the owner's own sign-in is delayed at most that long, never refused.
 *
 * A success clears the account + source and the account counters (not the source's: one good
 * password must not reset a sprayer). Failures are forgotten after an hour without any.
 *
 * @example
 * ```ts
 * const throttle = new SignInThrottle(store);
 * const result = await throttle.attempt('ana', { source: '192.0.2.7' }, () => directory.authenticate('ana', pw, { source: '192.0.2.7' }));
 * ```
 */
export class SignInThrottle {
  readonly #records: ThrottleRecords;
  readonly #clock: Clock;
  readonly policy: ThrottlePolicy;

  constructor(records: ThrottleRecords, options: { clock?: Clock; policy?: Partial<ThrottlePolicy> } = {}) {
    this.#records = records;
    this.#clock = options.clock ?? systemClock;
    this.policy = { ...DEFAULT_THROTTLE_POLICY, ...options.policy };
  }

  /** How long until an attempt for `name` from `source` is checked (0: now). */
  async waitMs(name: string, source: string): Promise<number> {
    const now = this.#clock.now();
    let until = 0;
    for (const key of Object.values(throttleKeysOf(name, source))) {
      const r = await this.#records.getThrottle(key);
      if (r && !this.#stale(r, now)) until = Math.max(until, Date.parse(r.blockedUntil));
    }
    return Math.max(0, until - now);
  }

  /** Throws a `throttled` {@link SignInError} (with `retryAfterMs`) while the attempt must wait. */
  async check(name: string, source: string): Promise<void> {
    const wait = await this.waitMs(name, source);
    if (wait > 0)
      throw new SignInError('throttled', `Too many failed sign-ins. Try again in ${Math.ceil(wait / 1000)} s.`, {
        retryAfterMs: wait,
      });
  }

  /** Counts a failure of `name` from `source`; returns the delay now in force for that pair. */
  async recordFailure(name: string, source: string): Promise<number> {
    const now = this.#clock.now();
    const keys = throttleKeysOf(name, source);
    const p = this.policy;
    const limits: Record<Scope, [number, number]> = {
      pair: [p.pairFreeFailures, p.pairMaxDelayMs],
      source: [p.sourceFreeFailures, p.sourceMaxDelayMs],
      account: [p.accountFreeFailures, p.accountMaxDelayMs],
    };
    let delay = 0;
    for (const scope of ['pair', 'source', 'account'] as const) {
      const key = keys[scope];
      const old = await this.#records.getThrottle(key);
      const failures = (old && !this.#stale(old, now) ? old.failures : 0) + 1;
      const [free, cap] = limits[scope];
      const d = failures <= free ? 0 : Math.min(cap, p.baseDelayMs * 2 ** Math.min(30, failures - free - 1));
      await this.#records.putThrottle({
        key,
        failures,
        lastFailureAt: new Date(now).toISOString(),
        blockedUntil: new Date(now + d).toISOString(),
      });
      delay = Math.max(delay, d);
    }
    return delay;
  }

  /** Clears the account's counters after a good sign-in (the source's stays). */
  async recordSuccess(name: string, source: string): Promise<void> {
    const keys = throttleKeysOf(name, source);
    await this.#records.clearThrottle(keys.pair);
    await this.#records.clearThrottle(keys.account);
  }

  /**
   * Checks, runs `signIn`, and counts the outcome: any refusal but `throttled` and
   * `directory-unreachable` is a failure (a locked or disabled account being guessed at too).
   */
  async attempt<T>(name: string, context: SignInContext, signIn: () => Promise<T>): Promise<T> {
    await this.check(name, context.source);
    let result: T;
    try {
      result = await signIn();
    } catch (err) {
      if (SignInError.isRefusal(err) && !err.retryable) await this.recordFailure(name, context.source);
      throw err;
    }
    await this.recordSuccess(name, context.source);
    return result;
  }

  #stale(r: ThrottleRecord, now: number): boolean {
    return now - Date.parse(r.lastFailureAt) > this.policy.forgetAfterMs && now >= Date.parse(r.blockedUntil);
  }
}

/**
 * {@link ThrottleRecords} in memory, for tests and a single process.
 *
 * @example
 * ```ts
 * const throttle = new SignInThrottle(new MemoryThrottleRecords(), { clock: new VirtualClock(0) });
 * ```
 */
export class MemoryThrottleRecords implements ThrottleRecords {
  readonly #map = new Map<string, ThrottleRecord>();
  getThrottle(key: string): Promise<ThrottleRecord | undefined> {
    const r = this.#map.get(key);
    return Promise.resolve(r && { ...r });
  }
  putThrottle(record: ThrottleRecord): Promise<void> {
    this.#map.set(record.key, { ...record });
    return Promise.resolve();
  }
  clearThrottle(key: string): Promise<void> {
    this.#map.delete(key);
    return Promise.resolve();
  }
  /** How many keys are held (for tests). */
  get size(): number {
    return this.#map.size;
  }
}
