// Row mapping and error translation of the SQLite store.
import { TandemError } from '@tandem/core';
import { StoreUnavailableError } from './errors.js';
import type { DeviceRecord, PolicyLayerRecord } from './types.js';

/** A row as node:sqlite returns it. */
export type Row = Record<string, string | number | null>;

export function deviceFrom(r: Row): DeviceRecord {
  return {
    id: String(r['id']),
    sealingKey: String(r['sealing_key']),
    signingKey: String(r['signing_key']),
    user: String(r['user_name']),
    hostName: String(r['host_name']),
    enrolledAt: String(r['enrolled_at']),
    revokedAt: r['revoked_at'] === null ? null : String(r['revoked_at']),
    lastCheckInAt: r['last_check_in_at'] === null ? null : String(r['last_check_in_at']),
    ...(r['last_state'] === null ? {} : { lastState: JSON.parse(String(r['last_state'])) as unknown }),
  };
}

export function layerFrom(r: Row): PolicyLayerRecord {
  return {
    name: String(r['name']),
    document: JSON.parse(String(r['document'])) as unknown,
    updatedAt: String(r['updated_at']),
  };
}

export function bodyOf<T>(row: unknown): T | undefined {
  return row ? (JSON.parse((row as { body: string }).body) as T) : undefined;
}

export function translate(err: unknown): Error {
  if (TandemError.is(err) || !(err instanceof Error)) return err instanceof Error ? err : new Error(String(err));
  const e = err as { code?: string; errcode?: number; message?: string };
  // SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_CANTOPEN (14)
  const primary = typeof e.errcode === 'number' ? e.errcode & 0xff : -1;
  if (e.code === 'ERR_SQLITE_ERROR' && [5, 6, 10, 13, 14].includes(primary)) {
    return new StoreUnavailableError(`The SQLite store is unavailable (${e.message ?? 'error'}); retry the request.`, {
      cause: err,
    });
  }
  return err;
}
