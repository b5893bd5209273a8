import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { EventSink } from './bus.js';
import type { AnyTandemEvent, TandemEvent, TandemEventType } from './types.js';

/** An event of one of the types `K`, as a union discriminated on `type`. */
export type TandemEventOf<K extends TandemEventType> = { [P in K]: TandemEvent<P> }[K];

/** A query over stored events; every field narrows the result. */
export interface EventQuery<K extends TandemEventType = TandemEventType> {
  workspace?: string;
  session?: string;
  /** Only these types; the result is typed accordingly. */
  type?: K | readonly K[];
  /** ISO 8601 or a Date: events at or after. */
  since?: string | Date;
  /** ISO 8601 or a Date: events before. */
  until?: string | Date;
  /** At most this many, newest last. */
  limit?: number;
}

/**
 * The embedded event store, on Node's built-in `node:sqlite` (no native build).
 *
 * @example
 * ```ts
 * const store = new SqliteEventSink('/var/lib/tandem/events.sqlite');
 * events.attach(store);
 * for (const e of store.query({ workspace: 'legacy-erp', type: 'session.transition' })) {
 *   console.log(e.data.from, '->', e.data.to); // typed: only session.transition events
 * }
 * ```
 */
export class SqliteEventSink implements EventSink {
  readonly #db: DatabaseSync;
  readonly #insert: ReturnType<DatabaseSync['prepare']>;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        workspace TEXT,
        session TEXT,
        data TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS events_workspace_at ON events (workspace, at);
      CREATE INDEX IF NOT EXISTS events_session_at ON events (session, at);
      CREATE INDEX IF NOT EXISTS events_type_at ON events (type, at);
    `);
    // Stores written before events had ids get the column; their old rows read back with an id
    // made from the row number.
    const columns = this.#db.prepare('PRAGMA table_info(events)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'uid')) this.#db.exec('ALTER TABLE events ADD COLUMN uid TEXT');
    this.#db.exec('CREATE UNIQUE INDEX IF NOT EXISTS events_uid ON events (uid)');
    this.#insert = this.#db.prepare(
      'INSERT OR IGNORE INTO events (uid, type, at, workspace, session, data) VALUES (?, ?, ?, ?, ?, ?)',
    );
  }

  /** Stores `event`; an event whose id is already stored is ignored (writes are idempotent). */
  write(event: AnyTandemEvent): void {
    this.#insert.run(event.id, event.type, event.at, event.workspace, event.session, JSON.stringify(event.data));
  }

  /** Events matching `query`, oldest first, typed by the query's `type`. */
  query<K extends TandemEventType = TandemEventType>(query: EventQuery<K> = {}): TandemEventOf<K>[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.workspace !== undefined) {
      where.push('workspace = ?');
      params.push(query.workspace);
    }
    if (query.session !== undefined) {
      where.push('session = ?');
      params.push(query.session);
    }
    if (query.type !== undefined) {
      const types: string[] = typeof query.type === 'string' ? [query.type] : [...query.type];
      where.push(`type IN (${types.map(() => '?').join(', ')})`);
      params.push(...types);
    }
    if (query.since !== undefined) {
      where.push('at >= ?');
      params.push(toIso(query.since));
    }
    if (query.until !== undefined) {
      where.push('at < ?');
      params.push(toIso(query.until));
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    let sql = `SELECT id, uid, type, at, workspace, session, data FROM events ${clause} ORDER BY id`;
    if (query.limit !== undefined) {
      sql = `SELECT * FROM (SELECT id, uid, type, at, workspace, session, data FROM events ${clause} ORDER BY id DESC LIMIT ?) ORDER BY id`;
      params.push(query.limit);
    }
    const rows = this.#db.prepare(sql).all(...params) as {
      id: number;
      uid: string | null;
      type: string;
      at: string;
      workspace: string | null;
      session: string | null;
      data: string;
    }[];
    return rows.map(
      (r) =>
        ({
          id: r.uid ?? `row-${r.id}`,
          type: r.type,
          at: r.at,
          workspace: r.workspace,
          session: r.session,
          data: JSON.parse(r.data) as unknown,
        }) as AnyTandemEvent as TandemEventOf<K>,
    );
  }

  close(): void {
    this.#db.close();
  }
}

function toIso(v: string | Date): string {
  return typeof v === 'string' ? new Date(v).toISOString() : v.toISOString();
}
