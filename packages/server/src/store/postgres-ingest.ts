// Batched event ingestion into PostgreSQL: one statement over arrays (`unnest`), or COPY into a
// per-connection staging table then one INSERT ... SELECT. Both skip events already stored.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql } from 'postgres';
import type { StoredEvent } from './types.js';

/** How `PostgresStore.ingestEvents` writes a batch. */
export type PostgresIngestMode = 'unnest' | 'copy';

/** The columns of one event row, in table order after `at, id`. */
interface EventColumns {
  at: string[];
  id: string[];
  type: string[];
  device: string[];
  user: (string | null)[];
  workspace: (string | null)[];
  receivedAt: string[];
  body: string[];
}

function columns(batch: readonly StoredEvent[]): EventColumns {
  const c: EventColumns = { at: [], id: [], type: [], device: [], user: [], workspace: [], receivedAt: [], body: [] };
  for (const e of batch) {
    c.at.push(new Date(e.event.at).toISOString());
    c.id.push(e.event.id);
    c.type.push(e.event.type);
    c.device.push(e.device);
    c.user.push(e.user);
    c.workspace.push(e.event.workspace);
    c.receivedAt.push(new Date(e.receivedAt).toISOString());
    c.body.push(JSON.stringify(e.event));
  }
  return c;
}

/** Inserts `batch` (ids unique within it) and returns how many rows were new. */
export async function insertEvents(tx: Sql, batch: readonly StoredEvent[], mode: PostgresIngestMode): Promise<number> {
  if (batch.length === 0) return 0;
  return mode === 'copy' ? copyEvents(tx, batch) : unnestEvents(tx, batch);
}

/** Inserts `batch` (ids unique within it) and returns the ids of the rows that were new. */
export async function insertEventsReturningIds(
  tx: Sql,
  batch: readonly StoredEvent[],
  mode: PostgresIngestMode,
): Promise<string[]> {
  if (batch.length === 0) return [];
  if (mode === 'copy') {
    await copyToStaging(tx, batch);
    const rows = await tx`
      INSERT INTO events (at, id, type, device, user_name, workspace, received_at, body)
      SELECT at, id, type, device, user_name, workspace, received_at, body FROM events_staging
      ON CONFLICT DO NOTHING
      RETURNING id`;
    return rows.map((r) => String(r['id']));
  }
  const c = columns(batch);
  const rows = await tx`
    INSERT INTO events (at, id, type, device, user_name, workspace, received_at, body)
    SELECT * FROM unnest(
      ${c.at}::timestamptz[], ${c.id}::text[], ${c.type}::text[], ${c.device}::text[],
      ${c.user}::text[], ${c.workspace}::text[], ${c.receivedAt}::timestamptz[], ${c.body}::text[]::json[]
    )
    ON CONFLICT DO NOTHING
    RETURNING id`;
  return rows.map((r) => String(r['id']));
}

async function unnestEvents(tx: Sql, batch: readonly StoredEvent[]): Promise<number> {
  const c = columns(batch);
  const [row] = await tx`
    WITH ins AS (
      INSERT INTO events (at, id, type, device, user_name, workspace, received_at, body)
      SELECT * FROM unnest(
        ${c.at}::timestamptz[], ${c.id}::text[], ${c.type}::text[], ${c.device}::text[],
        ${c.user}::text[], ${c.workspace}::text[], ${c.receivedAt}::timestamptz[], ${c.body}::text[]::json[]
      )
      ON CONFLICT DO NOTHING
      RETURNING 1
    )
    SELECT count(*)::int AS n FROM ins`;
  return Number((row as { n: number }).n);
}

/** A value as COPY's text format writes it (`\N` for null; backslash, tab and line breaks escaped). */
export function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return value.replace(/[\\\t\n\r]/g, (ch) =>
    ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r',
  );
}

/** The COPY text lines of a batch, in the column order `at, id, type, device, user_name, workspace, received_at, body`. */
export function* copyLines(batch: readonly StoredEvent[], chunkRows = 500): Generator<string> {
  let chunk = '';
  let rows = 0;
  for (const e of batch) {
    chunk +=
      [
        new Date(e.event.at).toISOString(),
        e.event.id,
        e.event.type,
        e.device,
        e.user,
        e.event.workspace,
        new Date(e.receivedAt).toISOString(),
        JSON.stringify(e.event),
      ]
        .map(copyText)
        .join('\t') + '\n';
    if (++rows === chunkRows) {
      yield chunk;
      chunk = '';
      rows = 0;
    }
  }
  if (chunk) yield chunk;
}

async function copyToStaging(tx: Sql, batch: readonly StoredEvent[]): Promise<void> {
  // A temporary table lives as long as its connection; ON COMMIT DELETE ROWS empties it after
  // each transaction, so a pooled connection reuses it.
  await tx`CREATE TEMPORARY TABLE IF NOT EXISTS events_staging (
      at timestamptz, id text COLLATE "C", type text, device text, user_name text, workspace text,
      received_at timestamptz, body json
    ) ON COMMIT DELETE ROWS`;
  const writable =
    await tx`COPY events_staging (at, id, type, device, user_name, workspace, received_at, body) FROM STDIN`.writable();
  await pipeline(Readable.from(copyLines(batch)), writable);
}

async function copyEvents(tx: Sql, batch: readonly StoredEvent[]): Promise<number> {
  await copyToStaging(tx, batch);
  const [row] = await tx`
    WITH ins AS (
      INSERT INTO events (at, id, type, device, user_name, workspace, received_at, body)
      SELECT at, id, type, device, user_name, workspace, received_at, body FROM events_staging
      ON CONFLICT DO NOTHING
      RETURNING 1
    )
    SELECT count(*)::int AS n FROM ins`;
  return Number((row as { n: number }).n);
}
