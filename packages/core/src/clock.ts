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

  /** Resolves once at least `count` sleeps are waiting (lets queued work reach its sleep). */
  async waitForSleepers(count = 1): Promise<void> {
    for (let i = 0; i < 10_000 && this.#sleepers.length < count; i++) {
      await new Promise<void>((r) => setImmediate(r));
    }
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
