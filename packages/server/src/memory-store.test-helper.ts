// An in-memory ServerStore for the API's unit tests (not shipped): the real SQLite and
// PostgreSQL stores run the shared store suite; these tests are about the API above them.
import { HostError } from '@tandem/core';
import { searchRowOf } from './store/console-rows.js';
import { endpointQueryParts } from './store/console-queries.js';
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
} from './store/types.js';

export class MemoryServerStore implements ServerStore {
  readonly kind = 'sqlite' as const;
  devices = new Map<string, DeviceRecord>();
  nonces = new Set<string>();
  events = new Map<string, StoredEvent>();
  assignments = new Map<string, AssignmentRecord>();
  layers = new Map<string, PolicyLayerRecord>();
  keys = new Map<string, WorkspaceKeyRecord>();
  users = new Map<string, BuiltinUserRecord>();
  groups = new Map<string, BuiltinGroupRecord>();
  throttles = new Map<string, ThrottleRecord>();
  auditLog: AuditRecord[] = [];
  rev = 0;
  listeners = new Set<(c: StoreChange) => void>();
  /** When set, every call fails as if the database went away. */
  down = false;
  /** Fails the next `n` calls of `method`. */
  failNext = new Map<string, number>();

  #gate(method: string): void {
    const n = this.failNext.get(method) ?? 0;
    if (this.down || n > 0) {
      if (n > 0) this.failNext.set(method, n - 1);
      throw new HostError('The database cannot be reached (connection refused).', { retryable: true });
    }
  }

  async migrate(): Promise<void> {}
  async close(): Promise<void> {}
  async putDevice(d: DeviceRecord) {
    this.#gate('putDevice');
    this.devices.set(d.id, d);
  }
  async getDevice(id: string) {
    this.#gate('getDevice');
    return this.devices.get(id);
  }
  async listDevices(filter: { user?: string; revoked?: boolean } = {}) {
    const devices = [...this.devices.values()].filter(
      (d) =>
        (filter.user === undefined || d.user === filter.user) &&
        (filter.revoked === undefined || !!d.revokedAt === filter.revoked),
    );
    return { devices, total: devices.length };
  }
  async recordCheckIn(id: string, at: string, state: unknown) {
    this.#gate('recordCheckIn');
    const d = this.devices.get(id);
    if (d) this.devices.set(id, { ...d, lastCheckInAt: at, lastState: state });
  }
  async revokeDevice(id: string, at: string) {
    const d = this.devices.get(id);
    if (!d || d.revokedAt) return false;
    this.devices.set(id, { ...d, revokedAt: at });
    return true;
  }
  async useNonce(device: string, nonce: string) {
    this.#gate('useNonce');
    const k = `${device}\n${nonce}`;
    if (this.nonces.has(k)) return false;
    this.nonces.add(k);
    return true;
  }
  async ingestEvents(events: readonly StoredEvent[]) {
    this.#gate('ingestEvents');
    let inserted = 0;
    for (const e of events) {
      if (this.events.has(e.event.id)) continue;
      this.events.set(e.event.id, e);
      inserted++;
    }
    return { inserted, duplicates: events.length - inserted };
  }
  async queryEvents(filter: EventFilter): Promise<EventPage> {
    const events = [...this.events.values()].filter(
      (e) =>
        (filter.device === undefined || e.device === filter.device) &&
        (filter.user === undefined || e.user === filter.user) &&
        (filter.type === undefined || [filter.type].flat().includes(e.event.type)),
    );
    return { events };
  }
  async applyRetention() {
    return 0;
  }
  async putAssignment(a: AssignmentRecord) {
    this.assignments.set(a.id, a);
  }
  async deleteAssignment(id: string) {
    return this.assignments.delete(id);
  }
  async listAssignments() {
    this.#gate('listAssignments');
    return [...this.assignments.values()];
  }
  async putPolicyLayer(l: PolicyLayerRecord) {
    this.layers.set(l.name, l);
  }
  async getPolicyLayer(name: string) {
    return this.layers.get(name);
  }
  async listPolicyLayers() {
    return [...this.layers.values()];
  }
  async deletePolicyLayer(name: string) {
    return this.layers.delete(name);
  }
  async putWorkspaceKey(k: WorkspaceKeyRecord) {
    this.keys.set(k.workspace, k);
  }
  async getWorkspaceKey(w: string) {
    return this.keys.get(w);
  }
  async putUser(u: BuiltinUserRecord) {
    this.users.set(u.name, u);
  }
  async getUser(name: string) {
    this.#gate('getUser');
    return this.users.get(name);
  }
  async deleteUser(name: string) {
    return this.users.delete(name);
  }
  async listUsers() {
    return [...this.users.values()];
  }
  async putGroup(g: BuiltinGroupRecord) {
    this.groups.set(g.name, g);
  }
  async getGroup(name: string) {
    return this.groups.get(name);
  }
  async deleteGroup(name: string) {
    return this.groups.delete(name);
  }
  async listGroups() {
    return [...this.groups.values()];
  }
  async getThrottle(key: string) {
    return this.throttles.get(key);
  }
  async putThrottle(r: ThrottleRecord) {
    this.throttles.set(r.key, r);
  }
  async clearThrottle(key: string) {
    this.throttles.delete(key);
  }
  async appendAudit(r: AuditRecord) {
    this.auditLog.push(r);
  }
  async queryAudit() {
    return [...this.auditLog];
  }
  async revision() {
    this.#gate('revision');
    return this.rev;
  }
  async publishChange(scope: string, id?: string) {
    const change = { revision: ++this.rev, scope, id };
    for (const l of this.listeners) l(change);
    return change;
  }
  async onChange(listener: (c: StoreChange) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async endpointReport(): Promise<EndpointReportRow[]> {
    return [];
  }
  async failuresSince() {
    return [];
  }
  async versionDistribution() {
    return [];
  }

  // The console's methods (issue 16): simple scans, enough for the API's unit tests.
  consoleSessions = new Map<string, ConsoleSessionRecord>();
  async searchEndpoints(query: EndpointQuery): Promise<{ total: number; rows: EndpointSearchRow[] }> {
    const q = endpointQueryParts(query);
    const all = [...this.devices.values()]
      .filter((d) => q.search === undefined || [d.id, d.user, d.hostName].some((v) => v.includes(q.search ?? '')))
      .filter((d) => (q.state === 'revoked' ? Boolean(d.revokedAt) : q.state === undefined || !d.revokedAt))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    return { total: all.length, rows: all.slice(q.offset, q.offset + q.limit).map(searchRowOf) };
  }
  async endpointOverview(at: { onlineSince: string; daySince: string }): Promise<EndpointOverview> {
    const live = [...this.devices.values()].filter((d) => !d.revokedAt);
    return {
      total: this.devices.size,
      revoked: this.devices.size - live.length,
      onlineNow: live.filter((d) => (d.lastCheckInAt ?? '') >= at.onlineSince).length,
      lastDay: live.filter((d) => (d.lastCheckInAt ?? '') >= at.daySince).length,
      sessionsRunning: 0,
    };
  }
  async putConsoleSession(r: ConsoleSessionRecord): Promise<void> {
    this.consoleSessions.set(r.id, r);
  }
  async getConsoleSession(id: string): Promise<ConsoleSessionRecord | undefined> {
    return this.consoleSessions.get(id);
  }
  async touchConsoleSession(id: string, at: string): Promise<boolean> {
    const r = this.consoleSessions.get(id);
    if (r) this.consoleSessions.set(id, { ...r, lastSeenAt: at });
    return Boolean(r);
  }
  async deleteConsoleSession(id: string): Promise<boolean> {
    return this.consoleSessions.delete(id);
  }
  async pruneConsoleSessions(before: string, idleBefore: string): Promise<number> {
    let n = 0;
    for (const [id, r] of this.consoleSessions)
      if (r.expiresAt < before || r.lastSeenAt < idleBefore) n += Number(this.consoleSessions.delete(id));
    return n;
  }
  async eventsReceivedAfter(after: ReceivedCursor, atSince: string, limit: number): Promise<StoredEvent[]> {
    return [...this.events.values()]
      .filter(
        (e) =>
          e.event.at >= atSince &&
          (e.receivedAt > after.receivedAt || (e.receivedAt === after.receivedAt && e.event.id > after.id)),
      )
      .sort((a, b) =>
        a.receivedAt === b.receivedAt ? (a.event.id < b.event.id ? -1 : 1) : a.receivedAt < b.receivedAt ? -1 : 1,
      )
      .slice(0, limit);
  }
}
