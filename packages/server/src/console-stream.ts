// The admin API's live stream (issue 16): Server-Sent Events carrying the store's changes (its
// change feed: LISTEN/NOTIFY on PostgreSQL, so a change through any process) and new events.
import type { ServerResponse } from 'node:http';
import type { ReceivedCursor, ServerStore, StoreChange, StoredEvent } from './store/types.js';

/** How often new events are looked for while a stream is open. */
export const STREAM_EVENT_POLL_MS = 2000;
/** A comment line keeps proxies from closing an idle stream. */
export const STREAM_PING_MS = 15_000;
/** Events whose own time is older than this are not streamed (the events page has them). */
export const STREAM_EVENT_AGE_MS = 15 * 60_000;
/** Arrivals are re-read this far back, so an event committed late by another process still shows. */
const OVERLAP_MS = 5000;

interface Client {
  readonly res: ServerResponse;
  /** Called now and then: false ends the stream (the session ran out). */
  readonly alive: () => Promise<boolean>;
}

/**
 * One process's live stream hub: it listens to the store's change feed and polls new events
 * only while a stream is open, and writes each to every open stream as
 * `event: change` / `event: events` frames.
 */
export class AdminStream {
  readonly #store: ServerStore;
  readonly #clients = new Set<Client>();
  readonly #sent = new Map<string, number>();
  #unsubscribe: (() => void) | undefined;
  #subscribing: Promise<void> | undefined;
  #poll: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #cursor: ReceivedCursor = { receivedAt: new Date(0).toISOString(), id: '' };
  #polling = false;
  readonly #now: () => number;

  constructor(store: ServerStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** How many streams are open. */
  get size(): number {
    return this.#clients.size;
  }

  /** Opens a stream on `res` (already authenticated). */
  async open(res: ServerResponse, alive: () => Promise<boolean>, headers: Record<string, string>): Promise<void> {
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.socket?.setTimeout(0);
    res.socket?.setNoDelay(true);
    const client: Client = { res, alive };
    if (this.#clients.size === 0)
      this.#cursor = { receivedAt: new Date(this.#now() - OVERLAP_MS).toISOString(), id: '' };
    this.#clients.add(client);
    res.on('close', () => this.#drop(client));
    await this.#start();
    res.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ revision: await this.#store.revision() })}\n\n`);
  }

  #drop(client: Client): void {
    this.#clients.delete(client);
    if (this.#clients.size > 0) return;
    clearInterval(this.#poll);
    clearInterval(this.#ping);
    this.#poll = this.#ping = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#sent.clear();
  }

  async #start(): Promise<void> {
    if (!this.#unsubscribe && !this.#subscribing) {
      this.#subscribing = this.#store
        .onChange((c) => this.#broadcast('change', c))
        .then((u) => {
          if (this.#clients.size === 0) u();
          else this.#unsubscribe = u;
        })
        .finally(() => (this.#subscribing = undefined));
    }
    await this.#subscribing;
    this.#poll ??= setInterval(() => void this.#pollEvents(), STREAM_EVENT_POLL_MS);
    this.#ping ??= setInterval(() => void this.#pingAll(), STREAM_PING_MS);
  }

  #broadcast(event: 'change' | 'events', data: StoreChange | { events: StoredEvent[] }): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.#clients) c.res.write(frame);
  }

  async #pingAll(): Promise<void> {
    for (const c of [...this.#clients]) {
      const ok = await c.alive().catch(() => false);
      if (ok) c.res.write(': ping\n\n');
      else c.res.end();
    }
  }

  async #pollEvents(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const atSince = new Date(this.#now() - STREAM_EVENT_AGE_MS).toISOString();
      let after: ReceivedCursor = {
        receivedAt: new Date(Date.parse(this.#cursor.receivedAt) - OVERLAP_MS).toISOString(),
        id: '',
      };
      for (let pages = 0; pages < 20; pages++) {
        const got = await this.#store.eventsReceivedAfter(after, atSince, 1000);
        const fresh = got.filter((e) => !this.#sent.has(e.event.id));
        for (const e of fresh) this.#sent.set(e.event.id, Date.parse(e.receivedAt));
        if (fresh.length > 0) this.#broadcast('events', { events: fresh });
        const last = got[got.length - 1];
        if (last && last.receivedAt > this.#cursor.receivedAt)
          this.#cursor = { receivedAt: last.receivedAt, id: last.event.id };
        if (got.length < 1000 || !last) break;
        after = { receivedAt: last.receivedAt, id: last.event.id };
      }
      const keep = Date.parse(this.#cursor.receivedAt) - 2 * OVERLAP_MS;
      for (const [id, at] of this.#sent) if (at < keep) this.#sent.delete(id);
    } catch {
      // The store is away for now: the next poll tries again.
    } finally {
      this.#polling = false;
    }
  }
}
