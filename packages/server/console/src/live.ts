// The live stream (`GET /v1/admin/stream`, Server-Sent Events): a change made by any admin,
// through any server process, and new events reach every open console without a reload.
import { useEffect, useState } from 'preact/hooks';
import type { StoredEvent } from './api.ts';

let revisionValue = 0;
const revisionListeners = new Set<(r: number) => void>();
function bump(): void {
  revisionValue++;
  for (const f of revisionListeners) f(revisionValue);
}

/** A number that grows at every change the stream reports: a page refetches when it changes. */
export function useRevision(): number {
  const [r, setR] = useState(revisionValue);
  useEffect(() => {
    revisionListeners.add(setR);
    return () => void revisionListeners.delete(setR);
  }, []);
  return r;
}

type EventsListener = (events: readonly StoredEvent[]) => void;
const eventListeners = new Set<EventsListener>();
let source: EventSource | undefined;

/** Calls `f` with each batch of new events; returns the unsubscribe. */
export function onEvents(f: EventsListener): () => void {
  eventListeners.add(f);
  return () => eventListeners.delete(f);
}

/** Opens the stream (once). */
export function openStream(): void {
  if (source) return;
  source = new EventSource('/v1/admin/stream', { withCredentials: true });
  source.addEventListener('change', bump);
  source.addEventListener('events', (e: MessageEvent<string>) => {
    const data = JSON.parse(e.data) as { events?: StoredEvent[] };
    const events = data.events ?? [];
    for (const f of eventListeners) f(events);
  });
}

/** Closes the stream (at sign-out). */
export function closeStream(): void {
  source?.close();
  source = undefined;
}
