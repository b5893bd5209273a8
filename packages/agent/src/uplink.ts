import { systemClock, TandemError, type AnyTandemEvent, type Clock } from '@tandem/core';
import { UplinkError } from './errors.js';
import type { DiskEventQueue } from './event-queue.js';

/**
 * Where the agent ships its events: the management server, in practice. `send` resolves once
 * the receiver has stored the whole batch (it is idempotent by event id, so a batch sent again
 * after a crash is stored once), and rejects otherwise; it must give up when `signal` aborts.
 *
 * @example
 * ```ts
 * const uplink: EventUplink = {
 *   async send(batch, signal) {
 *     const res = await fetch('https://tandem.example.com/v1/events', {
 *       method: 'POST', body: JSON.stringify({ events: batch }), signal,
 *       headers: { 'content-type': 'application/json' },
 *     });
 *     if (!res.ok) throw new Error(`HTTP ${res.status}`);
 *   },
 * };
 * ```
 */
export interface EventUplink {
  send(batch: readonly AnyTandemEvent[], signal: AbortSignal): Promise<void>;
}

/** Options of {@link EventShipper}. */
export interface EventShipperOptions {
  queue: DiskEventQueue;
  uplink: EventUplink;
  /** The clock the backoff sleeps on (the mock's virtual clock in tests). Default: the system clock. */
  clock?: Clock;
  /** Events per batch. Default 200. */
  batchSize?: number;
  /** How long one `send` may take before it is aborted and retried, in real milliseconds. Default 30 s. */
  sendTimeoutMs?: number;
  /** The first retry's delay; each further failure doubles it, up to `maxBackoffMs`. Default 1 s. */
  initialBackoffMs?: number;
  /** Default 5 minutes. */
  maxBackoffMs?: number;
  /** Told of each failed attempt (the agent logs it). */
  onError?: (err: TandemError, attempt: number, retryInMs: number) => void;
}

/** What the shipper has done, for `tandem agent status`. */
export interface ShipperStatus {
  depth: number;
  shipped: number;
  failures: number;
  lastError: string | null;
  retryAt: string | null;
}

/**
 * Ships the queue to the uplink in order, in batches, one batch at a time: a batch is
 * acknowledged (durably) only after `send` resolved, so an event is never dropped, and one the
 * queue acknowledged is never sent again. Failures back off exponentially and retry for as long
 * as it takes (any time offline).
 *
 * @example
 * ```ts
 * const shipper = new EventShipper({ queue, uplink: httpUplink({ url }) });
 * shipper.start();
 * events.on('*', () => shipper.wake());
 * ```
 */
export class EventShipper {
  readonly #o: EventShipperOptions;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #status: ShipperStatus;
  #idleWaiters: (() => void)[] = [];

  constructor(options: EventShipperOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#status = { depth: options.queue.depth, shipped: 0, failures: 0, lastError: null, retryAt: null };
  }

  get status(): ShipperStatus {
    return { ...this.#status, depth: this.#o.queue.depth };
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** New events are in the queue: ship them now (does not cut a backoff short). */
  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Resolves when the queue is empty (everything shipped). */
  drained(): Promise<void> {
    if (this.#o.queue.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops shipping; an upload in flight is aborted (and, unacknowledged, sent again later). */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { queue, uplink } = this.#o;
    const batchSize = this.#o.batchSize ?? 200;
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      const batch = queue.peek(batchSize);
      if (batch.events.length === 0) {
        for (const w of this.#idleWaiters.splice(0)) w();
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (queue.depth > 0 || this.#stop.signal.aborted) this.wake();
        });
        continue;
      }
      const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(this.#o.sendTimeoutMs ?? 30_000)]);
      try {
        await uplink.send(batch.events, signal);
      } catch (cause) {
        if (this.#stop.signal.aborted) break;
        attempt += 1;
        const delay = Math.min(
          this.#o.maxBackoffMs ?? 300_000,
          (this.#o.initialBackoffMs ?? 1000) * 2 ** (attempt - 1),
        );
        const err = TandemError.is(cause)
          ? cause
          : new UplinkError(`The uplink did not take ${batch.events.length} events: ${(cause as Error).message}`, {
              cause,
            });
        this.#status.failures += 1;
        this.#status.lastError = err.message;
        this.#status.retryAt = new Date(this.#clock.now() + delay).toISOString();
        this.#o.onError?.(err, attempt, delay);
        await this.#clock.sleep(delay, this.#stop.signal).catch(() => undefined);
        continue;
      }
      attempt = 0;
      queue.ack(batch.end);
      this.#status.shipped += batch.events.length;
      this.#status.lastError = null;
      this.#status.retryAt = null;
    }
  }
}

/**
 * A plain HTTP uplink: POSTs `{ "events": [...] }` as JSON to `url`; any 2xx is an
 * acknowledgement. For a receiver of one's own; the management server has its own client.
 *
 * @example
 * ```ts
 * const uplink = httpUplink({ url: 'http://127.0.0.1:8080/events' });
 * ```
 */
export function httpUplink(options: { url: string; headers?: Record<string, string> }): EventUplink {
  return {
    async send(batch, signal) {
      let res: Response;
      try {
        res = await fetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers },
          body: JSON.stringify({ events: batch }),
          signal,
        });
      } catch (cause) {
        throw new UplinkError(`Could not reach the uplink ${options.url}: ${(cause as Error).message}`, { cause });
      }
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) {
        throw new UplinkError(
          `The uplink ${options.url} answered HTTP ${res.status}; the batch is kept and sent again.`,
          {
            details: { status: res.status },
          },
        );
      }
    },
  };
}
