import { InvalidInputError } from '@tandem/core';
import type { EventFilter, StoredEvent } from './types.js';

/** Events per page when the filter gives no limit, and the most a page may hold. */
export const DEFAULT_PAGE_SIZE = 1000;
export const MAX_PAGE_SIZE = 10_000;

/**
 * Event types counted by `failuresSince`: these, and any type ending in `.error`, `.failed` or
 * `.failure` (so a module's new failure event is counted without a change here).
 */
export const FAILURE_EVENT_TYPES: readonly string[] = [
  'session.error',
  'sync.failed',
  'integrity.failure',
  'auth.failure',
  'guest.error',
  'watchdog.restart',
];

/** A SQL condition (`LIKE` patterns) matching {@link FAILURE_EVENT_TYPES}' suffix rule. */
export const FAILURE_SUFFIXES: readonly string[] = ['%.error', '%.failed', '%.failure'];

/** ISO 8601 in UTC with milliseconds, the form both stores keep times in. */
export function isoTime(value: string, what: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidInputError(`${what} is not an ISO 8601 time: ${JSON.stringify(value)}.`);
  return new Date(ms).toISOString();
}

/** Throws the error of {@link isoTime} when `value` is not a time; the check without the normalizing. */
function checkTime(value: string, what: string): void {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
    throw new InvalidInputError(`${what} is not an ISO 8601 time: ${JSON.stringify(value)}.`);
}

/** The page size a filter asks for, within bounds. */
export function pageSize(filter: EventFilter): number {
  const limit = filter.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1)
    throw new InvalidInputError(`limit must be a positive integer, not ${limit}.`);
  return Math.min(limit, MAX_PAGE_SIZE);
}

/** The filter's `type` as a list (empty: any type). */
export function typeList(filter: EventFilter): string[] {
  if (filter.type === undefined) return [];
  return typeof filter.type === 'string' ? [filter.type] : [...filter.type];
}

/**
 * Checks a batch and drops repeats of an id inside it (the first wins), so one statement never
 * meets the same id twice. Returns the events to write and how many repeats were dropped.
 */
export function uniqueBatch(events: readonly StoredEvent[]): { batch: StoredEvent[]; repeats: number } {
  const seen = new Set<string>();
  const batch: StoredEvent[] = [];
  let receivedAt: string | undefined;
  for (const e of events) {
    const id = e.event?.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new InvalidInputError('Every event needs an id (a non-empty string of at most 200 characters).');
    }
    if (typeof e.device !== 'string' || e.device.length === 0)
      throw new InvalidInputError(`Event ${id} has no device.`);
    checkTime(e.event.at, `Event ${id}'s time`);
    // A batch's events nearly always share one receipt time: parsed once.
    if (receivedAt === undefined || e.receivedAt !== receivedAt) {
      checkTime(e.receivedAt, `Event ${id}'s receivedAt`);
      receivedAt = e.receivedAt;
    }
    if (seen.has(id)) continue;
    seen.add(id);
    batch.push(e);
  }
  return { batch, repeats: events.length - batch.length };
}

/** One workspace an endpoint reported at its last check-in, as the reports read it. */
export interface ReportedWorkspace {
  workspace: string;
  version: string | null;
  state: string | null;
}

/**
 * Reads the workspaces out of a device's `lastState`: an array `workspaces` whose items have
 * `workspace` (or `name`), and optionally `version` and `state`. Anything else is ignored.
 */
export function reportedWorkspaces(state: unknown): ReportedWorkspace[] {
  if (typeof state !== 'object' || state === null) return [];
  const list = (state as { workspaces?: unknown }).workspaces;
  if (!Array.isArray(list)) return [];
  const out: ReportedWorkspace[] = [];
  for (const item of list as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const w = item as Record<string, unknown>;
    const name = typeof w['workspace'] === 'string' ? w['workspace'] : typeof w['name'] === 'string' ? w['name'] : null;
    if (name === null) continue;
    out.push({
      workspace: name,
      version: typeof w['version'] === 'string' ? w['version'] : null,
      state: typeof w['state'] === 'string' ? w['state'] : null,
    });
  }
  return out;
}

/** Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
