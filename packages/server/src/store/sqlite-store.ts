import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { InvalidInputError, NotFoundError, systemClock } from '@tandem/core';
import type { AnyTandemEvent, Clock } from '@tandem/core';
import {
  FAILURE_EVENT_TYPES,
  FAILURE_SUFFIXES,
  isoTime,
  pageSize,
  reportedWorkspaces,
  typeList,
  uniqueBatch,
  escapeLike,
  MAX_PAGE_SIZE,
} from './common.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
import type {
  AssignmentRecord,
  AuditRecord,
  BuiltinGroupRecord,
  BuiltinUserRecord,
  DeviceRecord,
  EndpointReportRow,
  EventFilter,
  EventPage,
  PolicyLayerRecord,
  ServerStore,
  StoreChange,
  StoredEvent,
  ThrottleRecord,
  WorkspaceKeyRecord,
  ConsoleSessionRecord,
  EndpointOverview,
  EndpointQuery,
  EndpointSearchRow,
  ReceivedCursor,
} from './types.js';
import { bodyOf, deviceFrom, layerFrom, translate } from './sqlite-rows.js';
import { consoleSessionFrom, searchRowOf } from './console-rows.js';
import { endpointQueryParts } from './console-queries.js';
import type { Row } from './sqlite-rows.js';

// Taken when the module loads, so a test's fake timers never hold a write back.
const realSetImmediate = globalThis.setImmediate;

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file (its directory is made 0700, the file 0600), or `:memory:`. */
  readonly path: string;
  /** How long a write waits for another process's lock before failing retryably. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** How often `onChange` looks for changes made by other processes on the same file. Default 250 ms. */
  readonly pollMs?: number;
  /** Time for pruning expired nonces. */
  readonly clock?: Clock;
}

/**
 * The embedded store: one SQLite file through Node's built-in `node:sqlite` (no native addon),
 * in WAL mode so reports read while check-ins write. Every method is one transaction. Several
 * processes may open the same file (SQLite serializes their writes); `onChange` sees their
 * changes by polling `PRAGMA data_version`.
 *
 * @example
 * ```ts
 * const store = new SqliteStore({ path: '/var/lib/tandem-server/store.sqlite' });
 * await store.migrate();
 * await store.ingestEvents([{ device, user: 'alice', receivedAt: new Date().toISOString(), event }]);
 * const page = await store.queryEvents({ user: 'alice', type: 'session.error', limit: 100 });
 * ```
 */
export class SqliteStore implements ServerStore {
  readonly kind = 'sqlite' as const;
  readonly #db: DatabaseSync;
  /**
   * Compiled statements by their SQL text: node:sqlite's `prepare` compiles each time, and a
   * check-in runs five or so statements (issue 15). Bounded; the texts are this file's own.
   */
  readonly #statements = new Map<string, StatementSync>();
  readonly #clock: Clock;
  readonly #pollMs: number;
  readonly #listeners = new Set<(change: StoreChange) => void>();
  #delivered = 0;
  #dataVersion = -1;
  #timer: NodeJS.Timeout | undefined;
  #nonceWrites = 0;
  readonly #pending: { fn: () => unknown; resolve: (value: unknown) => void; reject: (err: unknown) => void }[] = [];

  constructor(options: SqliteStoreOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#pollMs = options.pollMs ?? 250;
    if (options.path !== ':memory:') {
      const dir = dirname(options.path);
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Made 0600 before SQLite opens it: its -wal and -shm files take the database's mode.
      closeSync(openSync(options.path, 'a', 0o600));
      chmodSync(options.path, 0o600);
    }
    this.#db = new DatabaseSync(options.path);
    this.#db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec('PRAGMA synchronous = NORMAL');
    this.#db.exec('PRAGMA foreign_keys = ON');
  }

