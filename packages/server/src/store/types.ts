/**
 * The management server's store contract. Two implementations pass one shared suite: SQLite
 * (`node:sqlite`, the embedded default) and PostgreSQL (many server processes over one
 * database). Server processes are stateless: everything they know is here.
 *
 * Times are ISO 8601 text in UTC. Every method may reject with a retryable `TandemError` when
 * the database is unreachable; nothing is half-written (each method is one transaction).
 */
import type { AnyTandemEvent } from '@tandem/core';
import type { BuiltinGroupRecord, BuiltinUserRecord, ThrottleRecord } from '@tandem/core/identity';

/** An enrolled device. */
export interface DeviceRecord {
  /** The device id (from its device key: `tandem-device1:...` fingerprint). */
  readonly id: string;
  /** The device's X25519 sealing key and Ed25519 request-signing key, in their text forms. */
  readonly sealingKey: string;
  readonly signingKey: string;
  /** The user who enrolled it, and the host name it reported. */
  readonly user: string;
  readonly hostName: string;
  readonly enrolledAt: string;
  readonly revokedAt?: string | null | undefined;
  readonly lastCheckInAt?: string | null | undefined;
  /**
   * What the device reported at its last check-in (sessions, versions, agent version...). The
   * reports read `workspaces: [{ workspace (or name), version?, state? }]` from it; the rest is
   * kept as sent.
   */
  readonly lastState?: unknown;
}

/** An event as stored: the endpoint's event plus who sent it and when it arrived. */
export interface StoredEvent {
  readonly device: string;
  readonly user: string | null;
  readonly receivedAt: string;
  readonly event: AnyTandemEvent;
}

/** A filter over stored events; every field narrows. Results are oldest first. */
export interface EventFilter {
  readonly device?: string;
  readonly user?: string;
  readonly workspace?: string;
  readonly type?: string | readonly string[];
  readonly since?: string;
  readonly until?: string;
  readonly limit?: number;
  /** Continue after this cursor (from {@link EventPage.next}). */
  readonly after?: string;
}

/** One page of events. */
export interface EventPage {
  readonly events: StoredEvent[];
  /** Pass as `after` for the next page; undefined at the end. */
  readonly next?: string | undefined;
}

/** A workspace given to users or groups, with the policy layers that apply. */
export interface AssignmentRecord {
  readonly id: string;
  /** The workspace's name. */
  readonly workspace: string;
  /** A channel (`stable`, `pilot`) or an exact version. */
  readonly channel?: string | undefined;
  readonly version?: string | undefined;
  /** Users (sign-in names) and groups (DNs) it is given to. */
  readonly users: readonly string[];
  readonly groups: readonly string[];
  /** Names of policy layers, lowest first. */
  readonly policyLayers: readonly string[];
  /** The offline lease the key envelopes get (ISO 8601 duration), when the policy does not say. */
  readonly lease?: string | undefined;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A named policy layer (the same document `tandem validate` checks). */
export interface PolicyLayerRecord {
  readonly name: string;
  readonly document: unknown;
  readonly updatedAt: string;
}

/** A workspace the server may release keys for: its data key, sealed at rest. */
export interface WorkspaceKeyRecord {
  readonly workspace: string;
  /** The data key, encrypted with the server's own key (never stored in the clear). */
  readonly sealedDataKey: string;
  readonly createdAt: string;
}

/** Who did what, when (every admin action). */
export interface AuditRecord {
  readonly id: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly detail?: unknown;
}

// The built-in directory's rows and the throttle's counters are core's own shapes (the built-in
// directory and the sign-in throttle in @tandem/core/identity read and write them through this
// store): one definition, re-exported here.
export type { BuiltinGroupRecord, BuiltinUserRecord, ThrottleRecord } from '@tandem/core/identity';
/** What changed, for the change feed (LISTEN/NOTIFY on PostgreSQL). */
export interface StoreChange {
  /** The store-wide revision after the change. */
  readonly revision: number;
  /** `assignment`, `policy`, `device`, `channel`, `directory`... */
  readonly scope: string;
  readonly id?: string | undefined;
}

/** Report rows. */
export interface EndpointReportRow {
  readonly device: string;
  readonly user: string;
  readonly hostName: string;
  readonly lastCheckInAt: string | null;
  readonly revoked: boolean;
  readonly workspaces: readonly { workspace: string; version: string | null; state: string | null }[];
}

/**
 * The store. Every write that changes what an endpoint gets bumps the revision and publishes a
 * {@link StoreChange} to every server process, in the same transaction: `putAssignment` and
 * `deleteAssignment` (scope `assignment`), `putPolicyLayer`/`deletePolicyLayer` (`policy`),
 * `putWorkspaceKey` (`key`), `revokeDevice` (`device`), and the built-in directory's user and
 * group writes (`directory`, id `user:NAME` or `group:NAME`). Other changes (a new version on a
 * channel) go through `publishChange`. Deletes that find nothing change nothing.
 */
export interface ServerStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Creates or upgrades the schema. Safe to call from several processes at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // Devices
  putDevice(device: DeviceRecord): Promise<void>;
  getDevice(id: string): Promise<DeviceRecord | undefined>;
  listDevices(filter?: {
    user?: string;
    search?: string;
    revoked?: boolean;
    limit?: number;
    offset?: number;
  }): Promise<{ devices: DeviceRecord[]; total: number }>;
  recordCheckIn(id: string, at: string, state: unknown): Promise<void>;
  revokeDevice(id: string, at: string): Promise<boolean>;
  /**
   * Records a request nonce of a device; false if it was seen before (replay). Nonces older than
   * `expiresAt` may be forgotten.
   */
  useNonce(device: string, nonce: string, expiresAt: string): Promise<boolean>;

