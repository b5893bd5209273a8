import { CancelledError } from './errors.js';

/**
 * Where time comes from. Engines take a clock instead of reading `Date.now()`, so the
 * mock adapter's virtual clock can drive idle locks, leases and timeouts in tests.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds of this clock's time; rejects with CancelledError on abort. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new CancelledError('The wait was cancelled.'));
        return;
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new CancelledError('The wait was cancelled.'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

interface Sleeper {
  at: number;
  resolve: () => void;
}

interface SleeperWaiter {
  count: number;
  resolve: () => void;
}

/**
 * A clock that moves only when told to. `sleep()` resolves when {@link VirtualClock.advance}
 * passes its deadline.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock(Date.parse('2026-01-01T00:00:00Z'));
 * const done = clock.sleep(1000);
 * await clock.advance(1000); // `done` resolves
 * ```
 */
export class VirtualClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  #waiters: SleeperWaiter[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new CancelledError('The wait was cancelled.'));
        return;
      }
      const sleeper: Sleeper = { at: this.#now + Math.max(0, ms), resolve };
      this.#sleepers.push(sleeper);
      this.#wakeWaiters();
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          reject(new CancelledError('The wait was cancelled.'));
        },
        { once: true },
      );
    });
  }

  /** Number of sleeps waiting on this clock. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /**
   * Resolves once at least `count` sleeps are waiting on this clock: lets the code under test
   * reach its sleep before the test advances time. It waits for the sleep itself, not for a
   * number of event-loop turns, so work that runs a real process first (a hypervisor command)
   * may take as long as it needs; `signal` ends the wait with CancelledError.
   */
  waitForSleepers(count = 1, signal?: AbortSignal): Promise<void> {
    if (this.#sleepers.length >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: SleeperWaiter = { count, resolve };
      this.#waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(new CancelledError('The wait for sleepers was cancelled.'));
        },
        { once: true },
      );
    });
  }

  /**
   * Drives `work` to its end: whenever the code under test sleeps on this clock, moves time
   * forward by `stepMs` (or to the earliest deadline when that is sooner), until `work` settles.
   * Returns what `work` returns, or throws what it throws. Nothing here waits on real time, so a
   * slow or busy machine changes how long it takes, never what happens.
   *
   * @example
   * ```ts
   * const clock = new VirtualClock();
   * const stopped = adapter.stop('vm', { timeoutMs: 3_000 }); // polls on the clock
   * await clock.runUntilSettled(stopped, 1_000);
   * ```
   */
  async runUntilSettled<T>(work: Promise<T>, stepMs: number): Promise<T> {
    let settled = false;
    const done = work.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    const stop = new AbortController();
    try {
      while (!settled) {
        await Promise.race([done, this.waitForSleepers(1, stop.signal)]);
        if (settled) break;
        const next = Math.min(...this.#sleepers.map((s) => s.at)) - this.#now;
        await this.advance(Math.max(0, Math.min(stepMs, next)));
      }
    } finally {
      stop.abort();
    }
    return work;
  }

  #wakeWaiters(): void {
    const ready = this.#waiters.filter((w) => this.#sleepers.length >= w.count);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => this.#sleepers.length < w.count);
    for (const w of ready) w.resolve();
  }

  /** Moves time forward, waking every sleeper whose deadline has passed, in deadline order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      this.#sleepers.sort((a, b) => a.at - b.at);
      const next = this.#sleepers[0];
      if (!next || next.at > target) break;
      this.#sleepers.shift();
      this.#now = next.at;
      next.resolve();
      // Let the woken code run before waking the next sleeper.
      await new Promise<void>((r) => setImmediate(r));
    }
    this.#now = target;
    await new Promise<void>((r) => setImmediate(r));
  }
}
