import postgres from 'postgres';
import type { ReservedSql, Sql } from 'postgres';
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
import { StoreUnavailableError } from './errors.js';
import { insertEvents, insertEventsReturningIds } from './postgres-ingest.js';
import type { PostgresIngestMode } from './postgres-ingest.js';
import { partitionNamed, partitionsNeeded } from './postgres-partitions.js';
import type { MonthPartition } from './postgres-partitions.js';
import { POSTGRES_MIGRATIONS } from './postgres-schema.js';
import { guardDriverRejections } from './postgres-driver-guard.js';
import type { CheckInWrite, CheckInWriteResult } from './check-in-group.js';
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
import { and, deviceFrom, isConnectionLoss, layerFrom, translate } from './postgres-rows.js';
import type { Fragment, Row } from './postgres-rows.js';
import { consoleSessionFrom, searchRowOf } from './console-rows.js';
import { endpointQueryParts } from './console-queries.js';

/**
 * Gives a reserved connection back to its pool, unless it was lost: postgres.js's `release`
 * puts the connection among the open ones even when its socket is gone, and the next query sent
 * on it throws from a timer (`socket.write` of null, porsager/postgres#1208), which no caller can
 * catch. A lost connection is left where the pool put it when it closed, among the closed ones,
 * which the pool connects again when it needs them.
 */
