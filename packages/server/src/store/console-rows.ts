// Row mapping of the console's store methods, shared by both stores (issue 16).
import { reportedWorkspaces } from './common.js';
import type { ConsoleSessionRecord, DeviceRecord, EndpointSearchRow } from './types.js';

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));

/** A `console_sessions` row (SQLite text times or PostgreSQL Dates) as a record. */
export function consoleSessionFrom(r: Record<string, unknown>): ConsoleSessionRecord {
  return {
    id: String(r['id']),
    user: String(r['user_name']),
    ...(typeof r['display_name'] === 'string' ? { displayName: r['display_name'] } : {}),
    createdAt: iso(r['created_at']),
    lastSeenAt: iso(r['last_seen_at']),
    expiresAt: iso(r['expires_at']),
  };
}

/** A device as a row of the endpoint table. */
export function searchRowOf(d: DeviceRecord): EndpointSearchRow {
  return {
    device: d.id,
    user: d.user,
    hostName: d.hostName,
    enrolledAt: d.enrolledAt,
    lastCheckInAt: d.lastCheckInAt ?? null,
    revoked: Boolean(d.revokedAt),
    workspaces: reportedWorkspaces(d.lastState),
  };
}
