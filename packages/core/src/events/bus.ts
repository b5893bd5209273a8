import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type * as TypedEmitterTypes from 'typed-emitter';
import { systemClock, type Clock } from '../clock.js';
import type { AnyTandemEvent, TandemEvent, TandemEventMap, TandemEventType } from './types.js';

type TypedEmitter<T extends TypedEmitterTypes.EventMap> = TypedEmitterTypes.default<T>;

type Listeners = {
  [K in TandemEventType | '*']: K extends TandemEventType
    ? (event: TandemEvent<K>) => void
    : (event: AnyTandemEvent) => void;
};

/** Where an event belongs. */
export interface EventContext {
  workspace?: string | null;
  session?: string | null;
}

/** Something that stores events (a JSON-lines file, SQLite, PostgreSQL in the server). */
export interface EventSink {
  write(event: AnyTandemEvent): void;
  close?(): void | Promise<void>;
}

/**
 * The typed event bus. Listen to one type, or to `'*'` for all.
 *
 * @example
 * ```ts
 * const events = new EventBus();
 * events.on('session.transition', (e) => console.log(e.data.from, '->', e.data.to));
 * ```
 */
export class EventBus extends (EventEmitter as unknown as new () => TypedEmitter<Listeners>) {
  readonly #clock: Clock;
  readonly #sinks = new Set<EventSink>();

  constructor(options: { clock?: Clock } = {}) {
    super();
    this.#clock = options.clock ?? systemClock;
  }

  /** Builds and emits an event of `type` with `data`, stamped with a new id and the clock's time. */
  publish<K extends TandemEventType>(type: K, data: TandemEventMap[K], context: EventContext = {}): TandemEvent<K> {
    const event: TandemEvent<K> = {
      id: randomUUID(),
      type,
      at: new Date(this.#clock.now()).toISOString(),
      workspace: context.workspace ?? null,
      session: context.session ?? null,
      data,
    };
    for (const sink of this.#sinks) sink.write(event as unknown as AnyTandemEvent);
    (this.emit as (t: string, e: unknown) => boolean)(type, event);
    (this.emit as (t: string, e: unknown) => boolean)('*', event);
    return event;
  }

  /**
   * Sends every event (or, with `types`, only events of those types) to `sink` from now on.
   * Returns a function that detaches it.
   *
   * @example
   * ```ts
   * const detach = events.attach(new JsonLinesSink('audit.jsonl'), { types: ['policy.decision'] });
   * ```
   */
  attach(sink: EventSink, options: { types?: readonly TandemEventType[] } = {}): () => void {
    const types = options.types ? new Set<string>(options.types) : undefined;
    const target: EventSink = types ? { write: (e) => (types.has(e.type) ? sink.write(e) : undefined) } : sink;
    this.#sinks.add(target);
    return () => this.#sinks.delete(target);
  }
}