function release(conn: ReservedSql, lost: boolean): void {
  if (!lost) conn.release();
}

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:5432/database` (libpq's URL form). */
  readonly url: string;
  /** The schema the store's tables live in (created by `migrate`). Default `public`. */
  readonly schema?: string;
  /** Connections in the pool. Default 10. */
  readonly max?: number;
  /** How batches of events are written. Default `copy` (faster in bench/server-store.mjs; docs/benchmarks.md). */
  readonly ingestMode?: PostgresIngestMode;
  /** Seconds to wait for a connection before failing retryably. Default 10. */
  readonly connectTimeoutSeconds?: number;
  /**
   * Seconds a store operation may wait (for a connection, then for its statements) before it
   * fails retryably and the pool is replaced. Default 60. A guard against postgres.js 3.4.9,
   * whose queries can wait forever after every connection of a pool was killed at once.
   */
  readonly operationTimeoutSeconds?: number;
  /** Shown in `pg_stat_activity.application_name`. Default `tandem-server`, or `tandem-server:<schema>` outside `public`. */
  readonly applicationName?: string;
  /** Time for partitions made ahead and for pruning expired nonces. */
  readonly clock?: Clock;
  /**
   * Told of a connection lost during a query postgres.js runs for itself (its type fetch on a new
   * connection), which no request awaits; the pool connects again. Default: one line on stderr.
   * Without it such a rejection would end the process (see postgres-driver-guard.ts).
   */
  readonly onConnectionLost?: (err: Error) => void;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,40}$/;

/** `tandem-server`, with the schema when it is not `public`, so deployments sharing a database tell apart in pg_stat_activity. */
function defaultApplicationName(schema: string): string {
  return schema === 'public' ? 'tandem-server' : `tandem-server:${schema}`;
}

/**
 * The store for many server processes over one PostgreSQL: a connection pool per process,
 * migrations under an advisory lock, events partitioned by month (retention drops whole
 * partitions) and ingested in batches, idempotent by id, and a change feed over LISTEN/NOTIFY
 * with a revision counter row. While the database is unreachable every method rejects with a
 * retryable {@link StoreUnavailableError}; the pool reconnects by itself when it is back.
 *
 * @example
 * ```ts
 * const store = new PostgresStore({ url: 'postgres://tandem:secret@db.example.org/tandem' });
 * await store.migrate();
 * const stop = await store.onChange((c) => console.log('revision', c.revision, c.scope));
 * await store.putAssignment(assignment); // every process's listener hears of it
 * ```
 */
export class PostgresStore implements ServerStore {
  readonly kind = 'postgres' as const;
  #sql: Sql;
  readonly #operationMs: number;
  #listenSql: Sql | undefined;
  readonly #connect: (max: number, role?: string) => Sql;
  readonly #max: number;
  readonly #schema: string;
  readonly #channel: string;
  readonly #mode: PostgresIngestMode;
  readonly #clock: Clock;
  readonly #partitions = new Set<string>();
  readonly #listeners = new Set<(change: StoreChange) => void>();
  #listen: Promise<{ unlisten(): Promise<void> }> | undefined;
  #delivered = 0;
  #nonceWrites = 0;
  readonly #unguard: () => void;

  constructor(options: PostgresStoreOptions) {
    this.#schema = options.schema ?? 'public';
    if (!SCHEMA_NAME.test(this.#schema)) {
      throw new InvalidInputError(
        `The schema name ${JSON.stringify(this.#schema)} must be lower-case letters, digits and _.`,
      );
    }
    this.#channel = `tandem_store_${this.#schema}`;
    this.#mode = options.ingestMode ?? 'copy';
    this.#clock = options.clock ?? systemClock;
    this.#max = options.max ?? 10;
    const limit = options.operationTimeoutSeconds ?? 60;
    if (!(limit > 0) || !Number.isFinite(limit)) {
      throw new InvalidInputError(
        `operationTimeoutSeconds must be a positive number of seconds, not ${JSON.stringify(options.operationTimeoutSeconds)}.`,
      );
    }
    this.#operationMs = limit * 1000;
    this.#connect = (max, role) =>
      postgres(options.url, {
        max,
        connect_timeout: options.connectTimeoutSeconds ?? 10,
        idle_timeout: 60,
        onnotice: () => undefined,
        connection: {
          application_name: `${options.applicationName ?? defaultApplicationName(this.#schema)}${role ? `-${role}` : ''}`,
          search_path: this.#schema,
        },
      });
    this.#sql = this.#connect(this.#max);
    this.#unguard = guardDriverRejections(
      options.onConnectionLost ??
        ((err) =>
          process.stderr.write(
            `tandem server store: a connection to PostgreSQL was lost in postgres.js's own query (${err.message}); the pool connects again\n`,
          )),
    );
  }

  migrate(): Promise<void> {
    return this.#run(async () => {
      await this.#tx(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext(${`tandem-store:${this.#schema}:migrate`}))`;
        await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
        await tx`CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`;
        const [row] = await tx`SELECT coalesce(max(version), 0)::int AS v FROM schema_version`;
        for (let i = (row as { v: number }).v; i < POSTGRES_MIGRATIONS.length; i++) {
          await tx.unsafe(POSTGRES_MIGRATIONS[i]!);
          await tx`INSERT INTO schema_version (version) VALUES (${i + 1})`;
        }
      });
      await this.#ensurePartitions(partitionsNeeded([], this.#clock.now()));
    });
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    const listen = this.#listen;
    this.#listen = undefined;
    if (listen) await listen.then((l) => l.unlisten()).catch(() => undefined);
    await this.#listenSql?.end({ timeout: 5 });
    await this.#sql.end({ timeout: 5 });
    this.#unguard();
  }

  // --- devices ---

  putDevice(d: DeviceRecord): Promise<void> {
    return this.#run(async () => {
      await this.#sql`
        INSERT INTO devices (id, sealing_key, signing_key, user_name, host_name, enrolled_at, revoked_at, last_check_in_at, last_state)
        VALUES (${d.id}, ${d.sealingKey}, ${d.signingKey}, ${d.user}, ${d.hostName}, ${isoTime(d.enrolledAt, 'enrolledAt')},
                ${d.revokedAt ? isoTime(d.revokedAt, 'revokedAt') : null}, ${d.lastCheckInAt ? isoTime(d.lastCheckInAt, 'lastCheckInAt') : null},
                ${d.lastState === undefined ? null : JSON.stringify(d.lastState)}::text::jsonb)
        ON CONFLICT (id) DO UPDATE SET sealing_key = excluded.sealing_key, signing_key = excluded.signing_key,
          user_name = excluded.user_name, host_name = excluded.host_name, enrolled_at = excluded.enrolled_at,
          revoked_at = excluded.revoked_at,
          last_check_in_at = coalesce(excluded.last_check_in_at, devices.last_check_in_at),
          last_state = coalesce(excluded.last_state, devices.last_state)`;
    });
  }

  getDevice(id: string): Promise<DeviceRecord | undefined> {
    return this.#run(async () => {
      const [row] = await this.#sql`SELECT * FROM devices WHERE id = ${id}`;
      return row ? deviceFrom(row) : undefined;
    });
  }

  listDevices(
    filter: { user?: string; search?: string; revoked?: boolean; limit?: number; offset?: number } = {},
  ): Promise<{ devices: DeviceRecord[]; total: number }> {
    return this.#run(async () => {
      const sql = this.#sql;
      const conds: Fragment[] = [sql`true`];
      if (filter.user !== undefined) conds.push(sql`user_name = ${filter.user}`);
      if (filter.search !== undefined) {
        const like = `%${escapeLike(filter.search)}%`;
        conds.push(sql`(id ILIKE ${like} OR host_name ILIKE ${like} OR user_name ILIKE ${like})`);
      }
      if (filter.revoked !== undefined)
        conds.push(filter.revoked ? sql`revoked_at IS NOT NULL` : sql`revoked_at IS NULL`);
      const where = and(sql, conds);
      const rows = await sql`
        SELECT *, count(*) OVER () AS total FROM devices WHERE ${where}
        ORDER BY enrolled_at, id COLLATE "C" LIMIT ${filter.limit ?? null} OFFSET ${filter.offset ?? 0}`;
      const total = rows.length
        ? Number((rows[0] as Row)['total'])
        : Number(((await sql`SELECT count(*)::int AS n FROM devices WHERE ${where}`)[0] as Row)['n']);
      return { devices: rows.map((r) => deviceFrom(r)), total };
    });
  }

  recordCheckIn(id: string, at: string, state: unknown): Promise<void> {
    return this.#run(async () => {
      const r = await this.#sql`
        UPDATE devices SET last_check_in_at = ${isoTime(at, 'at')}, last_state = ${JSON.stringify(state ?? null)}::text::jsonb WHERE id = ${id}`;
      if (r.count === 0) throw new NotFoundError(`No enrolled device ${id}.`);
    });
  }

  recordCheckIns(items: readonly { id: string; at: string; state: unknown }[]): Promise<boolean[]> {
    return this.#run(async () => {
      // The last state of a device named twice wins, as two calls in order would leave it.
      const last = new Map<string, { at: string; state: string }>();
      for (const c of items) {
        last.delete(c.id);
        last.set(c.id, { at: isoTime(c.at, 'at'), state: JSON.stringify(c.state ?? null) });
      }
      const ids = [...last.keys()].sort();
      const rows = await this.#tx(
        (tx) => tx`
        UPDATE devices d SET last_check_in_at = v.at, last_state = v.state::jsonb
        FROM unnest(${ids}::text[], ${ids.map((i) => last.get(i)!.at)}::timestamptz[], ${ids.map((i) => last.get(i)!.state)}::text[]) AS v(id, at, state)
        WHERE d.id = v.id
        RETURNING d.id`,
      );
      const found = new Set(rows.map((r) => String(r['id'])));
      return items.map((c) => found.has(c.id));
    });
  }

  useNonces(items: readonly { device: string; nonce: string; expiresAt: string }[]): Promise<boolean[]> {
    return this.#run(async () => {
      if (++this.#nonceWrites % 1000 === 1) {
        await this.#sql`DELETE FROM nonces WHERE expires_at < ${new Date(this.#clock.now()).toISOString()}`;
      }
      const key = (d: string, n: string): string => `${d}\n${n}`;
      const first = new Map<string, number>();
      items.forEach((n, i) => {
        if (!first.has(key(n.device, n.nonce))) first.set(key(n.device, n.nonce), i);
      });
      const unique = [...first.values()].map((i) => items[i]!);
      const rows = await this.#tx(
        (tx) => tx`
        INSERT INTO nonces (device, nonce, expires_at)
        SELECT * FROM unnest(${unique.map((n) => n.device)}::text[], ${unique.map((n) => n.nonce)}::text[],
          ${unique.map((n) => isoTime(n.expiresAt, 'expiresAt'))}::timestamptz[])
        ON CONFLICT DO NOTHING
        RETURNING device, nonce`,
      );
      const fresh = new Set(rows.map((r) => key(String(r['device']), String(r['nonce']))));
      return items.map((n, i) => first.get(key(n.device, n.nonce)) === i && fresh.has(key(n.device, n.nonce)));
    });
  }

  revokeDevice(id: string, at: string): Promise<boolean> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        const r = await tx`UPDATE devices SET revoked_at = coalesce(revoked_at, ${isoTime(at, 'at')}) WHERE id = ${id}`;
        if (r.count === 0) return false;
        await this.#bump(tx, 'device', id);
        return true;
      }),
    );
  }

  useNonce(device: string, nonce: string, expiresAt: string): Promise<boolean> {
    return this.#run(async () => {
      if (++this.#nonceWrites % 1000 === 1) {
        await this.#sql`DELETE FROM nonces WHERE expires_at < ${new Date(this.#clock.now()).toISOString()}`;
      }
      const r = await this.#sql`
        INSERT INTO nonces (device, nonce, expires_at) VALUES (${device}, ${nonce}, ${isoTime(expiresAt, 'expiresAt')})
        ON CONFLICT DO NOTHING`;
      return r.count === 1;
    });
  }

  /**
   * The check-in's one statement for a group of verified requests (see {@link CheckInWrite}):
   * the nonces, the check-in times and states, the events and the revision, written and read in
   * one round trip and one implicit transaction. A request's state and events are written only
   * when its nonce was new and its device is enrolled and not revoked, as read by the same
   * statement, so a revocation committed before it is seen by it.
   */
  checkInGroup(items: readonly CheckInWrite[]): Promise<CheckInWriteResult[]> {
    return this.#run(async () => {
      if (new Set(items.map((i) => i.device)).size !== items.length)
        throw new InvalidInputError('checkInGroup takes each device at most once per call.');
      if (++this.#nonceWrites % 1000 === 1) {
        await this.#sql`DELETE FROM nonces WHERE expires_at < ${new Date(this.#clock.now()).toISOString()}`;
      }
      // The events, each id once (its first request owns it), sorted by key so that two
      // processes writing overlapping rows take their locks in one order.
      const counts = items.map(() => ({ duplicates: 0, owned: 0 }));
      const owner = new Set<string>();
      const rows: { k: number; ms: number; at: string; e: StoredEvent }[] = [];
      items.forEach((item, k) => {
        const { batch, repeats } = uniqueBatch(item.events);
        counts[k]!.duplicates += repeats;
        for (const e of batch) {
          if (owner.has(e.event.id)) counts[k]!.duplicates++;
          else {
            owner.add(e.event.id);
            counts[k]!.owned++;
            const ms = Date.parse(e.event.at);
            rows.push({ k, ms, at: new Date(ms).toISOString(), e });
          }
        }
      });
      rows.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.e.event.id < b.e.event.id ? -1 : 1));
      // Each side of the statement as one JSON document (PostgreSQL reads it with
      // json_to_recordset): one parameter instead of a text array per column, whose elements
      // (the events' JSON above all) postgres.js would escape one by one.
      const events = JSON.stringify(
        rows.map(({ k, at, e }) => ({
          k,
          at,
          id: e.event.id,
          type: e.event.type,
          workspace: e.event.workspace,
          receivedAt: e.receivedAt,
          body: e.event,
        })),
      );
      const requests = JSON.stringify(
        items.map((i, k) => ({
          k,
          device: i.device,
          nonce: i.nonce,
          expiresAt: isoTime(i.expiresAt, 'expiresAt'),
          at: i.at === undefined ? null : isoTime(i.at, 'at'),
          state: i.at === undefined ? null : (i.state ?? null),
        })),
      );
      const needed = partitionsNeeded(rows.map((r) => r.ms));
      for (let attempt = 0; ; attempt++) {
        await this.#ensurePartitions(needed);
        try {
          // One statement: every data-modifying part runs once, all on the statement's snapshot.
          const out = await this.#statement(
            (c) => c`
            WITH r AS (
              SELECT * FROM json_to_recordset(${requests}::text::json)
                AS r(k int, device text, nonce text, "expiresAt" timestamptz, at timestamptz, state jsonb)
            ),
            dv AS (SELECT id, user_name, revoked_at FROM devices WHERE id IN (SELECT device FROM r)),
            n AS (
              INSERT INTO nonces (device, nonce, expires_at)
              SELECT r.device, r.nonce, r."expiresAt" FROM r JOIN dv ON dv.id = r.device
              ON CONFLICT DO NOTHING
              RETURNING device, nonce
            ),
            ok AS (
              SELECT r.k, r.device, r.at, r.state, dv.user_name FROM r
              JOIN n ON n.device = r.device AND n.nonce = r.nonce
              JOIN dv ON dv.id = r.device
              WHERE dv.revoked_at IS NULL
            ),
            u AS (
              UPDATE devices d SET last_check_in_at = ok.at, last_state = coalesce(ok.state, 'null'::jsonb)
              FROM ok WHERE d.id = ok.device AND ok.at IS NOT NULL
              RETURNING d.id
            ),
            e AS (
              INSERT INTO events (at, id, type, device, user_name, workspace, received_at, body)
              SELECT x.at, x.id, x.type, ok.device, ok.user_name, x.workspace, x."receivedAt", x.body
              FROM json_to_recordset(${events}::text::json)
                AS x(k int, at timestamptz, id text, type text, workspace text, "receivedAt" timestamptz, body json)
              JOIN ok ON ok.k = x.k
              ORDER BY x.at, x.id
              ON CONFLICT DO NOTHING
              RETURNING device
            )
            SELECT 'n' AS kind, n.device AS a, n.nonce AS b FROM n
            UNION ALL SELECT 'd', dv.id, dv.user_name || E'\\n' || coalesce(to_char(dv.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), '') FROM dv
            UNION ALL SELECT 'e', e.device, count(*)::text FROM e GROUP BY e.device
            UNION ALL SELECT 'v', value::text, NULL FROM store_revision WHERE only_row = 1`,
          );
          const fresh = new Set<string>();
          const devices = new Map<string, { user: string; revokedAt: string }>();
          // Events inserted per device; each device is one request of the group.
          const inserted = new Map<string, number>();
          let revision = NaN;
          for (const row of out) {
            const a = String(row['a']);
            if (row['kind'] === 'n') fresh.add(`${a}\n${String(row['b'])}`);
            else if (row['kind'] === 'e') inserted.set(a, Number(row['b']));
            else if (row['kind'] === 'v') revision = Number(a);
            else {
              const b = String(row['b']);
              const cut = b.lastIndexOf('\n');
              devices.set(a, { user: b.slice(0, cut), revokedAt: b.slice(cut + 1) });
            }
          }
          return items.map((item, k): CheckInWriteResult => {
            const d = devices.get(item.device);
            if (!d) return { status: 'unknown-device' };
            if (!fresh.has(`${item.device}\n${item.nonce}`)) return { status: 'replayed' };
            if (d.revokedAt !== '') return { status: 'revoked', revokedAt: d.revokedAt };
            const c = counts[k]!;
            const n = inserted.get(item.device) ?? 0;
            return { status: 'ok', user: d.user, revision, inserted: n, duplicates: c.duplicates + c.owned - n };
          });
        } catch (err) {
          if ((err as { code?: string }).code === '23514' && attempt < 2) {
            this.#partitions.clear();
            continue;
          }
          throw err;
        }
      }
    });
  }

  // --- events ---

  /**
   * Several callers' events in one transaction (the server's group commit of concurrent
   * check-ins): one COPY for all, each group told how many of its events were new.
   */
  ingestEventGroups(groups: readonly (readonly StoredEvent[])[]): Promise<{ inserted: number; duplicates: number }[]> {
    return this.#run(async () => {
      const owner = new Map<string, number>();
      const counts = groups.map(() => ({ inserted: 0, duplicates: 0 }));
      const all: StoredEvent[] = [];
      groups.forEach((g, i) => {
        const { batch, repeats } = uniqueBatch(g);
        counts[i]!.duplicates += repeats;
        for (const e of batch) {
          if (owner.has(e.event.id)) counts[i]!.duplicates++;
          else {
            owner.set(e.event.id, i);
            all.push(e);
          }
        }
      });
      if (all.length === 0) return counts;
      all.sort((a, b) =>
        a.event.at < b.event.at ? -1 : a.event.at > b.event.at ? 1 : a.event.id < b.event.id ? -1 : 1,
      );
      const needed = partitionsNeeded(all.map((e) => Date.parse(e.event.at)));
      for (let attempt = 0; ; attempt++) {
        await this.#ensurePartitions(needed);
        try {
          // unnest: a group commit's batch is tens to hundreds of rows, where one statement beats
          // COPY's staging round trips.
          const ids = await this.#tx((tx) => insertEventsReturningIds(tx, all, 'unnest'));
          const fresh = new Set(ids);
          for (const [id, i] of owner) {
            if (fresh.has(id)) counts[i]!.inserted++;
            else counts[i]!.duplicates++;
          }
          return counts;
        } catch (err) {
          if ((err as { code?: string }).code === '23514' && attempt < 2) {
            this.#partitions.clear();
            continue;
          }
          throw err;
        }
      }
    });
  }

  ingestEvents(events: readonly StoredEvent[]): Promise<{ inserted: number; duplicates: number }> {
    return this.#run(async () => {
      const { batch, repeats } = uniqueBatch(events);
      if (batch.length === 0) return { inserted: 0, duplicates: repeats };
      // Sorted by key, so two processes writing overlapping batches take row locks in one order.
      batch.sort((a, b) =>
        a.event.at < b.event.at ? -1 : a.event.at > b.event.at ? 1 : a.event.id < b.event.id ? -1 : 1,
      );
      const needed = partitionsNeeded(batch.map((e) => Date.parse(e.event.at)));
      for (let attempt = 0; ; attempt++) {
        await this.#ensurePartitions(needed);
        try {
          const inserted = await this.#tx((tx) => insertEvents(tx, batch, this.#mode));
          return { inserted, duplicates: batch.length - inserted + repeats };
        } catch (err) {
          // Another process's retention dropped a month this one thought it had: make it again.
          if ((err as { code?: string }).code === '23514' && attempt < 2) {
            this.#partitions.clear();
            continue;
          }
          throw err;
        }
      }
    });
  }

  queryEvents(filter: EventFilter): Promise<EventPage> {
    return this.#run(async () => {
      const sql = this.#sql;
      const limit = pageSize(filter);
      const conds: Fragment[] = [sql`true`];
      if (filter.device !== undefined) conds.push(sql`device = ${filter.device}`);
      if (filter.user !== undefined) conds.push(sql`user_name = ${filter.user}`);
      if (filter.workspace !== undefined) conds.push(sql`workspace = ${filter.workspace}`);
      const types = typeList(filter);
      if (types.length) conds.push(sql`type = ANY(${types}::text[])`);
      if (filter.since !== undefined) conds.push(sql`at >= ${isoTime(filter.since, 'since')}`);
      if (filter.until !== undefined) conds.push(sql`at < ${isoTime(filter.until, 'until')}`);
      if (filter.after !== undefined) {
        const c = decodeCursor(filter.after);
        conds.push(sql`(at, id) > (${c.at}::timestamptz, ${c.id}::text COLLATE "C")`);
      }
      const rows = await sql`
        SELECT at, id, device, user_name, received_at, body FROM events WHERE ${and(sql, conds)}
        ORDER BY at, id LIMIT ${limit + 1}`;
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : [...rows];
      const last = page[page.length - 1];
      return {
        events: page.map((r) => ({
          device: String(r['device']),
          user: r['user_name'] === null ? null : String(r['user_name']),
          receivedAt: (r['received_at'] as Date).toISOString(),
          event: r['body'] as AnyTandemEvent,
        })),
        next:
          more && last ? encodeCursor({ at: (last['at'] as Date).toISOString(), id: String(last['id']) }) : undefined,
      };
    });
  }

  applyRetention(before: string): Promise<number> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        const cut = Date.parse(isoTime(before, 'before'));
        await tx`SELECT pg_advisory_xact_lock(hashtext(${`tandem-store:${this.#schema}:partitions`}))`;
        const parts = await tx`
          SELECT c.relname AS name FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
          JOIN pg_namespace n ON n.oid = p.relnamespace
          WHERE p.relname = 'events' AND n.nspname = ${this.#schema}`;
        let gone = 0;
        for (const r of parts) {
          const p = partitionNamed(String(r['name']));
          if (!p) continue;
          if (Date.parse(p.to) <= cut) {
            const [c] = await tx.unsafe(`SELECT count(*)::int AS n FROM ${p.name}`);
            gone += Number((c as Row)['n']);
            await tx.unsafe(`DROP TABLE ${p.name}`);
            this.#partitions.delete(p.name);
          } else if (Date.parse(p.from) < cut) {
            const d = await tx.unsafe(`DELETE FROM ${p.name} WHERE at < $1`, [new Date(cut).toISOString()]);
            gone += d.count;
          }
        }
        return gone;
      }),
    );
  }

  // --- assignments, policy layers, keys ---

  putAssignment(a: AssignmentRecord): Promise<void> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        await tx`
          INSERT INTO assignments (id, created_at, body) VALUES (${a.id}, ${isoTime(a.createdAt, 'createdAt')}, ${JSON.stringify(a)}::text::jsonb)
          ON CONFLICT (id) DO UPDATE SET body = excluded.body`;
        await this.#bump(tx, 'assignment', a.id);
      }),
    );
  }

  deleteAssignment(id: string): Promise<boolean> {
    return this.#deleteBumping((tx) => tx`DELETE FROM assignments WHERE id = ${id}`, 'assignment', id);
  }

  listAssignments(): Promise<AssignmentRecord[]> {
    return this.#run(async () =>
      (await this.#sql`SELECT body FROM assignments ORDER BY created_at, id COLLATE "C"`).map(
        (r) => r['body'] as AssignmentRecord,
      ),
    );
  }

  putPolicyLayer(layer: PolicyLayerRecord): Promise<void> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        await tx`
          INSERT INTO policy_layers (name, document, updated_at)
          VALUES (${layer.name}, ${JSON.stringify(layer.document ?? null)}::text::jsonb, ${isoTime(layer.updatedAt, 'updatedAt')})
          ON CONFLICT (name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at`;
        await this.#bump(tx, 'policy', layer.name);
      }),
    );
  }

  getPolicyLayer(name: string): Promise<PolicyLayerRecord | undefined> {
    return this.#run(async () => {
      const [r] = await this.#sql`SELECT * FROM policy_layers WHERE name = ${name}`;
      return r ? layerFrom(r) : undefined;
    });
  }

  listPolicyLayers(): Promise<PolicyLayerRecord[]> {
    return this.#run(async () =>
      (await this.#sql`SELECT * FROM policy_layers ORDER BY name COLLATE "C"`).map((r) => layerFrom(r)),
    );
  }

  deletePolicyLayer(name: string): Promise<boolean> {
    return this.#deleteBumping((tx) => tx`DELETE FROM policy_layers WHERE name = ${name}`, 'policy', name);
  }

  putWorkspaceKey(key: WorkspaceKeyRecord): Promise<void> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        await tx`
          INSERT INTO workspace_keys (workspace, sealed_data_key, created_at)
          VALUES (${key.workspace}, ${key.sealedDataKey}, ${isoTime(key.createdAt, 'createdAt')})
          ON CONFLICT (workspace) DO UPDATE SET sealed_data_key = excluded.sealed_data_key, created_at = excluded.created_at`;
        await this.#bump(tx, 'key', key.workspace);
      }),
    );
  }

  getWorkspaceKey(workspace: string): Promise<WorkspaceKeyRecord | undefined> {
    return this.#run(async () => {
      const [r] = await this.#sql`SELECT * FROM workspace_keys WHERE workspace = ${workspace}`;
      return r
        ? {
            workspace: String(r['workspace']),
            sealedDataKey: String(r['sealed_data_key']),
            createdAt: (r['created_at'] as Date).toISOString(),
          }
        : undefined;
    });
  }

  // --- built-in directory ---

  putUser(user: BuiltinUserRecord): Promise<void> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        await tx`
          INSERT INTO users (name, display_name, body) VALUES (${user.name}, ${user.displayName ?? null}, ${JSON.stringify(user)}::text::jsonb)
          ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, body = excluded.body`;
        await this.#bump(tx, 'directory', `user:${user.name}`);
      }),
    );
  }

  getUser(name: string): Promise<BuiltinUserRecord | undefined> {
    return this.#run(
      async () =>
        (await this.#sql`SELECT body FROM users WHERE name = ${name}`)[0]?.['body'] as BuiltinUserRecord | undefined,
    );
  }

  deleteUser(name: string): Promise<boolean> {
    return this.#deleteBumping((tx) => tx`DELETE FROM users WHERE name = ${name}`, 'directory', `user:${name}`);
  }

  listUsers(filter: { search?: string; limit?: number } = {}): Promise<BuiltinUserRecord[]> {
    return this.#listNamed<BuiltinUserRecord>('users', 'display_name', filter);
  }

  putGroup(group: BuiltinGroupRecord): Promise<void> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        await tx`
          INSERT INTO groups (name, description, body) VALUES (${group.name}, ${group.description ?? null}, ${JSON.stringify(group)}::text::jsonb)
          ON CONFLICT (name) DO UPDATE SET description = excluded.description, body = excluded.body`;
        await this.#bump(tx, 'directory', `group:${group.name}`);
      }),
    );
  }

  getGroup(name: string): Promise<BuiltinGroupRecord | undefined> {
    return this.#run(
      async () =>
        (await this.#sql`SELECT body FROM groups WHERE name = ${name}`)[0]?.['body'] as BuiltinGroupRecord | undefined,
    );
  }

  deleteGroup(name: string): Promise<boolean> {
    return this.#deleteBumping((tx) => tx`DELETE FROM groups WHERE name = ${name}`, 'directory', `group:${name}`);
  }

  listGroups(filter: { search?: string; limit?: number } = {}): Promise<BuiltinGroupRecord[]> {
    return this.#listNamed<BuiltinGroupRecord>('groups', 'description', filter);
  }

  // --- throttling ---

  getThrottle(key: string): Promise<ThrottleRecord | undefined> {
    return this.#run(async () => {
      const [r] = await this.#sql`SELECT * FROM throttles WHERE key = ${key}`;
      return r
        ? {
            key: String(r['key']),
            failures: Number(r['failures']),
            lastFailureAt: (r['last_failure_at'] as Date).toISOString(),
            blockedUntil: (r['blocked_until'] as Date).toISOString(),
          }
        : undefined;
    });
  }

  putThrottle(t: ThrottleRecord): Promise<void> {
    return this.#run(async () => {
      await this.#sql`
        INSERT INTO throttles (key, failures, last_failure_at, blocked_until)
        VALUES (${t.key}, ${t.failures}, ${isoTime(t.lastFailureAt, 'lastFailureAt')}, ${isoTime(t.blockedUntil, 'blockedUntil')})
        ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure_at = excluded.last_failure_at, blocked_until = excluded.blocked_until`;
    });
  }

  clearThrottle(key: string): Promise<void> {
    return this.#run(async () => {
      await this.#sql`DELETE FROM throttles WHERE key = ${key}`;
    });
  }

  // --- audit ---

  appendAudit(a: AuditRecord): Promise<void> {
    return this.#run(async () => {
      await this.#sql`
        INSERT INTO audit (id, at, actor, action, target, detail)
        VALUES (${a.id}, ${isoTime(a.at, 'at')}, ${a.actor}, ${a.action}, ${a.target}, ${a.detail === undefined ? null : JSON.stringify(a.detail)}::text::jsonb)`;
    });
  }

  queryAudit(filter: { actor?: string; since?: string; limit?: number } = {}): Promise<AuditRecord[]> {
    return this.#run(async () => {
      const sql = this.#sql;
      const conds: Fragment[] = [sql`true`];
      if (filter.actor !== undefined) conds.push(sql`actor = ${filter.actor}`);
      if (filter.since !== undefined) conds.push(sql`at >= ${isoTime(filter.since, 'since')}`);
      const rows =
        await sql`SELECT * FROM audit WHERE ${and(sql, conds)} ORDER BY at, id COLLATE "C" LIMIT ${filter.limit ?? null}`;
      return rows.map((r) => ({
        id: String(r['id']),
        at: (r['at'] as Date).toISOString(),
        actor: String(r['actor']),
        action: String(r['action']),
        target: String(r['target']),
        ...(r['detail'] === null ? {} : { detail: r['detail'] as unknown }),
      }));
    });
  }

  // --- change feed ---

  revision(): Promise<number> {
    return this.#run(async () =>
      Number((await this.#sql`SELECT value FROM store_revision WHERE only_row = 1`)[0]?.['value']),
    );
  }

  publishChange(scope: string, id?: string): Promise<StoreChange> {
    return this.#run(() => this.#tx((tx) => this.#bump(tx, scope, id)));
  }

  onChange(listener: (change: StoreChange) => void): Promise<() => void> {
    return this.#run(async () => {
      this.#listeners.add(listener);
      if (!this.#listen) {
        let first = true;
        this.#delivered = await this.revision();
        // postgres.js listens on a connection of its own and listens again after a reconnect;
        // changes made while it was away are announced as one `resync` change.
        // LISTEN has a pool of its own (one connection), so recycling the query pool leaves it be.
        this.#listenSql ??= this.#connect(1, 'listen');
        this.#listen = this.#listenSql.listen(
          this.#channel,
          (payload) => this.#deliver(JSON.parse(payload) as StoreChange),
          () => {
            if (first) {
              first = false;
              return;
            }
            void this.revision().then(
              (revision) => this.#deliver({ revision, scope: 'resync' }),
              () => undefined,
            );
          },
        );
        try {
          await this.#listen;
        } catch (err) {
          this.#listen = undefined;
          this.#listeners.delete(listener);
          throw err;
        }
      }
      return () => {
        this.#listeners.delete(listener);
      };
    });
  }

  // --- reports ---

  endpointReport(filter: { limit?: number; offset?: number } = {}): Promise<EndpointReportRow[]> {
    return this.#run(async () => {
      const rows = await this
        .#sql`SELECT * FROM devices ORDER BY id COLLATE "C" LIMIT ${filter.limit ?? null} OFFSET ${filter.offset ?? 0}`;
      return rows.map((r) => {
        const d = deviceFrom(r);
        return {
          device: d.id,
          user: d.user,
          hostName: d.hostName,
          lastCheckInAt: d.lastCheckInAt ?? null,
          revoked: Boolean(d.revokedAt),
          workspaces: reportedWorkspaces(d.lastState),
        };
      });
    });
  }

  failuresSince(since: string): Promise<{ type: string; count: number }[]> {
    return this.#run(async () => {
      const rows = await this.#sql`
        SELECT type, count(*)::int AS n FROM events
        WHERE at >= ${isoTime(since, 'since')} AND (type = ANY(${[...FAILURE_EVENT_TYPES]}::text[]) OR type LIKE ANY(${[...FAILURE_SUFFIXES]}::text[]))
        GROUP BY type ORDER BY n DESC, type COLLATE "C"`;
      return rows.map((r) => ({ type: String(r['type']), count: Number(r['n']) }));
    });
  }

  versionDistribution(): Promise<{ workspace: string; version: string; devices: number }[]> {
    return this.#run(async () => {
      const rows = await this.#sql`
        SELECT workspace, version, count(DISTINCT device)::int AS n FROM (
          SELECT d.id AS device, coalesce(w ->> 'workspace', w ->> 'name') AS workspace, w ->> 'version' AS version,
                 jsonb_typeof(coalesce(w -> 'workspace', w -> 'name')) AS wt, jsonb_typeof(w -> 'version') AS vt
          FROM devices d,
               jsonb_array_elements(CASE WHEN jsonb_typeof(d.last_state -> 'workspaces') = 'array' THEN d.last_state -> 'workspaces' ELSE '[]'::jsonb END) w
          WHERE d.revoked_at IS NULL
        ) x
        WHERE wt = 'string' AND vt = 'string'
        GROUP BY workspace, version ORDER BY workspace COLLATE "C", n DESC, version COLLATE "C"`;
      return rows.map((r) => ({
        workspace: String(r['workspace']),
        version: String(r['version']),
        devices: Number(r['n']),
      }));
    });
  }

  // --- internals ---

  /** Runs `fn`, turning a database that went away into a retryable error. */
  async #run<T>(fn: () => Promise<T>): Promise<T> {
    const pool = this.#sql;
    let timer: NodeJS.Timeout | undefined;
    const op = fn();
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new StoreUnavailableError(
            `PostgreSQL did not answer within ${this.#operationMs / 1000} s; the pool connects again. Try again.`,
            { details: { reason: 'timeout' } },
          ),
        );
      }, this.#operationMs);
    });
    try {
      return await Promise.race([op, expired]);
    } catch (err) {
      const timedOut = err instanceof StoreUnavailableError && err.details['reason'] === 'timeout';
      // The abandoned operation settles (or not) on the replaced pool; nobody waits for it.
      if (timedOut) op.catch(() => undefined);
      const e = timedOut ? err : translate(err);
      if (pool === this.#sql && (timedOut || (e instanceof StoreUnavailableError && isConnectionLoss(err)))) {
        this.#recycle();
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `fn` in one transaction on a reserved connection. Written by hand rather than with
   * postgres.js's `begin`: when the connection is lost mid-transaction, `begin` writes its
   * ROLLBACK to the dead socket from a timer, an uncaught TypeError that ends the process
   * (postgres.js 3.4.9, porsager/postgres#1154). The server rolls a dead session back anyway.
   */
  async #tx<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const conn = await this.#sql.reserve();
    let lost = false;
    try {
      await conn`BEGIN`;
      const result = await fn(conn);
      await conn`COMMIT`;
      return result;
    } catch (err) {
      lost = isConnectionLoss(err);
      if (!lost) await conn`ROLLBACK`.catch(() => undefined);
      throw err;
    } finally {
      release(conn, lost);
    }
  }

  /**
   * Runs one statement on a reserved connection, with no BEGIN or COMMIT round trips (a single
   * statement is its own transaction). Reserved like {@link #tx}: on the shared pool a connection
   * killed mid-statement could end the process inside postgres.js.
   */
  async #statement<T>(fn: (conn: Sql) => Promise<T>): Promise<T> {
    const conn = await this.#sql.reserve();
    let lost = false;
    try {
      return await fn(conn);
    } catch (err) {
      lost = isConnectionLoss(err);
      throw err;
    } finally {
      release(conn, lost);
    }
  }

  /**
   * Replaces the query pool after a lost connection. postgres.js 3.4.9 can leave a connection
   * whose backend died with a stale write timer, so that every later query on it hangs
   * (porsager/postgres#1208, #1154); a fresh pool has none of those.
   */
  #recycle(): void {
    const old = this.#sql;
    this.#sql = this.#connect(this.#max);
    void old.end({ timeout: 5 }).catch(() => undefined);
  }

  async #bump(tx: Sql, scope: string, id?: string): Promise<StoreChange> {
    const [row] = await tx`UPDATE store_revision SET value = value + 1 WHERE only_row = 1 RETURNING value`;
    const change: StoreChange = { revision: Number((row as Row)['value']), scope, ...(id === undefined ? {} : { id }) };
    // Delivered to every listening process when (and only if) the transaction commits.
    await tx`SELECT pg_notify(${this.#channel}, ${JSON.stringify(change)})`;
    return change;
  }

  #deleteBumping(del: (tx: Sql) => Promise<{ count: number }>, scope: string, id: string): Promise<boolean> {
    return this.#run(() =>
      this.#tx(async (tx) => {
        if ((await del(tx)).count === 0) return false;
        await this.#bump(tx, scope, id);
        return true;
      }),
    );
  }

  #deliver(change: StoreChange): void {
    if (change.revision <= this.#delivered) return;
    this.#delivered = change.revision;
    for (const l of [...this.#listeners]) l(change);
  }

  /** Makes the months' partitions that this process has not seen yet (IF NOT EXISTS, under a lock). */
  async #ensurePartitions(parts: readonly MonthPartition[]): Promise<void> {
    const missing = parts.filter((p) => !this.#partitions.has(p.name));
    if (missing.length === 0) return;
    await this.#tx(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${`tandem-store:${this.#schema}:partitions`}))`;
      for (const p of missing) {
        await tx.unsafe(
          `CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF events FOR VALUES FROM ('${p.from}') TO ('${p.to}')`,
        );
      }
    });
    for (const p of missing) this.#partitions.add(p.name);
  }

  #listNamed<T>(
    table: 'users' | 'groups',
    second: 'display_name' | 'description',
    filter: { search?: string; limit?: number },
  ): Promise<T[]> {
    return this.#run(async () => {
      const sql = this.#sql;
      const like = filter.search === undefined ? null : `%${escapeLike(filter.search)}%`;
      const rows = await sql`
        SELECT body FROM ${sql(table)}
        WHERE ${like === null ? sql`true` : sql`(name ILIKE ${like} OR ${sql(second)} ILIKE ${like})`}
        ORDER BY name COLLATE "C" LIMIT ${filter.limit ?? null}`;
      return rows.map((r) => r['body'] as T);
    });
  }

  // --- the management console (issue 16) ---

  searchEndpoints(query: EndpointQuery): Promise<{ total: number; rows: EndpointSearchRow[] }> {
    return this.#run(async () => {
      const q = endpointQueryParts(query);
      const sql = this.#sql;
      const conds: Fragment[] = [sql`true`];
      if (q.search !== undefined) {
        const like = `%${escapeLike(q.search)}%`;
        conds.push(sql`(id ILIKE ${like} OR host_name ILIKE ${like} OR user_name ILIKE ${like})`);
      }
      if (q.state === 'revoked') conds.push(sql`revoked_at IS NOT NULL`);
      else if (q.state === 'never') conds.push(sql`revoked_at IS NULL AND last_check_in_at IS NULL`);
      else if (q.state === 'online')
        conds.push(sql`revoked_at IS NULL AND last_check_in_at >= ${q.onlineSince ?? null}::timestamptz`);
      else if (q.state === 'offline')
        conds.push(sql`revoked_at IS NULL AND last_check_in_at < ${q.onlineSince ?? null}::timestamptz`);
      if (q.checkedInAfter !== undefined) conds.push(sql`last_check_in_at >= ${q.checkedInAfter}::timestamptz`);
      if (q.checkedInBefore !== undefined) conds.push(sql`last_check_in_at < ${q.checkedInBefore}::timestamptz`);
      if (q.workspace !== undefined || q.version !== undefined) {
        // jsonb containment of one reported workspace: no per-row array expansion.
        const item = JSON.stringify([
          {
            ...(q.workspace !== undefined ? { workspace: q.workspace } : {}),
            ...(q.version !== undefined ? { version: q.version } : {}),
          },
        ]);
        const named = JSON.stringify([
          {
            ...(q.workspace !== undefined ? { name: q.workspace } : {}),
            ...(q.version !== undefined ? { version: q.version } : {}),
          },
        ]);
        conds.push(
          sql`(last_state -> 'workspaces' @> ${item}::text::jsonb OR last_state -> 'workspaces' @> ${named}::text::jsonb)`,
        );
      }
      const where = and(sql, conds);
      const dir = sql.unsafe(q.desc ? 'DESC NULLS LAST' : 'ASC NULLS FIRST');
      // The columns' own collation, so the (column, id) indexes serve the sort and the page.
      const order =
        q.column === 'id' ? sql`id ${dir}` : sql`${sql(q.column)} ${dir}, id ${sql.unsafe(q.desc ? 'DESC' : 'ASC')}`;
      const [count] = await sql`SELECT count(*)::int AS n FROM devices WHERE ${where}`;
      const rows =
        await sql`SELECT * FROM devices WHERE ${where} ORDER BY ${order} LIMIT ${q.limit} OFFSET ${q.offset}`;
      return { total: Number((count as Row)['n']), rows: rows.map((r) => searchRowOf(deviceFrom(r))) };
    });
  }

  endpointOverview(at: { onlineSince: string; daySince: string }): Promise<EndpointOverview> {
    return this.#run(async () => {
      const online = isoTime(at.onlineSince, 'onlineSince');
      const day = isoTime(at.daySince, 'daySince');
      const [c] = await this.#sql`
        SELECT count(*)::int AS total,
               count(*) FILTER (WHERE revoked_at IS NOT NULL)::int AS revoked,
               count(*) FILTER (WHERE revoked_at IS NULL AND last_check_in_at >= ${online}::timestamptz)::int AS online,
               count(*) FILTER (WHERE revoked_at IS NULL AND last_check_in_at >= ${day}::timestamptz)::int AS day
        FROM devices`;
      const [s] = await this.#sql`
        SELECT count(*)::int AS n FROM devices d,
          jsonb_array_elements(CASE WHEN jsonb_typeof(d.last_state -> 'workspaces') = 'array' THEN d.last_state -> 'workspaces' ELSE '[]'::jsonb END) w
        WHERE d.revoked_at IS NULL AND d.last_check_in_at >= ${online}::timestamptz AND w ->> 'state' = 'running'`;
      const r = c as Row;
      return {
        total: Number(r['total']),
        onlineNow: Number(r['online']),
        lastDay: Number(r['day']),
        revoked: Number(r['revoked']),
        sessionsRunning: Number((s as Row)['n']),
      };
    });
  }

  putConsoleSession(r: ConsoleSessionRecord): Promise<void> {
    return this.#run(async () => {
      await this.#sql`
        INSERT INTO console_sessions (id, user_name, display_name, created_at, last_seen_at, expires_at)
        VALUES (${r.id}, ${r.user}, ${r.displayName ?? null}, ${isoTime(r.createdAt, 'createdAt')},
                ${isoTime(r.lastSeenAt, 'lastSeenAt')}, ${isoTime(r.expiresAt, 'expiresAt')})
        ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, display_name = excluded.display_name,
          created_at = excluded.created_at, last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at`;
    });
  }

  getConsoleSession(id: string): Promise<ConsoleSessionRecord | undefined> {
    return this.#run(async () => {
      const [r] = await this.#sql`SELECT * FROM console_sessions WHERE id = ${id}`;
      return r ? consoleSessionFrom(r) : undefined;
    });
  }

  touchConsoleSession(id: string, at: string): Promise<boolean> {
    return this.#run(async () => {
      const r = await this.#sql`UPDATE console_sessions SET last_seen_at = ${isoTime(at, 'at')} WHERE id = ${id}`;
      return r.count > 0;
    });
  }

  deleteConsoleSession(id: string): Promise<boolean> {
    return this.#run(async () => (await this.#sql`DELETE FROM console_sessions WHERE id = ${id}`).count > 0);
  }

  pruneConsoleSessions(before: string, idleBefore: string): Promise<number> {
    return this.#run(
      async () =>
        (
          await this.#sql`DELETE FROM console_sessions WHERE expires_at < ${isoTime(before, 'before')}
            OR last_seen_at < ${isoTime(idleBefore, 'idleBefore')}`
        ).count,
    );
  }

  eventsReceivedAfter(after: ReceivedCursor, atSince: string, limit: number): Promise<StoredEvent[]> {
    return this.#run(async () => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
        throw new InvalidInputError(`limit ${limit} is not a page size: expected 1 to ${MAX_PAGE_SIZE}.`);
      const received = isoTime(after.receivedAt, 'receivedAt');
      const rows = await this.#sql`
        SELECT device, user_name, received_at, body FROM events
        WHERE at >= ${isoTime(atSince, 'atSince')}::timestamptz
          AND (received_at, id) > (${received}::timestamptz, ${after.id}::text COLLATE "C")
        ORDER BY received_at, id LIMIT ${limit}`;
      return rows.map((r) => ({
        device: String(r['device']),
        user: r['user_name'] === null ? null : String(r['user_name']),
        receivedAt: (r['received_at'] as Date).toISOString(),
        event: r['body'] as AnyTandemEvent,
      }));
    });
  }
}