  // Events: idempotent by event id; an endpoint's retry never duplicates.
  ingestEvents(events: readonly StoredEvent[]): Promise<{ inserted: number; duplicates: number }>;
  /**
   * Several callers' events in one write (a group commit of concurrent check-ins), each group
   * told its own counts, as if each had been one `ingestEvents` call in that order. Optional:
   * without it the server calls `ingestEvents` per group.
   */
  /**
   * Several devices' check-in times and states in one write; `false` for a device not enrolled.
   * Optional: without it the server calls `recordCheckIn` per device.
   */
  recordCheckIns?(items: readonly { id: string; at: string; state: unknown }[]): Promise<boolean[]>;
  /**
   * Several `useNonce` calls in one write, each answered as if made alone in that order.
   * Optional: without it the server calls `useNonce` per request.
   */
  useNonces?(items: readonly { device: string; nonce: string; expiresAt: string }[]): Promise<boolean[]>;
  ingestEventGroups?(groups: readonly (readonly StoredEvent[])[]): Promise<{ inserted: number; duplicates: number }[]>;
  queryEvents(filter: EventFilter): Promise<EventPage>;
  /** Deletes events older than `before` (PostgreSQL drops whole partitions). Returns how many went. */
  applyRetention(before: string): Promise<number>;

  // Assignments, policy layers, workspace keys
  putAssignment(assignment: AssignmentRecord): Promise<void>;
  deleteAssignment(id: string): Promise<boolean>;
  listAssignments(): Promise<AssignmentRecord[]>;
  putPolicyLayer(layer: PolicyLayerRecord): Promise<void>;
  getPolicyLayer(name: string): Promise<PolicyLayerRecord | undefined>;
  listPolicyLayers(): Promise<PolicyLayerRecord[]>;
  deletePolicyLayer(name: string): Promise<boolean>;
  putWorkspaceKey(key: WorkspaceKeyRecord): Promise<void>;
  getWorkspaceKey(workspace: string): Promise<WorkspaceKeyRecord | undefined>;

  // Built-in directory
  putUser(user: BuiltinUserRecord): Promise<void>;
  getUser(name: string): Promise<BuiltinUserRecord | undefined>;
  deleteUser(name: string): Promise<boolean>;
  listUsers(filter?: { search?: string; limit?: number }): Promise<BuiltinUserRecord[]>;
  putGroup(group: BuiltinGroupRecord): Promise<void>;
  getGroup(name: string): Promise<BuiltinGroupRecord | undefined>;
  deleteGroup(name: string): Promise<boolean>;
  listGroups(filter?: { search?: string; limit?: number }): Promise<BuiltinGroupRecord[]>;

  // Sign-in throttling, shared by every server process
  getThrottle(key: string): Promise<ThrottleRecord | undefined>;
  putThrottle(record: ThrottleRecord): Promise<void>;
  clearThrottle(key: string): Promise<void>;

  // Audit
  appendAudit(record: AuditRecord): Promise<void>;
  queryAudit(filter?: { actor?: string; since?: string; limit?: number }): Promise<AuditRecord[]>;

