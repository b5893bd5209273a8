import type { Clock } from '../clock.js';
import type { UsageDecision } from '../policy/usage.js';
import type { Session } from './session.js';

/** Options of {@link IdleLock}; each defaults to what the session's policy says. */
export interface IdleLockOptions {
  /** Default: the session's clock (the system clock unless the session was given another). */
  clock?: Clock;
  /**
   * The idle period in milliseconds; null or absent: the layered usage policy's `idleLock`
   * (a usage decision's `idleLockMs`, number or null, can be passed as it is).
   */
  idleMs?: number | null | undefined;
  /** Default: the layered usage policy's `lockOnHostSleep`. */
  lockOnHostSleep?: boolean | undefined;
  /**
   * A usage decision to take the idle period and the sleep rule from (one an agent got from its
   * own policy engine, say), instead of the session's policy. `idleMs` and `lockOnHostSleep` win.
   */
  decision?: Pick<UsageDecision, 'idleLockMs' | 'lockOnHostSleep'> | undefined;
}

/**
 * Locks a session after a period without user activity, and on host sleep. The period and the
 * sleep rule come from the session's layered usage policy ({@link Session.policy}: the workspace
 * file's `usage` with the policy layers above it), unless given. Time comes from the clock, so a
 * virtual clock drives it in tests.
 *
 * @example
 * ```ts
 * const idle = new IdleLock(session);
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

  constructor(session: Session, options: IdleLockOptions = {}) {
    this.#session = session;
    this.#clock = options.clock ?? session.clock;
    const decision = options.decision;
    this.#idleMs = options.idleMs ?? (decision ? decision.idleLockMs : session.policy.idleLockMs) ?? undefined;
    this.#lockOnSleep = options.lockOnHostSleep ?? decision?.lockOnHostSleep ?? session.policy.lockOnHostSleep;
    this.#lastActivity = this.#clock.now();
  }

  /** The idle period in force, in milliseconds; undefined when there is no idle lock. */
  get idleMs(): number | undefined {
    return this.#idleMs;
  }

  /** Starts watching. Does nothing when no policy layer sets an idle lock. */
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
