import type { Clock } from '../clock.js';
import type { EventBus } from '../events/bus.js';
import type { Session } from './session.js';

/** Options of {@link Watchdog}. */
export interface WatchdogOptions {
  /** Default: the session's clock (the system clock unless the session was given another). */
  clock?: Clock;
  events?: EventBus;
  /** Restarts allowed within `windowMs` before the watchdog gives up (default 3). */
  maxRestarts?: number;
  /** The window restarts are counted in (default 10 minutes). */
  windowMs?: number;
  /** Wait before the first restart, doubled for each further one (default 2 s). */
  backoffMs?: number;
}

/**
 * Restarts a session's VM when it crashes (MED-V's watchdog), with exponential backoff, up to
 * `maxRestarts` within `windowMs`; each restart is a `watchdog.restart` event. A VM that keeps
 * crashing is left crashed, so the user sees it instead of a restart loop.
 *
 * @example
 * ```ts
 * const watchdog = new Watchdog(session, { events });
 * watchdog.start();
 * ```
 */
export class Watchdog {
  readonly #session: Session;
  readonly #options: Required<Omit<WatchdogOptions, 'events'>> & { events?: EventBus | undefined };
  #restarts: number[] = [];
  #abort: AbortController | undefined;
  #unsubscribe: (() => void) | undefined;
  #busy = false;

  constructor(session: Session, options: WatchdogOptions = {}) {
    this.#session = session;
    this.#options = {
      maxRestarts: options.maxRestarts ?? 3,
      windowMs: options.windowMs ?? 10 * 60_000,
      backoffMs: options.backoffMs ?? 2_000,
      clock: options.clock ?? session.clock,
      events: options.events,
    };
  }

  /** Starts watching the session (through its `session.transition` events). */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    const events = this.#options.events;
    if (!events) return;
    const onTransition = (e: { session: string | null; data: { to: string } }): void => {
      if (e.session === this.#session.id && e.data.to === 'crashed') void this.check();
    };
    events.on('session.transition', onTransition);
    this.#unsubscribe = () => events.off('session.transition', onTransition);
  }

  /** Stops watching. */
  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Restarts the VM if the session is crashed and the budget allows. Returns true if it restarted. */
  async check(): Promise<boolean> {
    const signal = this.#abort?.signal;
    if (this.#busy || this.#session.state !== 'crashed' || !signal || signal.aborted) return false;
    this.#busy = true;
    try {
      const { clock, maxRestarts, windowMs, backoffMs, events } = this.#options;
      const now = clock.now();
      this.#restarts = this.#restarts.filter((t) => now - t < windowMs);
      if (this.#restarts.length >= maxRestarts) return false;
      await clock.sleep(backoffMs * 2 ** this.#restarts.length, signal);
      if (this.#session.state !== 'crashed') return false;
      this.#restarts.push(clock.now());
      const attempt = this.#restarts.length;
      events?.publish(
        'watchdog.restart',
        { vm: this.#session.vm, attempt, reason: 'the VM crashed' },
        { workspace: this.#session.workspace.metadata.name, session: this.#session.id },
      );
      await this.#session.start();
      return true;
    } catch {
      return false;
    } finally {
      this.#busy = false;
    }
  }
}
