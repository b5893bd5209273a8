import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { admin, messageOf, type StoredEvent } from '../api.ts';
import { onEvents } from '../live.ts';
import { when } from '../use-admin.ts';

interface Filter {
  user: string;
  device: string;
  workspace: string;
  type: string;
  since: string;
  until: string;
}
const EMPTY: Filter = { user: '', device: '', workspace: '', type: '', since: '', until: '' };
const LIMIT = 500;

function body(f: Filter): Record<string, unknown> {
  const types = f.type
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return {
    ...(f.user ? { user: f.user } : {}),
    ...(f.device ? { device: f.device } : {}),
    ...(f.workspace ? { workspace: f.workspace } : {}),
    ...(types.length ? { type: types.length === 1 ? types[0] : types } : {}),
    ...(f.since ? { since: new Date(f.since).toISOString() } : {}),
    ...(f.until ? { until: new Date(f.until).toISOString() } : {}),
  };
}

function matches(f: Filter, e: StoredEvent): boolean {
  const types = f.type
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (f.user && e.user !== f.user) return false;
  if (f.device && e.device !== f.device) return false;
  if (f.workspace && e.event.workspace !== f.workspace) return false;
  if (types.length && !types.includes(e.event.type)) return false;
  if (f.since && e.event.at < new Date(f.since).toISOString()) return false;
  if (f.until && e.event.at > new Date(f.until).toISOString()) return false;
  return true;
}

/** The event stream: filter it, watch it live, export it as CSV. */
export function EventsPage() {
  const [form, setForm] = useState<Filter>(EMPTY);
  const [applied, setApplied] = useState<Filter>(EMPTY);
  const [events, setEvents] = useState<StoredEvent[]>([]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [live, setLive] = useState(true);
  const [failure, setFailure] = useState('');
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    let current = true;
    setLoaded(false);
    admin<{ events: StoredEvent[]; next?: string }>('events', { ...body(applied), limit: LIMIT }).then(
      (r) => {
        if (!current) return;
        setEvents(r.events);
        setNext(r.next);
        setFailure('');
        setLoaded(true);
      },
      (e: unknown) => current && setFailure(messageOf(e)),
    );
    return () => {
      current = false;
    };
  }, [applied]);

  useEffect(() => {
    if (!live) return;
    return onEvents((batch) => {
      const fresh = batch.filter((e) => matches(applied, e));
      if (fresh.length)
        setEvents((old) => {
          const seen = new Set(old.map((e) => e.event.id));
          return [...old, ...fresh.filter((e) => !seen.has(e.event.id))];
        });
    });
  }, [live, applied]);

  const more = async () => {
    if (!next) return;
    try {
      const r = await admin<{ events: StoredEvent[]; next?: string }>('events', {
        ...body(applied),
        limit: LIMIT,
        after: next,
      });
      setEvents((old) => [...old, ...r.events]);
      setNext(r.next);
    } catch (err) {
      setFailure(messageOf(err));
    }
  };

  const exportCsv = async () => {
    try {
      const r = await admin<{ csv: string }>('events', { ...body(applied), limit: 10_000, format: 'csv' });
      const url = URL.createObjectURL(new Blob([r.csv], { type: 'text/csv' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `tandem-events-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      setFailure(messageOf(err));
    }
  };

  const field = (key: keyof Filter, label: string, type = 'text') =>
    html`<div class="field">
      <label for=${`ev-${key}`}>${label}</label
      ><input
        id=${`ev-${key}`}
        type=${type}
        value=${form[key]}
        onInput=${(e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value })}
      />
    </div>`;
  const shown = [...events].reverse();
  return html`
    <h1>Events</h1>
    <form class="filters" aria-label="Filter events" onSubmit=${(e: Event) => (e.preventDefault(), setApplied(form))}>
      ${field('user', 'User')} ${field('device', 'Device')} ${field('workspace', 'Workspace')}
      ${field('type', 'Type (comma-separated)')} ${field('since', 'From', 'datetime-local')}
      ${field('until', 'To', 'datetime-local')}
      <button type="submit">Filter</button>
    </form>
    <div class="toolbar">
      <label class="check"
        ><input
          type="checkbox"
          checked=${live}
          onChange=${(e: Event) => setLive((e.target as HTMLInputElement).checked)}
        />
        Live updates</label
      >
      <button type="button" class="secondary" onClick=${() => void exportCsv()}>Export CSV</button>
    </div>
    <p role="status" class="hint">
      ${loaded ? `${events.length} event(s)${next ? ' (more below)' : ''}.` : 'Loading…'}
    </p>
    ${failure && html`<p class="error" role="alert">${failure}</p>`}
    <table class="events">
      <caption class="sr-only">
        Events, newest first
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Type</th>
          <th scope="col">User</th>
          <th scope="col">Device</th>
          <th scope="col">Workspace</th>
        </tr>
      </thead>
      <tbody>
        ${shown.map(
          (e) =>
            html`<tr data-event=${e.event.id}>
              <td>${when(e.event.at)}</td>
              <td>${e.event.type}</td>
              <td>${e.user ?? '—'}</td>
              <td>
                <a href=${`#/endpoints/${encodeURIComponent(e.device)}`} title=${e.device}>${e.device.slice(0, 24)}…</a>
              </td>
              <td>${e.event.workspace ?? '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${next && html`<p><button type="button" class="secondary" onClick=${() => void more()}>Load more</button></p>`}
  `;
}
