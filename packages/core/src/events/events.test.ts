import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { EventBus } from './bus.js';
import { JsonLinesSink } from './jsonl-sink.js';
import { SqliteEventSink } from './sqlite-sink.js';

const dir = () => mkdtempSync(join(tmpdir(), 'tandem-events-'));

describe('events', () => {
  it('delivers typed events by type and to "*", stamped with the clock', () => {
    const clock = new VirtualClock(Date.parse('2026-11-21T12:00:00Z'));
    const bus = new EventBus({ clock });
    const byType: string[] = [];
    const all: string[] = [];
    bus.on('session.transition', (e) => byType.push(`${e.data.from}>${e.data.to}`));
    bus.on('*', (e) => all.push(`${e.type}@${e.at}`));
    bus.publish(
      'session.transition',
      { from: 'stopped', to: 'starting', operation: 'start', vm: 'vm' },
      { workspace: 'erp', session: 's1' },
    );
    bus.publish('adapter.warning', { adapter: 'virtualbox', message: 'newer than tested' });
    expect(byType).toEqual(['stopped>starting']);
    expect(all).toEqual(['session.transition@2026-11-21T12:00:00.000Z', 'adapter.warning@2026-11-21T12:00:00.000Z']);
  });

  it('appends JSON lines that survive a torn last line', () => {
    const file = join(dir(), 'events.jsonl');
    const bus = new EventBus();
    const sink = new JsonLinesSink(file);
    bus.attach(sink);
    bus.publish('snapshot.created', { vm: 'vm', snapshot: 'a' }, { workspace: 'erp' });
    bus.publish('snapshot.created', { vm: 'vm', snapshot: 'b' }, { workspace: 'erp' });
    appendFileSync(file, '{"type":"snapshot.cre'); // a crash mid-write
    expect(new JsonLinesSink(file).read().map((e) => e.data)).toEqual([
      { vm: 'vm', snapshot: 'a' },
      { vm: 'vm', snapshot: 'b' },
    ]);
  });

  it('stores events in SQLite, queryable by workspace, session, type and time', () => {
    const clock = new VirtualClock(Date.parse('2026-11-21T00:00:00Z'));
    const bus = new EventBus({ clock });
    const file = join(dir(), 'events.sqlite');
    const store = new SqliteEventSink(file);
    const detach = bus.attach(store);
    const t = (from: 'stopped' | 'running', to: 'stopped' | 'running') => ({
      from,
      to,
      operation: 'start' as const,
      vm: 'vm',
    });
    bus.publish('session.transition', t('stopped', 'running'), { workspace: 'erp', session: 's1' });
    void clock.advance(60_000); // moves the time synchronously when nothing sleeps
    bus.publish('snapshot.created', { vm: 'vm', snapshot: 'a' }, { workspace: 'erp', session: 's1' });
    bus.publish('session.transition', t('stopped', 'running'), { workspace: 'crm', session: 's2' });
    detach();
    bus.publish('session.transition', t('running', 'stopped'), { workspace: 'crm', session: 's2' });
    store.close();

    const reopened = new SqliteEventSink(file);
    expect(reopened.query()).toHaveLength(3);
    expect(reopened.query({ workspace: 'erp' }).map((e) => e.type)).toEqual(['session.transition', 'snapshot.created']);
    expect(reopened.query({ session: 's2' })).toHaveLength(1);
    expect(reopened.query({ type: 'snapshot.created' })[0]?.data).toEqual({ vm: 'vm', snapshot: 'a' });
    expect(reopened.query({ type: ['snapshot.created', 'session.transition'], workspace: 'crm' })).toHaveLength(1);
    expect(reopened.query({ since: '2026-11-21T00:00:30Z' })).toHaveLength(2);
    expect(reopened.query({ until: new Date('2026-11-21T00:00:30Z') })).toHaveLength(1);
    expect(reopened.query({ limit: 1 })[0]?.workspace).toBe('crm');
    reopened.close();
  });

  it('types query results by the queried type, and attaches a sink for some types only', () => {
    const bus = new EventBus({ clock: new VirtualClock(0) });
    const store = new SqliteEventSink(':memory:');
    bus.attach(store, { types: ['snapshot.created'] });
    bus.publish('session.transition', { from: 'stopped', to: 'starting', operation: 'start', vm: 'vm' });
    bus.publish('snapshot.created', { vm: 'vm', snapshot: 'a' });
    const snapshots = store.query({ type: 'snapshot.created' });
    // Typed without a cast: only snapshot.created payloads have `snapshot`.
    const names: string[] = snapshots.map((e) => e.data.snapshot);
    expect(names).toEqual(['a']);
    expect(store.query()).toHaveLength(1);
    store.close();
  });
  it('gives every event a unique id, keeps an event once by its id, and reads stores made before ids', () => {
    const bus = new EventBus({ clock: new VirtualClock(0) });
    const store = new SqliteEventSink(':memory:');
    bus.attach(store);
    const a = bus.publish('snapshot.created', { vm: 'vm', snapshot: 'a' });
    const b = bus.publish('snapshot.created', { vm: 'vm', snapshot: 'b' });
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.id).not.toBe(b.id);
    store.write(a); // a retried write of the same event
    expect(store.query().map((e) => e.id)).toEqual([a.id, b.id]);
    store.close();

    const dir = mkdtempSync(join(tmpdir(), 'tandem-events-'));
    const file = join(dir, 'old.sqlite');
    const old = new DatabaseSync(file);
    old.exec(
      'CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, at TEXT NOT NULL, workspace TEXT, session TEXT, data TEXT NOT NULL)',
    );
    old
      .prepare('INSERT INTO events (type, at, workspace, session, data) VALUES (?, ?, ?, ?, ?)')
      .run('snapshot.created', '2026-11-01T00:00:00.000Z', null, null, '{"vm":"vm","snapshot":"old"}');
    old.close();
    const upgraded = new SqliteEventSink(file);
    upgraded.write(a);
    expect(upgraded.query().map((e) => e.id)).toEqual(['row-1', a.id]);
    upgraded.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
