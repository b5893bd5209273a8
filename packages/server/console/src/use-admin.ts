import { useEffect, useState } from 'preact/hooks';
import { admin, messageOf } from './api.ts';
import { useRevision } from './live.ts';

/** What a page shows of one admin action: its reply, or why there is none yet. */
export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: string;
  readonly reload: () => void;
}

/** Calls an admin action and again whenever `deps` or the live revision change. */
export function useAdmin<T>(action: string, body: object = {}, deps: readonly unknown[] = []): Loaded<T> {
  const revision = useRevision();
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    admin<T>(action, body).then(
      (d) => {
        if (!live) return;
        setData(d);
        setError('');
      },
      (e: unknown) => live && setError(messageOf(e)),
    );
    return () => {
      live = false;
    };
  }, [action, revision, n, ...deps]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

/** A date for people: `2026-12-02 07:31:04`. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC');
}
