import type { Clock, HypervisorConnectionEvent } from '@tandem/core';

/** Timing of {@link ConnectionWatch}, in milliseconds of the adapter's clock. */
export interface ConnectionWatchTiming {
  /** Between two keep-alive calls while the connection is up. */
  readonly keepaliveMs: number;
  /** A keep-alive call that has not answered by then counts as a lost connection. */
  readonly keepaliveTimeoutMs: number;
  /** The first wait before reconnecting after a loss, doubled for each failed try. */
  readonly reconnectMs: number;
  /** The longest wait between two reconnection tries. */
  readonly maxReconnectMs: number;
}

/** The defaults of {@link ConnectionWatchTiming}. */
export const DEFAULT_CONNECTION_TIMING: ConnectionWatchTiming = {
  keepaliveMs: 5_000,
  keepaliveTimeoutMs: 15_000,
  reconnectMs: 500,
  maxReconnectMs: 30_000,
};

/**
 * Whether libvirtd is reachable, as one state with `lost` / `restored` events. Every call the
 * adapter makes tells it what it saw ({@link ConnectionWatch.lost}, {@link ConnectionWatch.ok});
 * while someone listens it also calls libvirtd on its own: a keep-alive every `keepaliveMs`, and
 * after a loss reconnection tries with backoff, so the return is noticed without a caller.
 *
 * The binding has no keep-alive or close callback of its own (libvirt's need an event loop
 * registered with the library, which `@unraid/libvirt` does not run), hence the calls here.
 */
export class ConnectionWatch {
  readonly #listeners = new Set<(e: HypervisorConnectionEvent) => void>();
  #down: { since: number; reason: string } | undefined;
  #loop: AbortController | undefined;
  #wake: AbortController | undefined;
  #tries = 0;
  #sleeping = false;
  #rearm = false;

  constructor(
    /** One cheap call to libvirtd; resolves when it answered. */
    readonly ping: () => Promise<void>,
    readonly clock: Clock,
    readonly timing: ConnectionWatchTiming = DEFAULT_CONNECTION_TIMING,
  ) {}

  /** True while libvirtd is known to be unreachable. */
  get isLost(): boolean {
    return this.#down !== undefined;
  }

  /** Adds a listener; the keep-alive runs while there is at least one. */
  subscribe(listener: (e: HypervisorConnectionEvent) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#loop) {
      this.#loop = new AbortController();
      void this.#run(this.#loop.signal);
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopLoop();
    };
  }

  /** A call found libvirtd unreachable. */
  lost(reason: string): void {
    if (this.#down) return;
    this.#down = { since: this.clock.now(), reason };
    this.#tries = 0;
    this.#emit({ state: 'lost', reason, at: this.#down.since });
    // A keep-alive wait in progress is cut short: the first reconnection try comes after reconnectMs.
    if (this.#sleeping) {
      this.#rearm = true;
      this.#wake?.abort();
    }
  }

  /** A call reached libvirtd. */
  ok(): void {
    const down = this.#down;
    if (!down) return;
    this.#down = undefined;
    this.#tries = 0;
    const at = this.clock.now();
    this.#emit({ state: 'restored', reason: `libvirtd answered again after ${at - down.since} ms`, at });
  }

  /** Checks now instead of at the next keep-alive (the event stream ended, say). */
  nudge(): void {
    this.#wake?.abort();
  }

  /** Stops the keep-alive and forgets every listener. */
  close(): void {
    this.#listeners.clear();
    this.#stopLoop();
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { keepaliveMs, reconnectMs, maxReconnectMs } = this.timing;
    while (!signal.aborted) {
      const delay = this.#down ? Math.min(reconnectMs * 2 ** this.#tries, maxReconnectMs) : keepaliveMs;
      const wake = new AbortController();
      this.#wake = wake;
      const stop = (): void => wake.abort();
      signal.addEventListener('abort', stop, { once: true });
      this.#sleeping = true;
      await this.clock.sleep(delay, wake.signal).catch(() => undefined);
      this.#sleeping = false;
      signal.removeEventListener('abort', stop);
      if (signal.aborted) return;
      if (this.#rearm) {
        this.#rearm = false;
        continue;
      }
      const wasDown = this.#down !== undefined;
      await this.#check();
      if (wasDown && this.#down) this.#tries++;
    }
  }

  async #check(): Promise<void> {
    const timeout = new AbortController();
    const outcome = await Promise.race([
      this.ping().then(
        () => ({ ok: true as const }),
        (err: unknown) => ({ ok: false as const, reason: err instanceof Error ? err.message : String(err) }),
      ),
      this.clock.sleep(this.timing.keepaliveTimeoutMs, timeout.signal).then(
        () => ({ ok: false as const, reason: `libvirtd did not answer within ${this.timing.keepaliveTimeoutMs} ms` }),
        () => ({ ok: false as const, reason: 'cancelled' }),
      ),
    ]);
    timeout.abort();
    if (outcome.ok) this.ok();
    else this.lost(outcome.reason);
  }

  #stopLoop(): void {
    this.#loop?.abort();
    this.#loop = undefined;
  }

  #emit(e: HypervisorConnectionEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not stop the others.
      }
    }
  }
}
