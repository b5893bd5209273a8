import { randomUUID } from 'node:crypto';
import {
  InvalidInputError,
  NotFoundError,
  formatDecision,
  parsePolicyLayer,
  systemClock,
  type Clock,
  type PolicyQuestion,
  type PolicySubject,
} from '@tandem/core';
import { DataKey } from '@tandem/core/crypto';
import { assignmentCovers, compileAssignment, policyLayerInput, provisionFor } from './provisioning.js';
import { reportedWorkspaces } from './store/common.js';
import type { ServerSecrets } from './secrets.js';
import type {
  AssignmentRecord,
  AuditRecord,
  BuiltinGroupRecord,
  DeviceRecord,
  EndpointQuery,
  EventFilter,
  ServerStore,
} from './store/types.js';
import type { ServerDirectory } from './directory-port.js';

/** What the built-in directory's user management needs (D's BuiltinDirectory has it). */
export interface BuiltinUserAdmin {
  createUser(user: {
    name: string;
    password: string;
    displayName?: string | undefined;
    expiresAt?: string | undefined;
    passwordExpiresAt?: string | undefined;
    disabled?: boolean | undefined;
  }): Promise<unknown>;
}

/** What {@link AdminService} works on. */
export interface AdminServiceOptions {
  readonly store: ServerStore;
  readonly secrets: ServerSecrets;
  readonly directory: ServerDirectory;
  /** Creates built-in users (hashing their passwords); absent with an LDAP directory. */
  readonly users?: BuiltinUserAdmin | undefined;
  readonly clock?: Clock;
}

/** A new assignment. */
export interface AssignInput {
  readonly workspace: string;
  readonly channel?: string | undefined;
  readonly version?: string | undefined;
  readonly users?: readonly string[];
  readonly groups?: readonly string[];
  readonly policyLayers?: readonly string[];
  readonly lease?: string | undefined;
  /** Replace this assignment (its id); default a new one. */
  readonly id?: string | undefined;
}

const WORKSPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Every administrative action: users and groups of the built-in directory, assignments, policy
 * layers, workspace keys, devices, reports. Each change is an {@link AuditRecord} (who, what,
 * when) and bumps the store's revision, so every endpoint hears of it at its next check-in
 * through any server process.
 *
 * @example
 * ```ts
 * const admin = new AdminService({ store, secrets, directory, users: builtinDirectory });
 * await admin.assign('cli:root', { workspace: 'quickstart', groups: ['builtin:group:erp-users'] });
 * ```
 */
export class AdminService {
  readonly #o: AdminServiceOptions;
  readonly #clock: Clock;

  constructor(options: AdminServiceOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  async #audit(actor: string, action: string, target: string, detail?: unknown, scope?: string): Promise<void> {
    const record: AuditRecord = {
      id: randomUUID(),
      at: this.#now(),
      actor,
      action,
      target,
      ...(detail !== undefined ? { detail } : {}),
    };
    await this.#o.store.appendAudit(record);
    if (scope) await this.#o.store.publishChange(scope, target);
  }

