import { toCsv } from './csv.js';
import type { CsvOptions } from './csv.js';
import type { EndpointReportRow, EventPage } from './types.js';

/** A failure count of `failuresSince`. */
export interface FailureCountRow {
  readonly type: string;
  readonly count: number;
}

/** A row of `versionDistribution`. */
export interface VersionDistributionRow {
  readonly workspace: string;
  readonly version: string;
  readonly devices: number;
}

/**
 * The endpoint report as CSV: one line per device and workspace it reported (a device with no
 * workspace gets one line with empty workspace cells).
 *
 * @example
 * ```ts
 * const csv = endpointReportCsv(await store.endpointReport());
 * ```
 */
export function endpointReportCsv(rows: readonly EndpointReportRow[], options?: CsvOptions): string {
  const lines = rows.flatMap((r) => {
    const base = [r.device, r.user, r.hostName, r.lastCheckInAt, r.revoked];
    return r.workspaces.length === 0
      ? [[...base, null, null, null]]
      : r.workspaces.map((w) => [...base, w.workspace, w.version, w.state]);
  });
  return toCsv(
    ['device', 'user', 'hostName', 'lastCheckInAt', 'revoked', 'workspace', 'version', 'state'],
    lines,
    options,
  );
}

/**
 * Failure counts as CSV (`type,count`).
 *
 * @example
 * ```ts
 * const csv = failuresCsv(await store.failuresSince(new Date(Date.now() - 86_400_000).toISOString()));
 * ```
 */
export function failuresCsv(rows: readonly FailureCountRow[], options?: CsvOptions): string {
  return toCsv(
    ['type', 'count'],
    rows.map((r) => [r.type, r.count]),
    options,
  );
}

/**
 * The version distribution as CSV (`workspace,version,devices`).
 *
 * @example
 * ```ts
 * const csv = versionDistributionCsv(await store.versionDistribution());
 * ```
 */
export function versionDistributionCsv(rows: readonly VersionDistributionRow[], options?: CsvOptions): string {
  return toCsv(
    ['workspace', 'version', 'devices'],
    rows.map((r) => [r.workspace, r.version, r.devices]),
    options,
  );
}

/**
 * A page of events as CSV: the stored fields, then the event's own, with `data` as JSON text.
 *
 * @example
 * ```ts
 * const csv = eventsCsv(await store.queryEvents({ type: 'session.error', since }));
 * ```
 */
export function eventsCsv(page: EventPage, options?: CsvOptions): string {
  return toCsv(
    ['id', 'at', 'type', 'device', 'user', 'workspace', 'session', 'receivedAt', 'data'],
    page.events.map((e) => [
      e.event.id,
      e.event.at,
      e.event.type,
      e.device,
      e.user,
      e.event.workspace,
      e.event.session,
      e.receivedAt,
      JSON.stringify(e.event.data),
    ]),
    options,
  );
}