  // Change feed
  /** The current store-wide revision (the check-in's version token is built from it). */
  revision(): Promise<number>;
  /** Bumps the revision and tells every process (`scope` says what changed). */
  publishChange(scope: string, id?: string): Promise<StoreChange>;
  /** Calls `listener` for every change made through any process. Returns an unsubscribe. */
  onChange(listener: (change: StoreChange) => void): Promise<() => void>;

  // Reports
  endpointReport(filter?: { limit?: number; offset?: number }): Promise<EndpointReportRow[]>;
  /** Counts of `session.error`, `sync.failed`, `integrity.failure`, `auth.failure`... since `since`, by type. */
  failuresSince(since: string): Promise<{ type: string; count: number }[]>;
  versionDistribution(): Promise<{ workspace: string; version: string; devices: number }[]>;
}

// --- The management console's store methods (issue 16) ---------------------------------------
// Declared in a block of their own (interface merging), so the contract above stays as it was.

/** An endpoint's state as the console filters it. */
export type EndpointState = 'online' | 'offline' | 'never' | 'revoked';

/** A page of the endpoint table: every field narrows; paged and sorted in the database. */
export interface EndpointQuery {
  /** Part of the device id, user or host name (case-insensitive). */
  readonly search?: string | undefined;
  readonly state?: EndpointState | undefined;
  /** Checked in at or after this time counts as online (with `state`); required with `state`. */
  readonly onlineSince?: string | undefined;
  /** Reported running this workspace (and this version) at its last check-in. */
  readonly workspace?: string | undefined;
  readonly version?: string | undefined;
  readonly checkedInAfter?: string | undefined;
  readonly checkedInBefore?: string | undefined;
  readonly sort?: 'device' | 'user' | 'hostName' | 'lastCheckInAt' | 'enrolledAt' | undefined;
  readonly order?: 'asc' | 'desc' | undefined;
  /** 1..500, default 50. */
  readonly limit?: number | undefined;
  readonly offset?: number | undefined;
}

/** One row of the endpoint table. */
export interface EndpointSearchRow extends EndpointReportRow {
  readonly enrolledAt: string;
}

/** Counts for the console's overview. */
export interface EndpointOverview {
  readonly total: number;
  /** Not revoked, checked in at or after `onlineSince`. */
  readonly onlineNow: number;
  /** Not revoked, checked in at or after `daySince`. */
  readonly lastDay: number;
  readonly revoked: number;
  /** Workspaces reported `state: "running"` by devices online now. */
  readonly sessionsRunning: number;
}

/** A signed-in console session (the cookie's value is never stored: only its SHA-256). */
export interface ConsoleSessionRecord {
  /** SHA-256 (hex) of the cookie's random value. */
  readonly id: string;
  readonly user: string;
  readonly displayName?: string | undefined;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  /** The absolute end; the idle end is `lastSeenAt` + the idle limit. */
  readonly expiresAt: string;
}

/** Where a page of newly received events ended (the live stream's position). */
export interface ReceivedCursor {
  readonly receivedAt: string;
  readonly id: string;
}

export interface ServerStore {
  /** The endpoint table: filtered, sorted and paged by the database; `total` counts the filter's rows. */
  searchEndpoints(query: EndpointQuery): Promise<{ total: number; rows: EndpointSearchRow[] }>;
  /** The overview's endpoint counts. */
  endpointOverview(at: { onlineSince: string; daySince: string }): Promise<EndpointOverview>;
  putConsoleSession(session: ConsoleSessionRecord): Promise<void>;
  getConsoleSession(id: string): Promise<ConsoleSessionRecord | undefined>;
  /** Sets `lastSeenAt`; false when the session is gone. */
  touchConsoleSession(id: string, at: string): Promise<boolean>;
  deleteConsoleSession(id: string): Promise<boolean>;
  /** Deletes sessions whose absolute end is before `before`, or idle since before `idleBefore`. */
  pruneConsoleSessions(before: string, idleBefore: string): Promise<number>;
  /**
   * Events received after `after` (by arrival time, then id), oldest first, at most `limit`,
   * among those whose own time is at or after `atSince`: the index on event time bounds the
   * scan, so ingestion carries no extra index. The live stream's source; an event older than
   * `atSince` (uploaded late by an offline endpoint) is not streamed but `queryEvents` has it.
   */
  eventsReceivedAfter(after: ReceivedCursor, atSince: string, limit: number): Promise<StoredEvent[]>;
}