  // Users and groups (built-in directory)
  async addUser(
    actor: string,
    user: { name: string; password: string; displayName?: string; expiresAt?: string; passwordExpiresAt?: string },
  ): Promise<void> {
    if (!this.#o.users)
      throw new InvalidInputError(
        `Users are managed in the ${this.#o.directory.kind} directory, not in Tandem; add ${user.name} there.`,
      );
    await this.#o.users.createUser(user);
    await this.#audit(actor, 'user.add', user.name, { displayName: user.displayName }, 'directory');
  }

  /** Disables, enables, locks or unlocks a built-in user, or sets a new password hash time. */
  async setUserState(
    actor: string,
    name: string,
    change: { disabled?: boolean; lockedUntil?: string | null; expiresAt?: string | null },
  ): Promise<void> {
    const record = await this.#o.store.getUser(name);
    if (!record) throw new NotFoundError(`No built-in user ${name}.`, { details: { user: name } });
    await this.#o.store.putUser({ ...record, ...change });
    await this.#audit(actor, 'user.update', name, change, 'directory');
  }

  async removeUser(actor: string, name: string): Promise<boolean> {
    const gone = await this.#o.store.deleteUser(name);
    if (gone) await this.#audit(actor, 'user.remove', name, undefined, 'directory');
    return gone;
  }

  async listUsers(search?: string) {
    const users = await this.#o.store.listUsers(search !== undefined ? { search } : {});
    // Never the password hashes.
    return users.map(({ passwordHash: _hash, ...rest }) => rest);
  }

  async putGroup(actor: string, group: BuiltinGroupRecord): Promise<void> {
    await this.#o.store.putGroup(group);
    await this.#audit(actor, 'group.put', group.name, { members: group.members }, 'directory');
  }

  async addMembers(actor: string, name: string, members: readonly string[]): Promise<BuiltinGroupRecord> {
    const g = (await this.#o.store.getGroup(name)) ?? { name, members: [] };
    const next = { ...g, members: [...new Set([...g.members, ...members])] };
    await this.putGroup(actor, next);
    return next;
  }

  async removeGroup(actor: string, name: string): Promise<boolean> {
    const gone = await this.#o.store.deleteGroup(name);
    if (gone) await this.#audit(actor, 'group.remove', name, undefined, 'directory');
    return gone;
  }

  listGroups(search?: string): Promise<BuiltinGroupRecord[]> {
    return this.#o.store.listGroups(search !== undefined ? { search } : {});
  }

  // Policy layers and assignments
  async putPolicyLayer(actor: string, name: string, document: unknown): Promise<void> {
    const record = { name, document, updatedAt: this.#now() };
    policyLayerInput(record); // refuses a bad document before it is stored
    await this.#o.store.putPolicyLayer(record);
    await this.#audit(actor, 'policy.put', name, undefined, 'policy');
  }

  async removePolicyLayer(actor: string, name: string): Promise<boolean> {
    const used = (await this.#o.store.listAssignments()).filter((a) => a.policyLayers.includes(name));
    if (used.length > 0)
      throw new InvalidInputError(
        `Policy layer ${name} is used by assignment ${used.map((a) => a.id).join(', ')}; remove it there first.`,
      );
    const gone = await this.#o.store.deletePolicyLayer(name);
    if (gone) await this.#audit(actor, 'policy.remove', name, undefined, 'policy');
    return gone;
  }

  async assign(actor: string, input: AssignInput): Promise<AssignmentRecord> {
    if (!WORKSPACE.test(input.workspace))
      throw new InvalidInputError(`"${input.workspace}" is not a workspace name (lower-case letters, digits, dashes).`);
    if ((input.users ?? []).length === 0 && (input.groups ?? []).length === 0)
      throw new InvalidInputError('An assignment names at least one user (--user) or group (--group).');
    const now = this.#now();
    const existing =
      input.id !== undefined ? (await this.#o.store.listAssignments()).find((a) => a.id === input.id) : undefined;
    const record: AssignmentRecord = {
      id: input.id ?? randomUUID(),
      workspace: input.workspace,
      ...(input.channel !== undefined ? { channel: input.channel } : {}),
      ...(input.version !== undefined ? { version: input.version } : {}),
      users: [...(input.users ?? [])],
      groups: [...(input.groups ?? [])],
      policyLayers: [...(input.policyLayers ?? [])],
      ...(input.lease !== undefined ? { lease: input.lease } : {}),
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    const layers = new Map((await this.#o.store.listPolicyLayers()).map((l) => [l.name, l]));
    compileAssignment(record, layers); // names only existing, valid layers
    await this.#o.store.putAssignment(record);
    await this.#audit(actor, existing ? 'assignment.update' : 'assignment.add', record.id, record, 'assignment');
    return record;
  }

  /**
   * Publishes `version` as the current version of `channel` for `workspace`: every assignment
   * following that channel now names it, so each endpoint on the channel hears of the new
   * version at its next check-in (the reply's `channel` and `version`).
   */
  async setChannelVersion(actor: string, workspace: string, channel: string, version: string): Promise<number> {
    if (!/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/.test(version))
      throw new InvalidInputError(`"${version}" is not a version (3.2.0).`);
    const following = (await this.#o.store.listAssignments()).filter(
      (a) => a.workspace === workspace && a.channel === channel,
    );
    if (following.length === 0)
      throw new NotFoundError(`No assignment of ${workspace} follows channel ${channel}.`, {
        details: { workspace, channel },
      });
    const now = this.#now();
    for (const a of following) await this.#o.store.putAssignment({ ...a, version, updatedAt: now });
    await this.#audit(actor, 'channel.version', `${workspace}/${channel}`, { version }, 'channel');
    return following.length;
  }

  async unassign(actor: string, id: string): Promise<boolean> {
    const gone = await this.#o.store.deleteAssignment(id);
    if (gone) await this.#audit(actor, 'assignment.remove', id, undefined, 'assignment');
    return gone;
  }

  listAssignments(): Promise<AssignmentRecord[]> {
    return this.#o.store.listAssignments();
  }

  /**
   * What `user` gets, computed as a check-in would (their nested groups from the directory),
   * with the reason of each decision: the server's view for `tandem policy explain --server`.
   */
  async explain(user: string) {
    const groups = await this.#o.directory.groupsOf(user);
    const subject: PolicySubject = { user, groups: [...new Set(groups.flatMap((g) => [g.dn, g.name]))] };
    const [assignments, layers] = await Promise.all([
      this.#o.store.listAssignments(),
      this.#o.store.listPolicyLayers(),
    ]);
    const byName = new Map(layers.map((l) => [l.name, l]));
    const compiled = assignments.map((a) => compileAssignment(a, byName));
    const keys = new Set<string>();
    for (const a of assignments) if (await this.#o.store.getWorkspaceKey(a.workspace)) keys.add(a.workspace);
    const given = provisionFor(compiled, subject, (w) => keys.has(w));
    const denied = compiled
      .filter((c) => !given.some((g) => g.compiled === c))
      .map((c) => ({
        workspace: c.assignment.workspace,
        assignment: c.assignment.id,
        reason: c.engine.forSubject(subject).decideProvisioning().reason,
      }));
    return {
      user,
      groups: subject.groups ?? [],
      workspaces: given.map((g) => ({
        ...g.workspace,
        usage: g.compiled.engine.forSubject(subject).usage,
      })),
      notGiven: denied,
    };
  }

  // Workspace keys
  /** Stores a workspace's data key, sealed under the master key; new random key when none is given. */
  async putWorkspaceKey(actor: string, workspace: string, dataKey?: DataKey): Promise<{ dataKeyId: string }> {
    if (!WORKSPACE.test(workspace)) throw new InvalidInputError(`"${workspace}" is not a workspace name.`);
    const key = dataKey ?? DataKey.generate();
    try {
      await this.#o.store.putWorkspaceKey({
        workspace,
        sealedDataKey: this.#o.secrets.sealDataKey(workspace, key),
        createdAt: this.#now(),
      });
      await this.#audit(actor, 'workspace.key', workspace, { dataKeyId: key.id }, 'assignment');
      return { dataKeyId: key.id };
    } finally {
      if (!dataKey) key.dispose();
    }
  }

  // Devices
  listDevices(filter: { user?: string; search?: string; revoked?: boolean } = {}) {
    return this.#o.store.listDevices(filter);
  }

  async revokeDevice(actor: string, id: string): Promise<boolean> {
    const done = await this.#o.store.revokeDevice(id, this.#now());
    if (done) await this.#audit(actor, 'device.revoke', id, undefined, 'device');
    return done;
  }

  async device(id: string): Promise<DeviceRecord> {
    const d = await this.#o.store.getDevice(id);
    if (!d) throw new NotFoundError(`No device ${id} is enrolled.`, { details: { device: id } });
    return d;
  }

  // Reports
  endpoints() {
    return this.#o.store.endpointReport();
  }
  events(filter: EventFilter) {
    return this.#o.store.queryEvents(filter);
  }
  failures(sinceMs = 24 * 3600 * 1000) {
    return this.#o.store.failuresSince(new Date(this.#clock.now() - sinceMs).toISOString());
  }
  versions() {
    return this.#o.store.versionDistribution();
  }
  audit(filter: { actor?: string; since?: string; limit?: number } = {}) {
    return this.#o.store.queryAudit(filter);
  }

  // --- The management console's actions (issue 16); each is also `POST /v1/admin/<action>` and
  // a `tandem admin` command. ---

  /** Online now / last day, sessions running, failures of the last day, version spread. */
  async overview(onlineWindowMs = ONLINE_WINDOW_MS) {
    const now = this.#clock.now();
    const daySince = new Date(now - 24 * 3600_000).toISOString();
    const [endpoints, failures, versions] = await Promise.all([
      this.#o.store.endpointOverview({ onlineSince: new Date(now - onlineWindowMs).toISOString(), daySince }),
      this.#o.store.failuresSince(daySince),
      this.#o.store.versionDistribution(),
    ]);
    const { sessionsRunning, ...counts } = endpoints;
    return {
      generatedAt: new Date(now).toISOString(),
      onlineWindowMs,
      endpoints: counts,
      sessionsRunning,
      failuresLastDay: { total: failures.reduce((n, f) => n + f.count, 0), byType: failures },
      versions,
    };
  }

  /**
   * A page of the endpoint table (search, filter, sort in the store). `state` online/offline is
   * relative to now minus the online window (5 minutes).
   */
  async searchEndpoints(query: Omit<EndpointQuery, 'onlineSince'>, onlineWindowMs = ONLINE_WINDOW_MS) {
    const onlineSince = new Date(this.#clock.now() - onlineWindowMs).toISOString();
    const page = await this.#o.store.searchEndpoints({ ...query, onlineSince });
    return {
      total: page.total,
      rows: page.rows.map((r) => ({ ...r, state: endpointState(r, onlineSince) })),
    };
  }

  /** One device: its user, the versions and states it reported, its envelopes' leases, its last events. */
  async deviceDetail(id: string, eventCount = 50) {
    const d = await this.device(id);
    const state = (d.lastState ?? {}) as { agentVersion?: unknown; envelopes?: unknown };
    const leases = Array.isArray(state.envelopes)
      ? (state.envelopes as unknown[]).filter(
          (e): e is { workspace: string; envelopeId: string; issuedAt: string; notAfter: string } =>
            typeof e === 'object' && e !== null && typeof (e as { notAfter?: unknown }).notAfter === 'string',
        )
      : [];
    // The last events: the day before its last check-in (or now), newest first.
    const end = d.lastCheckInAt ? Date.parse(d.lastCheckInAt) : this.#clock.now();
    const page = await this.#o.store.queryEvents({
      device: id,
      since: new Date(end - 24 * 3600_000).toISOString(),
      limit: 10_000,
    });
    const onlineSince = new Date(this.#clock.now() - ONLINE_WINDOW_MS).toISOString();
    return {
      device: {
        id: d.id,
        user: d.user,
        hostName: d.hostName,
        enrolledAt: d.enrolledAt,
        revokedAt: d.revokedAt ?? null,
        lastCheckInAt: d.lastCheckInAt ?? null,
        agentVersion: typeof state.agentVersion === 'string' ? state.agentVersion : null,
        state: endpointState({ revoked: Boolean(d.revokedAt), lastCheckInAt: d.lastCheckInAt ?? null }, onlineSince),
      },
      workspaces: reportedWorkspaces(d.lastState),
      leases: leases.map((l) => ({
        workspace: l.workspace,
        envelopeId: l.envelopeId,
        issuedAt: l.issuedAt,
        notAfter: l.notAfter,
      })),
      events: page.events.slice(-eventCount).reverse(),
    };
  }

  /** Users and groups of the directory (built-in or LDAP) whose names contain `text`. */
  async searchDirectory(text: string, options: { kind?: 'user' | 'group' | 'all'; limit?: number } = {}) {
    const dir = this.#o.directory as ServerDirectory & {
      search?(
        text: string,
        options?: { limit?: number },
      ): Promise<{
        users: readonly { name: string; dn: string; displayName?: string | undefined }[];
        groups: readonly { name: string; dn: string }[];
      }>;
    };
    if (!dir.search)
      throw new InvalidInputError(`The ${dir.kind} directory cannot be searched from Tandem.`, {
        details: { directory: dir.kind },
      });
    const limit = options.limit ?? 20;
    const kind = options.kind ?? 'all';
    const found = await dir.search(text, { limit });
    return {
      directory: dir.kind,
      users:
        kind === 'group'
          ? []
          : found.users.slice(0, limit).map((u) => ({
              name: u.name,
              dn: u.dn,
              ...(u.displayName !== undefined ? { displayName: u.displayName } : {}),
            })),
      groups: kind === 'user' ? [] : found.groups.slice(0, limit).map((g) => ({ name: g.name, dn: g.dn })),
    };
  }

  /**
   * Checks a policy layer document (an object, or YAML/JSON text) with core's schema and
   * messages, as `tandem admin policy` and `tandem policy explain --layer` read a layer file:
   * each issue with its path (`policy.transfer.clipboard`) and message, and the line for text.
   */
  validatePolicyLayer(document: unknown): {
    ok: boolean;
    issues: { path: string; message: string; line?: number }[];
  } {
    const text = typeof document === 'string' ? document : JSON.stringify(document ?? null);
    try {
      parsePolicyLayer(text, { file: 'policy layer' });
      return { ok: true, issues: [] };
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      const issues = (err.details['issues'] as { path: string; message: string; line?: number }[] | undefined) ?? [
        { path: '', message: err.message.replace(/^policy layer is not valid YAML:\s*/, '') },
      ];
      return {
        ok: false,
        issues: issues.map((i) => ({
          path: i.path,
          message: i.message,
          ...(typeof document === 'string' && i.line !== undefined ? { line: i.line } : {}),
        })),
      };
    }
  }

  listPolicyLayers() {
    return this.#o.store.listPolicyLayers();
  }

  /**
   * Each workspace's channels and the versions they name, from the assignments (the server
   * keeps no repository: the repository's signed metadata stays with the endpoints), with the
   * versions endpoints report; who each channel goes to.
   */
  async channels() {
    const [assignments, reported] = await Promise.all([
      this.#o.store.listAssignments(),
      this.#o.store.versionDistribution(),
    ]);
    const byWorkspace = new Map<
      string,
      {
        versions: Set<string>;
        channels: Map<
          string,
          { version: string | null; assignments: string[]; users: Set<string>; groups: Set<string> }
        >;
      }
    >();
    const entry = (w: string) => {
      let e = byWorkspace.get(w);
      if (!e) byWorkspace.set(w, (e = { versions: new Set(), channels: new Map() }));
      return e;
    };
    for (const a of assignments) {
      const e = entry(a.workspace);
      if (a.version !== undefined) e.versions.add(a.version);
      if (a.channel === undefined) continue;
      let c = e.channels.get(a.channel);
      if (!c) e.channels.set(a.channel, (c = { version: null, assignments: [], users: new Set(), groups: new Set() }));
      if (a.version !== undefined) c.version = a.version;
      c.assignments.push(a.id);
      a.users.forEach((u) => c.users.add(u));
      a.groups.forEach((g) => c.groups.add(g));
    }
    for (const r of reported) entry(r.workspace).versions.add(r.version);
    return {
      source: 'assignments' as const,
      workspaces: [...byWorkspace.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([workspace, e]) => ({
          workspace,
          versions: [...e.versions].sort(),
          reported: reported
            .filter((r) => r.workspace === workspace)
            .map((r) => ({ version: r.version, devices: r.devices })),
          channels: [...e.channels.entries()]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([channel, c]) => ({
              channel,
              version: c.version,
              assignments: c.assignments,
              users: [...c.users].sort(),
              groups: [...c.groups].sort(),
            })),
        })),
    };
  }

  /**
   * `tandem policy explain` against the server's view: the user's groups from the directory
   * (the device's user when only a device is given), each workspace they are assigned, and
   * the question decided by that assignment's policy layers, naming the rule and layer.
   */
  async explainQuestion(input: {
    user?: string | undefined;
    device?: string | undefined;
    workspace?: string | undefined;
    question: PolicyQuestion;
  }) {
    let device: DeviceRecord | undefined;
    if (input.device !== undefined) device = await this.device(input.device);
    const user = input.user ?? device?.user;
    if (user === undefined)
      throw new InvalidInputError('explain needs a user (or a device, whose user is taken).', { details: {} });
    const view = await this.explain(user);
    const subject: PolicySubject = { user, groups: view.groups };
    const [assignments, layers] = await Promise.all([
      this.#o.store.listAssignments(),
      this.#o.store.listPolicyLayers(),
    ]);
    const byName = new Map(layers.map((l) => [l.name, l]));
    const covering = assignments.filter(
      (a) => (input.workspace === undefined || a.workspace === input.workspace) && assignmentCovers(a, subject),
    );
    if (input.workspace !== undefined && covering.length === 0)
      throw new NotFoundError(`${user} has no assignment of ${input.workspace} on this server.`, {
        details: { user, workspace: input.workspace },
      });
    // The assignment that wins per workspace is the one provisioning picks (see provisionFor).
    const chosen = new Map(view.workspaces.map((w) => [w.workspace, w.assignment]));
    const decisions = covering
      .filter((a) => !chosen.has(a.workspace) || chosen.get(a.workspace) === a.id)
      .map((a) => {
        const decision = compileAssignment(a, byName).engine.explain(subject, input.question);
        return { workspace: a.workspace, assignment: a.id, decision, lines: formatDecision(decision) };
      });
    return {
      ...view,
      ...(device ? { device: { id: device.id, user: device.user, lastCheckInAt: device.lastCheckInAt ?? null } } : {}),
      decisions,
    };
  }
}

/** How recent a check-in must be for the console to call an endpoint online: 5 minutes. */
export const ONLINE_WINDOW_MS = 5 * 60_000;

function endpointState(
  r: { revoked: boolean; lastCheckInAt: string | null },
  onlineSince: string,
): 'online' | 'offline' | 'never' | 'revoked' {
  if (r.revoked) return 'revoked';
  if (r.lastCheckInAt === null) return 'never';
  return Date.parse(r.lastCheckInAt) >= Date.parse(onlineSince) ? 'online' : 'offline';
}