  migrate(): Promise<void> {
    return this.#run(() => {
      this.#db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      for (let i = 0; i < SQLITE_MIGRATIONS.length; i++) {
        this.#tx(() => {
          const row = this.#prepared('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
          if ((row.v ?? 0) > i) return;
          this.#db.exec(SQLITE_MIGRATIONS[i]!);
          this.#prepared('INSERT INTO schema_version (version) VALUES (?)').run(i + 1);
        });
      }
    });
  }

  close(): Promise<void> {
    // Writes asked for before close() are still made.
    this.#commitPending();
    if (this.#timer) clearInterval(this.#timer);
    this.#listeners.clear();
    if (this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }

  // --- devices ---

  putDevice(d: DeviceRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        `INSERT INTO devices (id, sealing_key, signing_key, user_name, host_name, enrolled_at, revoked_at, last_check_in_at, last_state)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET sealing_key = excluded.sealing_key, signing_key = excluded.signing_key,
             user_name = excluded.user_name, host_name = excluded.host_name, enrolled_at = excluded.enrolled_at,
             revoked_at = excluded.revoked_at,
             last_check_in_at = coalesce(excluded.last_check_in_at, last_check_in_at),
             last_state = coalesce(excluded.last_state, last_state)`,
      ).run(
        d.id,
        d.sealingKey,
        d.signingKey,
        d.user,
        d.hostName,
        isoTime(d.enrolledAt, 'enrolledAt'),
        d.revokedAt ? isoTime(d.revokedAt, 'revokedAt') : null,
        d.lastCheckInAt ? isoTime(d.lastCheckInAt, 'lastCheckInAt') : null,
        d.lastState === undefined ? null : JSON.stringify(d.lastState),
      );
    });
  }

  getDevice(id: string): Promise<DeviceRecord | undefined> {
    return this.#run(() => {
      const row = this.#prepared('SELECT * FROM devices WHERE id = ?').get(id) as Row | undefined;
      return row ? deviceFrom(row) : undefined;
    });
  }

  listDevices(
    filter: { user?: string; search?: string; revoked?: boolean; limit?: number; offset?: number } = {},
  ): Promise<{ devices: DeviceRecord[]; total: number }> {
    return this.#run(() => {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (filter.user !== undefined) {
        where.push('user_name = ?');
        params.push(filter.user);
      }
      if (filter.search !== undefined) {
        where.push(`(id LIKE ? ESCAPE '\\' OR host_name LIKE ? ESCAPE '\\' OR user_name LIKE ? ESCAPE '\\')`);
        const like = `%${escapeLike(filter.search)}%`;
        params.push(like, like, like);
      }
      if (filter.revoked !== undefined) where.push(filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL');
      const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const total = (this.#prepared(`SELECT count(*) AS n FROM devices ${clause}`).get(...params) as { n: number }).n;
      const rows = this.#prepared(`SELECT * FROM devices ${clause} ORDER BY enrolled_at, id LIMIT ? OFFSET ?`).all(
        ...params,
        filter.limit ?? -1,
        filter.offset ?? 0,
      ) as Row[];
      return { devices: rows.map(deviceFrom), total };
    });
  }

  recordCheckIn(id: string, at: string, state: unknown): Promise<void> {
    return this.#write(() => {
      const r = this.#prepared('UPDATE devices SET last_check_in_at = ?, last_state = ? WHERE id = ?').run(
        isoTime(at, 'at'),
        JSON.stringify(state ?? null),
        id,
      );
      if (r.changes === 0) throw new NotFoundError(`No enrolled device ${id}.`);
    });
  }

  revokeDevice(id: string, at: string): Promise<boolean> {
    return this.#write(() => {
      const found = this.#prepared('SELECT revoked_at FROM devices WHERE id = ?').get(id);
      if (!found) return false;
      this.#prepared('UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(isoTime(at, 'at'), id);
      this.#bump('device', id);
      return true;
    });
  }

  useNonce(device: string, nonce: string, expiresAt: string): Promise<boolean> {
    return this.#write(() => {
      if (++this.#nonceWrites % 1000 === 1) {
        this.#prepared('DELETE FROM nonces WHERE expires_at < ?').run(new Date(this.#clock.now()).toISOString());
      }
      const r = this.#prepared('INSERT OR IGNORE INTO nonces (device, nonce, expires_at) VALUES (?, ?, ?)').run(
        device,
        nonce,
        isoTime(expiresAt, 'expiresAt'),
      );
      return r.changes === 1;
    });
  }

  // --- events ---

  ingestEventGroups(groups: readonly (readonly StoredEvent[])[]): Promise<{ inserted: number; duplicates: number }[]> {
    return this.#write(() => {
      // Checked first, so one bad group writes nothing, as one ingestEvents call would.
      for (const g of groups) uniqueBatch(g);
      return groups.map((g) => this.#ingest(g));
    });
  }

  ingestEvents(events: readonly StoredEvent[]): Promise<{ inserted: number; duplicates: number }> {
    return this.#write(() => this.#ingest(events));
  }

  #ingest(events: readonly StoredEvent[]): { inserted: number; duplicates: number } {
    {
      const { batch, repeats } = uniqueBatch(events);
      const insert = this.#prepared(
        `INSERT OR IGNORE INTO events (id, at, type, device, user_name, workspace, received_at, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      let inserted = 0;
      for (const e of batch) {
        const r = insert.run(
          e.event.id,
          isoTime(e.event.at, 'at'),
          e.event.type,
          e.device,
          e.user,
          e.event.workspace,
          isoTime(e.receivedAt, 'receivedAt'),
          JSON.stringify(e.event),
        );
        inserted += Number(r.changes);
      }
      return { inserted, duplicates: batch.length - inserted + repeats };
    }
  }

  queryEvents(filter: EventFilter): Promise<EventPage> {
    return this.#run(() => {
      const limit = pageSize(filter);
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      const eq = (column: string, value: string | undefined): void => {
        if (value === undefined) return;
        where.push(`${column} = ?`);
        params.push(value);
      };
      eq('device', filter.device);
      eq('user_name', filter.user);
      eq('workspace', filter.workspace);
      const types = typeList(filter);
      if (types.length) {
        where.push(`type IN (${types.map(() => '?').join(', ')})`);
        params.push(...types);
      }
      if (filter.since !== undefined) {
        where.push('at >= ?');
        params.push(isoTime(filter.since, 'since'));
      }
      if (filter.until !== undefined) {
        where.push('at < ?');
        params.push(isoTime(filter.until, 'until'));
      }
      if (filter.after !== undefined) {
        const c = decodeCursor(filter.after);
        where.push('(at > ? OR (at = ? AND id > ?))');
        params.push(c.at, c.at, c.id);
      }
      const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const rows = this.#prepared(
        `SELECT id, at, device, user_name, received_at, body FROM events ${clause} ORDER BY at, id LIMIT ?`,
      ).all(...params, limit + 1) as {
        id: string;
        at: string;
        device: string;
        user_name: string | null;
        received_at: string;
        body: string;
      }[];
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : rows;
      const last = page[page.length - 1];
      return {
        events: page.map((r) => ({
          device: r.device,
          user: r.user_name,
          receivedAt: r.received_at,
          event: JSON.parse(r.body) as AnyTandemEvent,
        })),
        next: more && last ? encodeCursor({ at: last.at, id: last.id }) : undefined,
      };
    });
  }

  applyRetention(before: string): Promise<number> {
    return this.#write(() =>
      Number(this.#prepared('DELETE FROM events WHERE at < ?').run(isoTime(before, 'before')).changes),
    );
  }

  // --- assignments, policy layers, keys ---

  putAssignment(a: AssignmentRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        'INSERT INTO assignments (id, created_at, body) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
      ).run(a.id, isoTime(a.createdAt, 'createdAt'), JSON.stringify(a));
      this.#bump('assignment', a.id);
    });
  }

  deleteAssignment(id: string): Promise<boolean> {
    return this.#write(() =>
      this.#deleted(this.#prepared('DELETE FROM assignments WHERE id = ?').run(id).changes, 'assignment', id),
    );
  }

  listAssignments(): Promise<AssignmentRecord[]> {
    return this.#run(() =>
      (this.#prepared('SELECT body FROM assignments ORDER BY created_at, id').all() as { body: string }[]).map(
        (r) => JSON.parse(r.body) as AssignmentRecord,
      ),
    );
  }

  putPolicyLayer(layer: PolicyLayerRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        'INSERT INTO policy_layers (name, document, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at',
      ).run(layer.name, JSON.stringify(layer.document ?? null), isoTime(layer.updatedAt, 'updatedAt'));
      this.#bump('policy', layer.name);
    });
  }

  getPolicyLayer(name: string): Promise<PolicyLayerRecord | undefined> {
    return this.#run(() => {
      const r = this.#prepared('SELECT * FROM policy_layers WHERE name = ?').get(name) as Row | undefined;
      return r ? layerFrom(r) : undefined;
    });
  }

  listPolicyLayers(): Promise<PolicyLayerRecord[]> {
    return this.#run(() => (this.#prepared('SELECT * FROM policy_layers ORDER BY name').all() as Row[]).map(layerFrom));
  }

  deletePolicyLayer(name: string): Promise<boolean> {
    return this.#write(() =>
      this.#deleted(this.#prepared('DELETE FROM policy_layers WHERE name = ?').run(name).changes, 'policy', name),
    );
  }

  putWorkspaceKey(key: WorkspaceKeyRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        'INSERT INTO workspace_keys (workspace, sealed_data_key, created_at) VALUES (?, ?, ?) ON CONFLICT (workspace) DO UPDATE SET sealed_data_key = excluded.sealed_data_key, created_at = excluded.created_at',
      ).run(key.workspace, key.sealedDataKey, isoTime(key.createdAt, 'createdAt'));
      this.#bump('key', key.workspace);
    });
  }

  getWorkspaceKey(workspace: string): Promise<WorkspaceKeyRecord | undefined> {
    return this.#run(() => {
      const r = this.#prepared('SELECT * FROM workspace_keys WHERE workspace = ?').get(workspace) as Row | undefined;
      return r
        ? {
            workspace: String(r['workspace']),
            sealedDataKey: String(r['sealed_data_key']),
            createdAt: String(r['created_at']),
          }
        : undefined;
    });
  }

  // --- built-in directory ---

  putUser(user: BuiltinUserRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        'INSERT INTO users (name, display_name, body) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, body = excluded.body',
      ).run(user.name, user.displayName ?? null, JSON.stringify(user));
      this.#bump('directory', `user:${user.name}`);
    });
  }

  getUser(name: string): Promise<BuiltinUserRecord | undefined> {
    return this.#run(() =>
      bodyOf<BuiltinUserRecord>(this.#prepared('SELECT body FROM users WHERE name = ?').get(name)),
    );
  }

  deleteUser(name: string): Promise<boolean> {
    return this.#write(() =>
      this.#deleted(this.#prepared('DELETE FROM users WHERE name = ?').run(name).changes, 'directory', `user:${name}`),
    );
  }

  listUsers(filter: { search?: string; limit?: number } = {}): Promise<BuiltinUserRecord[]> {
    return this.#run(() => this.#listNamed<BuiltinUserRecord>('users', 'display_name', filter));
  }

  putGroup(group: BuiltinGroupRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        'INSERT INTO groups (name, description, body) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET description = excluded.description, body = excluded.body',
      ).run(group.name, group.description ?? null, JSON.stringify(group));
      this.#bump('directory', `group:${group.name}`);
    });
  }

  getGroup(name: string): Promise<BuiltinGroupRecord | undefined> {
    return this.#run(() =>
      bodyOf<BuiltinGroupRecord>(this.#prepared('SELECT body FROM groups WHERE name = ?').get(name)),
    );
  }

  deleteGroup(name: string): Promise<boolean> {
    return this.#write(() =>
      this.#deleted(
        this.#prepared('DELETE FROM groups WHERE name = ?').run(name).changes,
        'directory',
        `group:${name}`,
      ),
    );
  }

  listGroups(filter: { search?: string; limit?: number } = {}): Promise<BuiltinGroupRecord[]> {
    return this.#run(() => this.#listNamed<BuiltinGroupRecord>('groups', 'description', filter));
  }

  // --- throttling ---

  getThrottle(key: string): Promise<ThrottleRecord | undefined> {
    return this.#run(() => {
      const r = this.#prepared('SELECT * FROM throttles WHERE key = ?').get(key) as Row | undefined;
      return r
        ? {
            key: String(r['key']),
            failures: Number(r['failures']),
            lastFailureAt: String(r['last_failure_at']),
            blockedUntil: String(r['blocked_until']),
          }
        : undefined;
    });
  }

  putThrottle(t: ThrottleRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        `INSERT INTO throttles (key, failures, last_failure_at, blocked_until) VALUES (?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at, blocked_until = excluded.blocked_until`,
      ).run(t.key, t.failures, isoTime(t.lastFailureAt, 'lastFailureAt'), isoTime(t.blockedUntil, 'blockedUntil'));
    });
  }

  clearThrottle(key: string): Promise<void> {
    return this.#write(() => {
      this.#prepared('DELETE FROM throttles WHERE key = ?').run(key);
    });
  }

  // --- audit ---

  appendAudit(a: AuditRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared('INSERT INTO audit (id, at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)').run(
        a.id,
        isoTime(a.at, 'at'),
        a.actor,
        a.action,
        a.target,
        a.detail === undefined ? null : JSON.stringify(a.detail),
      );
    });
  }

  queryAudit(filter: { actor?: string; since?: string; limit?: number } = {}): Promise<AuditRecord[]> {
    return this.#run(() => {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (filter.actor !== undefined) {
        where.push('actor = ?');
        params.push(filter.actor);
      }
      if (filter.since !== undefined) {
        where.push('at >= ?');
        params.push(isoTime(filter.since, 'since'));
      }
      const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const rows = this.#prepared(`SELECT * FROM audit ${clause} ORDER BY at, id LIMIT ?`).all(
        ...params,
        filter.limit ?? -1,
      ) as Row[];
      return rows.map((r) => ({
        id: String(r['id']),
        at: String(r['at']),
        actor: String(r['actor']),
        action: String(r['action']),
        target: String(r['target']),
        ...(r['detail'] === null ? {} : { detail: JSON.parse(String(r['detail'])) as unknown }),
      }));
    });
  }

  // --- change feed ---

  revision(): Promise<number> {
    return this.#run(() => this.#currentRevision());
  }

  publishChange(scope: string, id?: string): Promise<StoreChange> {
    return this.#write(() => this.#bump(scope, id));
  }

  onChange(listener: (change: StoreChange) => void): Promise<() => void> {
    return this.#run(() => {
      if (this.#listeners.size === 0) {
        this.#delivered = this.#currentRevision();
        this.#dataVersion = this.#readDataVersion();
        this.#timer = setInterval(() => this.#poll(false), this.#pollMs);
        this.#timer.unref();
      }
      this.#listeners.add(listener);
      return () => {
        this.#listeners.delete(listener);
        if (this.#listeners.size === 0 && this.#timer) {
          clearInterval(this.#timer);
          this.#timer = undefined;
        }
      };
    });
  }

  // --- reports ---

  endpointReport(filter: { limit?: number; offset?: number } = {}): Promise<EndpointReportRow[]> {
    return this.#run(() =>
      (
        this.#prepared('SELECT * FROM devices ORDER BY id LIMIT ? OFFSET ?').all(
          filter.limit ?? -1,
          filter.offset ?? 0,
        ) as Row[]
      ).map((r) => {
        const d = deviceFrom(r);
        return {
          device: d.id,
          user: d.user,
          hostName: d.hostName,
          lastCheckInAt: d.lastCheckInAt ?? null,
          revoked: Boolean(d.revokedAt),
          workspaces: reportedWorkspaces(d.lastState),
        };
      }),
    );
  }

  failuresSince(since: string): Promise<{ type: string; count: number }[]> {
    return this.#run(() => {
      const cond = [
        `type IN (${FAILURE_EVENT_TYPES.map(() => '?').join(', ')})`,
        ...FAILURE_SUFFIXES.map(() => 'type LIKE ?'),
      ];
      const rows = this.#prepared(
        `SELECT type, count(*) AS n FROM events WHERE at >= ? AND (${cond.join(' OR ')}) GROUP BY type ORDER BY n DESC, type`,
      ).all(isoTime(since, 'since'), ...FAILURE_EVENT_TYPES, ...FAILURE_SUFFIXES) as { type: string; n: number }[];
      return rows.map((r) => ({ type: r.type, count: Number(r.n) }));
    });
  }

  versionDistribution(): Promise<{ workspace: string; version: string; devices: number }[]> {
    return this.#run(() => {
      const rows = this.#prepared(
        `SELECT w.workspace, w.version, count(DISTINCT w.device) AS n FROM (
             SELECT d.id AS device,
                    coalesce(json_extract(j.value, '$.workspace'), json_extract(j.value, '$.name')) AS workspace,
                    json_extract(j.value, '$.version') AS version
             FROM devices d, json_each(CASE WHEN json_type(d.last_state, '$.workspaces') = 'array' THEN d.last_state ELSE '{"workspaces":[]}' END, '$.workspaces') j
             WHERE d.revoked_at IS NULL AND d.last_state IS NOT NULL AND json_valid(d.last_state)
           ) w
           WHERE typeof(w.workspace) = 'text' AND typeof(w.version) = 'text'
           GROUP BY w.workspace, w.version ORDER BY w.workspace, n DESC, w.version`,
      ).all() as { workspace: string; version: string; n: number }[];
      return rows.map((r) => ({ workspace: r.workspace, version: r.version, devices: Number(r.n) }));
    });
  }

  // --- internals ---

  #prepared(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= 500) this.#statements.clear();
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs `fn`, turning SQLite's busy and I/O failures into a retryable error. */
  #run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(translate(err));
    }
  }

  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction, then tells this process's listeners. Group
   * commit: the writes asked for in one turn of the event loop (the check-ins of many endpoints
   * at once) share one transaction, each in a savepoint of its own, so one write's failure undoes
   * only that write; every promise resolves only after the shared COMMIT, so nothing is
   * acknowledged before it is stored.
   */
  #write<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.#pending.length === 1) realSetImmediate(() => this.#commitPending());
    });
  }

  #commitPending(): void {
    const writes = this.#pending.splice(0);
    if (writes.length === 0) return;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.#tx(() => {
        for (const w of writes) {
          this.#prepared('SAVEPOINT tandem_write').run();
          try {
            outcomes.push({ ok: true, value: w.fn() });
            this.#prepared('RELEASE tandem_write').run();
          } catch (error) {
            this.#prepared('ROLLBACK TO tandem_write').run();
            this.#prepared('RELEASE tandem_write').run();
            outcomes.push({ ok: false, error: translate(error) });
          }
        }
      });
    } catch (err) {
      const error = translate(err);
      for (const w of writes) w.reject(error);
      return;
    }
    if (this.#listeners.size > 0) this.#poll(true);
    writes.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.error);
    });
  }

  #tx<T>(fn: () => T): T {
    this.#prepared('BEGIN IMMEDIATE').run();
    try {
      const result = fn();
      this.#prepared('COMMIT').run();
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #bump(scope: string, id?: string): StoreChange {
    const { value } = this.#prepared(
      'UPDATE store_revision SET value = value + 1 WHERE only = 1 RETURNING value',
    ).get() as {
      value: number;
    };
    this.#prepared('INSERT INTO store_changes (revision, scope, id) VALUES (?, ?, ?)').run(value, scope, id ?? null);
    if (value % 1000 === 0) this.#prepared('DELETE FROM store_changes WHERE revision <= ?').run(value - 10_000);
    return { revision: Number(value), scope, ...(id === undefined ? {} : { id }) };
  }

  #deleted(changes: number | bigint, scope: string, id: string): boolean {
    if (Number(changes) === 0) return false;
    this.#bump(scope, id);
    return true;
  }

  #currentRevision(): number {
    return Number((this.#prepared('SELECT value FROM store_revision WHERE only = 1').get() as { value: number }).value);
  }

  #readDataVersion(): number {
    return Number((this.#prepared('PRAGMA data_version').get() as { data_version: number }).data_version);
  }

  /** Delivers changes past the last delivered revision (`own`: after this connection wrote). */
  #poll(own: boolean): void {
    if (!this.#db.isOpen || this.#listeners.size === 0) return;
    try {
      if (!own) {
        const version = this.#readDataVersion();
        if (version === this.#dataVersion) return;
        this.#dataVersion = version;
      }
      const rows = this.#prepared(
        'SELECT revision, scope, id FROM store_changes WHERE revision > ? ORDER BY revision',
      ).all(this.#delivered) as { revision: number; scope: string; id: string | null }[];
      for (const r of rows) {
        this.#delivered = Number(r.revision);
        const change: StoreChange = {
          revision: Number(r.revision),
          scope: r.scope,
          ...(r.id === null ? {} : { id: r.id }),
        };
        for (const l of [...this.#listeners]) l(change);
      }
    } catch {
      // A busy or closing database: the next poll tries again.
    }
  }

  #listNamed<T>(table: 'users' | 'groups', second: string, filter: { search?: string; limit?: number }): T[] {
    const params: SQLInputValue[] = [];
    let clause = '';
    if (filter.search !== undefined) {
      clause = `WHERE name LIKE ? ESCAPE '\\' OR ${second} LIKE ? ESCAPE '\\'`;
      const like = `%${escapeLike(filter.search)}%`;
      params.push(like, like);
    }
    const rows = this.#prepared(`SELECT body FROM ${table} ${clause} ORDER BY name LIMIT ?`).all(
      ...params,
      filter.limit ?? -1,
    ) as {
      body: string;
    }[];
    return rows.map((r) => JSON.parse(r.body) as T);
  }

  // --- the management console (issue 16) ---

  searchEndpoints(query: EndpointQuery): Promise<{ total: number; rows: EndpointSearchRow[] }> {
    return this.#run(() => {
      const q = endpointQueryParts(query);
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (q.search !== undefined) {
        where.push(`(id LIKE ? ESCAPE '\\' OR host_name LIKE ? ESCAPE '\\' OR user_name LIKE ? ESCAPE '\\')`);
        const like = `%${escapeLike(q.search)}%`;
        params.push(like, like, like);
      }
      if (q.state === 'revoked') where.push('revoked_at IS NOT NULL');
      else if (q.state === 'never') where.push('revoked_at IS NULL AND last_check_in_at IS NULL');
      else if (q.state === 'online') {
        where.push('revoked_at IS NULL AND last_check_in_at >= ?');
        params.push(q.onlineSince ?? '');
      } else if (q.state === 'offline') {
        where.push('revoked_at IS NULL AND last_check_in_at < ?');
        params.push(q.onlineSince ?? '');
      }
      if (q.checkedInAfter !== undefined) {
        where.push('last_check_in_at >= ?');
        params.push(q.checkedInAfter);
      }
      if (q.checkedInBefore !== undefined) {
        where.push('last_check_in_at < ?');
        params.push(q.checkedInBefore);
      }
      if (q.workspace !== undefined || q.version !== undefined) {
        where.push(
          `EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(last_state) AND json_type(last_state, '$.workspaces') = 'array' THEN last_state ELSE '{"workspaces":[]}' END, '$.workspaces') j
             WHERE (? IS NULL OR coalesce(json_extract(j.value, '$.workspace'), json_extract(j.value, '$.name')) = ?)
               AND (? IS NULL OR json_extract(j.value, '$.version') = ?))`,
        );
        params.push(q.workspace ?? null, q.workspace ?? null, q.version ?? null, q.version ?? null);
      }
      const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const total = (this.#prepared(`SELECT count(*) AS n FROM devices ${clause}`).get(...params) as { n: number }).n;
      const dir = q.desc ? 'DESC NULLS LAST' : 'ASC NULLS FIRST';
      const tie = q.column === 'id' ? '' : `, id ${q.desc ? 'DESC' : 'ASC'}`;
      const rows = this.#prepared(
        `SELECT * FROM devices ${clause} ORDER BY ${q.column} ${dir}${tie} LIMIT ? OFFSET ?`,
      ).all(...params, q.limit, q.offset) as Row[];
      return { total: Number(total), rows: rows.map((r) => searchRowOf(deviceFrom(r))) };
    });
  }

  endpointOverview(at: { onlineSince: string; daySince: string }): Promise<EndpointOverview> {
    return this.#run(() => {
      const online = isoTime(at.onlineSince, 'onlineSince');
      const day = isoTime(at.daySince, 'daySince');
      const c = this.#prepared(
        `SELECT count(*) AS total,
                  coalesce(sum(revoked_at IS NOT NULL), 0) AS revoked,
                  coalesce(sum(revoked_at IS NULL AND last_check_in_at >= ?), 0) AS online,
                  coalesce(sum(revoked_at IS NULL AND last_check_in_at >= ?), 0) AS day
           FROM devices`,
      ).get(online, day) as { total: number; revoked: number; online: number; day: number };
      const s = this.#prepared(
        `SELECT count(*) AS n FROM devices d,
             json_each(CASE WHEN json_valid(d.last_state) AND json_type(d.last_state, '$.workspaces') = 'array' THEN d.last_state ELSE '{"workspaces":[]}' END, '$.workspaces') j
           WHERE d.revoked_at IS NULL AND d.last_check_in_at >= ? AND json_extract(j.value, '$.state') = 'running'`,
      ).get(online) as { n: number };
      return {
        total: Number(c.total),
        onlineNow: Number(c.online),
        lastDay: Number(c.day),
        revoked: Number(c.revoked),
        sessionsRunning: Number(s.n),
      };
    });
  }

  putConsoleSession(r: ConsoleSessionRecord): Promise<void> {
    return this.#write(() => {
      this.#prepared(
        `INSERT INTO console_sessions (id, user_name, display_name, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, display_name = excluded.display_name,
             created_at = excluded.created_at, last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at`,
      ).run(
        r.id,
        r.user,
        r.displayName ?? null,
        isoTime(r.createdAt, 'createdAt'),
        isoTime(r.lastSeenAt, 'lastSeenAt'),
        isoTime(r.expiresAt, 'expiresAt'),
      );
    });
  }

  getConsoleSession(id: string): Promise<ConsoleSessionRecord | undefined> {
    return this.#run(() => {
      const r = this.#prepared('SELECT * FROM console_sessions WHERE id = ?').get(id) as Row | undefined;
      return r ? consoleSessionFrom(r) : undefined;
    });
  }

  touchConsoleSession(id: string, at: string): Promise<boolean> {
    return this.#write(
      () =>
        Number(
          this.#prepared('UPDATE console_sessions SET last_seen_at = ? WHERE id = ?').run(isoTime(at, 'at'), id)
            .changes,
        ) > 0,
    );
  }

  deleteConsoleSession(id: string): Promise<boolean> {
    return this.#write(() => Number(this.#prepared('DELETE FROM console_sessions WHERE id = ?').run(id).changes) > 0);
  }

  pruneConsoleSessions(before: string, idleBefore: string): Promise<number> {
    return this.#write(() =>
      Number(
        this.#prepared('DELETE FROM console_sessions WHERE expires_at < ? OR last_seen_at < ?').run(
          isoTime(before, 'before'),
          isoTime(idleBefore, 'idleBefore'),
        ).changes,
      ),
    );
  }

  eventsReceivedAfter(after: ReceivedCursor, atSince: string, limit: number): Promise<StoredEvent[]> {
    return this.#run(() => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
        throw new InvalidInputError(`limit ${limit} is not a page size: expected 1 to ${MAX_PAGE_SIZE}.`);
      const rows = this.#prepared(
        `SELECT device, user_name, received_at, body FROM events
           WHERE at >= ? AND (received_at > ? OR (received_at = ? AND id > ?))
           ORDER BY received_at, id LIMIT ?`,
      ).all(
        isoTime(atSince, 'atSince'),
        isoTime(after.receivedAt, 'receivedAt'),
        isoTime(after.receivedAt, 'receivedAt'),
        after.id,
        limit,
      ) as Row[];
      return rows.map((r) => ({
        device: String(r['device']),
        user: r['user_name'] === null ? null : String(r['user_name']),
        receivedAt: String(r['received_at']),
        event: JSON.parse(String(r['body'])) as AnyTandemEvent,
      }));
    });
  }
}
