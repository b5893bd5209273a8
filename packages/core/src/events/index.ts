// @tandem/core/events: the typed event bus and its sinks (JSON lines, SQLite).

export { EventBus } from './bus.js';
export type { EventContext, EventSink } from './bus.js';
export type {
  TandemEventMap,
  TandemEventType,
  TandemEvent,
  AnyTandemEvent,
  SessionTransitionCause,
  VmSpecChange,
} from './types.js';
export { JsonLinesSink } from './jsonl-sink.js';
export { SqliteEventSink } from './sqlite-sink.js';
export type { EventQuery, TandemEventOf } from './sqlite-sink.js';
