import type { Clock } from '../clock.js';
import { parseDuration } from '../util/duration.js';
import type { Session } from './session.js';

/**
 * Locks a session after a period without user activity (the workspace's `usage.idleLock`),
 * and on host sleep when `usage.lockOnHostSleep` is set. Time comes from the clock, so a
 * virtual clock drives it in tests.
 *
 * @example
 * ```ts
 * const idle = new IdleLock(session, { clock: systemClock });
 * idle.start();
 * // on every keyboard or mouse event from the host:
 * idle.activity();
 * ```
 */
export class IdleLock {
  readonly #session: Session;
  readonly #clock: Clock;
  readonly #idleMs: number | undefined;
  readonly #lockOnSleep: boolean;
  #lastActivity: number;
  #abort: AbortController | undefined;

  constructor(session: Session, options: { clock: Clock; idleMs?: number; lockOnHostSleep?: boolean }) {
    this.#session = session;
    this.#clock = options.clock;
    const usage = session.workspace.spec.usage;
    this.#idleMs = options.idleMs ?? (usage.idleLock ? parseDuration(usage.idleLock) : undefined);
    this.#lockOnSleep = options.lockOnHostSleep ?? usage.lockOnHostSleep;
    this.#lastActivity = this.#clock.now();
  }

  /** Starts watching. Does nothing when the workspace has no idle lock. */
  start(): void {
    if (this.#idleMs === undefined || this.#abort) return;
    this.#abort = new AbortController();
    void this.#loop(this.#abort.signal, this.#idleMs);
  }

  /** Stops watching. */
  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
  }

  /** Records user activity: the idle period starts again. */
  activity(): void {
    this.#lastActivity = this.#clock.now();
  }

  /** The host is about to sleep: lock now when the policy says so. */
  async hostWillSleep(): Promise<void> {
    if (this.#lockOnSleep && this.#session.can('lock')) await this.#session.lock('host sleep');
  }

  async #loop(signal: AbortSignal, idleMs: number): Promise<void> {
    while (!signal.aborted) {
      const idleFor = this.#clock.now() - this.#lastActivity;
      if (idleFor >= idleMs) {
        if (this.#session.can('lock')) await this.#session.lock('idle').catch(() => undefined);
        this.#lastActivity = this.#clock.now();
      }
      try {
        await this.#clock.sleep(Math.max(1, idleMs - (this.#clock.now() - this.#lastActivity)), signal);
      } catch {
        return;
      }
    }
  }
}
