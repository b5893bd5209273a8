// Row mapping and error translation of the PostgreSQL store.
import type { PendingQuery, Row as PgRow, Sql } from 'postgres';
import { TandemError } from '@tandem/core';
import { StoreUnavailableError } from './errors.js';
import type { DeviceRecord, PolicyLayerRecord } from './types.js';

/** A row as postgres.js returns it, and a query fragment. */
export type Row = Record<string, unknown>;
export type Fragment = PendingQuery<PgRow[]>;

export function and(sql: Sql, conds: Fragment[]): Fragment {
  return conds.reduce((acc, c) => sql`${acc} AND ${c}`);
}

export function deviceFrom(r: Row): DeviceRecord {
  return {
    id: String(r['id']),
    sealingKey: String(r['sealing_key']),
    signingKey: String(r['signing_key']),
    user: String(r['user_name']),
    hostName: String(r['host_name']),
    enrolledAt: (r['enrolled_at'] as Date).toISOString(),
    revokedAt: r['revoked_at'] === null ? null : (r['revoked_at'] as Date).toISOString(),
    lastCheckInAt: r['last_check_in_at'] === null ? null : (r['last_check_in_at'] as Date).toISOString(),
    ...(r['last_state'] === null ? {} : { lastState: r['last_state'] }),
  };
}

export function layerFrom(r: Row): PolicyLayerRecord {
  return { name: String(r['name']), document: r['document'], updatedAt: (r['updated_at'] as Date).toISOString() };
}

// Connection failures (postgres.js's own codes and the socket's), and the SQLSTATEs of a server
// going away or refusing for now: class 08 (connection), 57P01-57P03 (shutdown, cannot connect
// now), 53300 (too many connections), 40001/40P01 (serialization failure, deadlock: retry).
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const RETRYABLE_SQLSTATE = /^(08...|57P0[123]|53300|40001|40P01)$/;

export function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (CONNECTION_CODES.has(code) || /^(08...|57P0[123])$/.test(code));
}

export function translate(err: unknown): Error {
  if (TandemError.is(err)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || RETRYABLE_SQLSTATE.test(code))) {
    return new StoreUnavailableError(
      `The PostgreSQL store is unavailable (${(err as Error).message}); retry the request.`,
      {
        cause: err,
        details: { code },
      },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}
