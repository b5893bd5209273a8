import type { HypervisorConnectionEvent } from '../adapter/types.js';
import type { Clock } from '../clock.js';
import { CancelledError, TandemError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { TandemEventMap, TandemEventType } from '../events/types.js';
import type { Session } from './session.js';

/** Options of {@link Watchdog}. */
export interface WatchdogOptions {
  /** Default: the session's clock (the system clock unless the session was given another). */
  clock?: Clock;
  /** The session's event bus: the watchdog hears crashes on it and publishes every step to it. */
  events?: EventBus;
  /** Restarts allowed within `windowMs` before the watchdog gives up (default 3). */
  maxRestarts?: number;
  /** The window restarts are counted in; older ones no longer count (default 10 minutes). */
  windowMs?: number;
  /** Wait before the first restart in the window, doubled for each further one (default 2 s). */
  backoffMs?: number;
  /** The longest wait between restarts, however many came before (default 5 minutes). */
  maxBackoffMs?: number;
  /**
   * How often the VM's state is read from the hypervisor, the fall-back for a crash the
   * adapter's events missed or cannot report (default 30 s; 0 turns polling off). Only a running
   * or locked session is polled.
   */
  pollMs?: number;
  /**
   * Releases the disk keys of an encrypted VM again for each restart, the way its start did
   * (the host agent passes its envelope check: the lease and trusted time are checked again).
   * The keys live in memory for that start only and are disposed of (wiped) once it returns. A
   * release that is refused, and that another try cannot change (an expired lease, a missing
   * envelope), fails the restart and the watchdog gives up. Without it, restarts use the keys the
   * session was opened with, which are wiped once its own start had them.
   */
  diskKeys?: () => Promise<WatchdogDiskKeys | undefined>;
  /**
   * Runs each restart attempt (the last look at the session's state, the key release and the
   * start) inside the caller's lock, so that a restart never interleaves with the user's own
   * operations on the workspace: the host agent passes the per-workspace lock its session
   * commands take, and a `stop` or `down` that arrives during a restart runs after it.
   */
  exclusive?: <T>(attempt: () => Promise<T>) => Promise<T>;
}

/** What {@link WatchdogOptions.diskKeys} returns: the keys by key id, wiped on dispose (`DiskKeyRelease` is one). */
export interface WatchdogDiskKeys extends Disposable {
  readonly diskKeys: ReadonlyMap<string, Uint8Array>;
}

type Source = TandemEventMap['watchdog.detected']['source'];

/**
 * Restarts a session's VM when it crashes (MED-V's watchdog). A crash is seen through the
 * adapter's events (the session turns `crashed`), through polling as the fall-back, and through
 * the state read again when the adapter regains a lost hypervisor. Restarts wait with
 * exponential backoff, up to `maxRestarts` within a sliding `windowMs`; a VM that keeps crashing
 * is left crashed, so the user sees it instead of a restart loop. Every step is an event:
 * `watchdog.detected`, `watchdog.scheduled`, `watchdog.restart` (the attempt begins),
 * `watchdog.restarted` or `watchdog.failed`, `watchdog.gave-up`, and `hypervisor.lost` /
 * `hypervisor.restored` from adapters that report their connection.
 *
 * @example
 * ```ts
 * const events = new EventBus();
 * const session = await new SessionManager({ adapter, events }).open(loaded);
 * const watchdog = new Watchdog(session, { events, maxRestarts: 3, windowMs: 600_000, backoffMs: 2_000 });
 * watchdog.start();
 * await session.start();
 * // ... the VM's process dies: watchdog.detected, watchdog.scheduled, watchdog.restart, watchdog.restarted
 * watchdog.stop();
 * ```
 */
export class Watchdog {
  readonly #session: Session;
  readonly #clock: Clock;
  readonly #events: EventBus | undefined;
  readonly #maxRestarts: number;
  readonly #windowMs: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #pollMs: number;
  readonly #diskKeys: WatchdogOptions['diskKeys'];
  readonly #exclusive: NonNullable<WatchdogOptions['exclusive']>;
  #restarts: number[] = [];
  #abort: AbortController | undefined;
  #cleanup: (() => void)[] = [];
  #busy = false;
  /** Set while a refresh the watchdog asked for runs, so a crash it finds is attributed to it. */
  #refreshing: Source | undefined;
  #lostAt: number | undefined;
  #deferred: string | undefined;
  #restoredWaiters: (() => void)[] = [];

  constructor(session: Session, options: WatchdogOptions = {}) {
    this.#session = session;
    this.#clock = options.clock ?? session.clock;
    this.#events = options.events;
    this.#maxRestarts = options.maxRestarts ?? 3;
    this.#windowMs = options.windowMs ?? 10 * 60_000;
    this.#backoffMs = options.backoffMs ?? 2_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;
    this.#pollMs = options.pollMs ?? 30_000;
    this.#diskKeys = options.diskKeys;
    this.#exclusive = options.exclusive ?? ((attempt) => attempt());
  }

  /** True between {@link Watchdog.start} and {@link Watchdog.stop}. */
  get running(): boolean {
    return this.#abort !== undefined;
  }

  /** True while the adapter reports its hypervisor unreachable. */
  get hypervisorLost(): boolean {
    return this.#lostAt !== undefined;
  }

  /**
   * Starts watching: the session's `session.transition` events, the adapter's connection (when
   * it reports one) and, every `pollMs`, the VM's state. A session already crashed is handled now.
   */
  start(): void {
    if (this.#abort) return;
    const abort = new AbortController();
    this.#abort = abort;
    const events = this.#events;
    if (events) {
      const onTransition = (e: { session: string | null; data: TandemEventMap['session.transition'] }): void => {
        if (e.session !== this.#session.id || e.data.to !== 'crashed' || e.data.failed) return;
        const source: Source =
          e.data.operation === 'hypervisor'
            ? 'event'
            : e.data.operation === 'refresh'
              ? (this.#refreshing ?? 'poll')
              : 'check';
        const reason = e.data.reason ?? 'the VM crashed';
        // Found by the re-read after a reconnection: reported after `hypervisor.restored`.
        if (source === 'reconnect') this.#deferred = reason;
        else void this.#handle(source, reason);
      };
      events.on('session.transition', onTransition);
      this.#cleanup.push(() => events.off('session.transition', onTransition));
    }
    const unwatch = this.#session.adapter.watchConnection?.((e) => this.#onConnection(e));
    if (unwatch) this.#cleanup.push(unwatch);
    if (this.#pollMs > 0) void this.#poll(abort.signal);
    if (this.#session.state === 'crashed') void this.#handle('check', 'the VM was crashed when the watchdog started');
  }

  /** Stops watching; a restart that waits for its backoff is cancelled. */
  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
    for (const undo of this.#cleanup.splice(0)) undo();
  }

  /**
   * Restarts the VM if the session is crashed and the budget allows, retrying with backoff
   * while it does. Returns true once the VM runs again, false when there was nothing to do, the
   * watchdog gave up, or it was stopped.
   */
  async check(): Promise<boolean> {
    return this.#handle('check', 'the VM crashed');
  }

  async #handle(source: Source, reason: string): Promise<boolean> {
    const signal = this.#abort?.signal;
    if (this.#busy || this.#session.state !== 'crashed' || !signal || signal.aborted) return false;
    this.#busy = true;
    const vm = this.#session.vm;
    try {
      this.#publish('watchdog.detected', { vm, reason, source });
      for (;;) {
        const now = this.#clock.now();
        this.#restarts = this.#restarts.filter((t) => now - t < this.#windowMs);
        if (this.#restarts.length >= this.#maxRestarts) {
          this.#gaveUp(`${this.#restarts.length} restarts within ${this.#windowMs} ms used the budget`);
          return false;
        }
        const attempt = this.#restarts.length + 1;
        const delayMs = Math.min(this.#backoffMs * 2 ** this.#restarts.length, this.#maxBackoffMs);
        this.#publish('watchdog.scheduled', { vm, attempt, delayMs });
        await this.#clock.sleep(delayMs, signal);
        // A start cannot work while the hypervisor is away: wait for it rather than spend the budget.
        if (this.#lostAt !== undefined) await this.#untilRestored(signal);
        try {
          const started = await this.#exclusive(async () => {
            // The user (or another part of the agent) dealt with it meanwhile.
            if (this.#session.state !== 'crashed' || this.#session.closed || signal.aborted) return false;
            this.#restarts.push(this.#clock.now());
            this.#publish('watchdog.restart', { vm, attempt, reason });
            await this.#start();
            this.#publish('watchdog.restarted', { vm, attempt });
            return true;
          });
          return started;
        } catch (thrown) {
          const keys = thrown instanceof KeysRefused;
          const err = keys ? thrown.refusal : thrown;
          const code = TandemError.is(err) ? err.code : 'TANDEM_INTERNAL';
          const retryable = TandemError.is(err) ? err.retryable : false;
          const message = keys
            ? `The disk key was not released for the restart, so the VM was not started: ${(err as Error).message}`
            : (err as Error).message;
          this.#publish('watchdog.failed', { vm, attempt, code, message, retryable });
          // Policy (an expired workspace, the offline limit) will refuse every further try.
          if (code === 'TANDEM_POLICY_DENIED') {
            this.#gaveUp(`the usage policy refused the restart: ${(err as Error).message}`);
            return false;
          }
          // So will a refused key (an expired lease, no envelope) until the user acts.
          if (keys && !retryable) {
            this.#gaveUp(`the disk key was refused for the restart: ${(err as Error).message}`);
            return false;
          }
          if (this.#session.state !== 'crashed' || signal.aborted) return false;
        }
      }
    } catch (err) {
      if (TandemError.is(err, 'TANDEM_CANCELLED')) return false;
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * One restart. An encrypted VM's keys are released again for it and wiped when the start has
   * returned (hence the `await` inside `using`); a refused release is a {@link KeysRefused}.
   */
  async #start(): Promise<void> {
    let release: WatchdogDiskKeys | undefined;
    try {
      release = await this.#diskKeys?.();
    } catch (err) {
      throw new KeysRefused(err);
    }
    using keys = release;
    await this.#session.start(keys ? { diskKeys: keys.diskKeys } : {});
  }

  /** Resolves once the hypervisor is back and the state was read again; rejects when stopped. */
  #untilRestored(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(new CancelledError('The watchdog was stopped.'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#restoredWaiters.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  #gaveUp(reason: string): void {
    this.#publish('watchdog.gave-up', {
      vm: this.#session.vm,
      restarts: this.#restarts.length,
      windowMs: this.#windowMs,
      reason,
    });
  }

  async #poll(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(this.#pollMs, signal);
      } catch {
        return;
      }
      if (this.#session.closed) return;
      const state = this.#session.state;
      if (this.#lostAt !== undefined || (state !== 'running' && state !== 'locked')) continue;
      await this.#refresh('poll');
    }
  }

  /** Reads the VM's state again; a failure (the hypervisor unreachable) leaves the session as it is. */
  async #refresh(source: Source): Promise<void> {
    this.#refreshing = source;
    try {
      await this.#session.refresh();
    } catch {
      // The next poll, or the hypervisor's return, reads it again.
    } finally {
      this.#refreshing = undefined;
    }
  }

  #onConnection(e: HypervisorConnectionEvent): void {
    const adapter = this.#session.adapter.name;
    const vm = this.#session.vm;
    if (e.state === 'lost') {
      if (this.#lostAt !== undefined) return;
      this.#lostAt = e.at;
      this.#publish('hypervisor.lost', { adapter, vm, reason: e.reason });
      return;
    }
    if (this.#lostAt === undefined) return;
    const downMs = Math.max(0, e.at - this.#lostAt);
    this.#lostAt = undefined;
    // What the VM did meanwhile is unknown: read it, do not assume it.
    void this.#refresh('reconnect').then(() => {
      this.#publish('hypervisor.restored', { adapter, vm, downMs, state: this.#session.state });
      for (const wake of this.#restoredWaiters.splice(0)) wake();
      const crash = this.#deferred;
      this.#deferred = undefined;
      if (crash !== undefined) void this.#handle('reconnect', crash);
    });
  }

  #publish<K extends TandemEventType>(type: K, data: TandemEventMap[K]): void {
    this.#events?.publish(type, data, {
      workspace: this.#session.workspace.metadata.name,
      session: this.#session.id,
    });
  }
}

/** Marks a refusal of the key release the watchdog asked for (not of the start itself). */
class KeysRefused extends Error {
  constructor(readonly refusal: unknown) {
    super('the disk key release was refused', { cause: refusal });
  }
}
