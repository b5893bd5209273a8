import { createHash } from 'node:crypto';
import {
  NotFoundError,
  TandemError,
  systemClock,
  type AnyTandemEvent,
  type Clock,
  type PolicySubject,
} from '@tandem/core';
import { devicePublicKeyOf } from '@tandem/core/crypto';
import type {
  AssignmentsReply,
  CheckInReply,
  EnrollReply,
  EnvelopeReply,
  EventUploadReply,
  ProvisionedWorkspace,
  SignInInfo,
  SignInReply,
  WireEvent,
} from '@tandem/core/management';
import type { z } from 'zod';
import { REQUEST_WINDOW_MS } from '@tandem/core/management';
import type { CheckInRequestSchema, EnrollRequestSchema, SignInRequestSchema } from '@tandem/core/management';
import type { ServerDirectory, ServerSignInThrottle, DirectoryUserView } from './directory-port.js';
import { ApiError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { compileAssignment, provisionFor, type CompiledAssignment } from './provisioning.js';
import {
  checkSignature,
  replayed,
  revokedDevice,
  unknownDevice,
  verifyRequest,
  type RequestSignature,
} from './request-auth.js';
import type { CheckInWrite, CheckInWriteResult } from './store/check-in-group.js';
import type { ServerSecrets } from './secrets.js';
import type { DeviceRecord, ServerStore, StoredEvent } from './store/types.js';

/** What a {@link ManagementService} is built from. */
export interface ManagementServiceOptions {
  readonly store: ServerStore;
  readonly directory: ServerDirectory;
  readonly secrets: ServerSecrets;
  /** Delays repeated failed sign-ins per account and per source (D's SignInThrottle). */
  readonly throttle?: ServerSignInThrottle | undefined;
  readonly clock?: Clock;
  /** How long a user's groups and account state are reused between directory look-ups; default 30 s. */
  readonly directoryCacheMs?: number;
}

type CheckInInput = z.output<typeof CheckInRequestSchema>;
type Revocation = NonNullable<Extract<CheckInReply, { status: 'changed' }>['revokeCredentials']>;

/** What the server knows of a user for one revision. */
interface UserView {
  readonly at: number;
  readonly user: DirectoryUserView | undefined;
  readonly groups: readonly string[];
  /** The directory could not be asked: no revocation, no new envelopes. */
  readonly unreachable: boolean;
}

/**
 * The management API's logic, over one {@link ServerStore}: enrollment, sign-in, check-in,
 * event ingestion and key release. Stateless apart from caches keyed by the store's revision,
 * so any number of processes can serve any endpoint.
 *
 * @example
 * ```ts
 * const service = new ManagementService({ store, directory, secrets: await ServerSecrets.open(dir) });
 * const server = createManagementServer({ service, tls: { key, cert } });
 * ```
 */
export class ManagementService {
  readonly store: ServerStore;
  readonly directory: ServerDirectory;
  readonly secrets: ServerSecrets;
  readonly #throttle: ServerSignInThrottle | undefined;
  readonly #clock: Clock;
  readonly #cacheMs: number;
  #compiled: { revision: number; list: CompiledAssignment[]; keys: Map<string, string> } | undefined;
  readonly #users = new Map<string, UserView>();
  readonly #events: GroupCommit<readonly StoredEvent[], { inserted: number; duplicates: number }>;
  readonly #states: GroupCommit<{ id: string; at: string; state: unknown }, boolean>;
  readonly #nonces: GroupCommit<{ device: string; nonce: string; expiresAt: string }, boolean>;
  /** The one-round-trip check-in write, when the store has it (PostgreSQL). */
  readonly #checkIns: GroupCommit<CheckInWrite, CheckInWriteResult> | undefined;
  /**
   * Enrolled devices' records by id, for their keys only (an id is the hash of its keys, so they
   * never change); user and revocation are read again by every check-in's write.
   */
  readonly #devices = new Map<string, DeviceRecord>();
  /**
   * What request authentication reads and writes: the store's devices, and its nonces through a
   * group commit (the nonces of concurrent requests in one write).
   */
  readonly requestStore: Pick<ServerStore, 'getDevice' | 'useNonce'>;

  constructor(options: ManagementServiceOptions) {
    this.store = options.store;
    this.directory = options.directory;
    this.secrets = options.secrets;
    this.#throttle = options.throttle;
    this.#clock = options.clock ?? systemClock;
    this.#cacheMs = options.directoryCacheMs ?? 30_000;
    const store = this.store;
    this.#events = new GroupCommit({
      many: store.ingestEventGroups ? (groups) => store.ingestEventGroups!(groups) : undefined,
      one: (rows) => store.ingestEvents(rows),
      weigh: (rows) => rows.length,
    });
    this.#states = new GroupCommit({
      many: store.recordCheckIns ? (items) => store.recordCheckIns!(items) : undefined,
      one: (c) => store.recordCheckIn(c.id, c.at, c.state).then(() => true),
    });
    this.#nonces = new GroupCommit({
      many: store.useNonces ? (items) => store.useNonces!(items) : undefined,
      one: (n) => store.useNonce(n.device, n.nonce, n.expiresAt),
    });
    this.#checkIns = store.checkInGroup
      ? new GroupCommit({
          many: (items) => store.checkInGroup!(items),
          one: (item) => store.checkInGroup!([item]).then((r) => r[0]!),
          weigh: (item) => item.events.length + 1,
          key: (item) => item.device,
          // One statement at a time per process: what arrives meanwhile joins the next, larger
          // group. PostgreSQL's cost per check-in falls with the group's size (a fixed cost per
          // statement: 0.8 ms per check-in in groups of 2, 0.44 ms in groups of 16, measured by
          // bench/server-pg-checkin.mjs), and two statements in flight halved the groups.
          inFlight: 1,
        })
      : undefined;
    this.requestStore = {
      getDevice: (id) => store.getDevice(id),
      useNonce: (device, nonce, expiresAt) => this.#nonces.write({ device, nonce, expiresAt }),
    };
  }

  get clock(): Clock {
    return this.#clock;
  }

  /** Forgets cached directory answers (after an admin changes a built-in user or group). */
  forgetUsers(): void {
    this.#users.clear();
  }

  async #signIn(user: string, password: string, source: string): Promise<SignInInfo> {
    const go = (): ReturnType<ServerDirectory['authenticate']> =>
      this.directory.authenticate(user, password, { source });
    let result: Awaited<ReturnType<ServerDirectory['authenticate']>>;
    try {
      result = this.#throttle ? await this.#throttle.attempt(user, { source }, go) : await go();
    } catch (err) {
      if (TandemError.is(err) && err.code === 'TANDEM_AUTH' && typeof err.details['reason'] === 'string') {
        const reason = err.details['reason'];
        const status = reason === 'throttled' ? 429 : reason === 'directory-unreachable' ? 503 : 401;
        throw new ApiError(status, 'TANDEM_AUTH', reason, err.message, { retryable: err.retryable, cause: err });
      }
      if (TandemError.is(err) && err.retryable)
        throw new ApiError(
          503,
          'TANDEM_AUTH',
          'directory-unreachable',
          'The directory cannot be reached, so online sign-in is not possible now; work already signed in continues offline within its lease.',
          { retryable: true, cause: err },
        );
      throw err;
    }
    this.#users.delete(result.user.name);
    return {
      user: result.user.name,
      ...(result.user.displayName !== undefined ? { displayName: result.user.displayName } : {}),
      groups: result.groups.map((g) => g.dn),
      ...(result.passwordExpiresInMs !== undefined
        ? { passwordExpiresInMs: Math.max(0, Math.floor(result.passwordExpiresInMs)) }
        : {}),
      signedInAt: new Date(this.#clock.now()).toISOString(),
    };
  }

  /** Enrolls a device: the request is signed by the key it enrolls, and a user signs in. */
  async enroll(
    body: z.output<typeof EnrollRequestSchema>,
    sig: RequestSignature,
    request: { method: string; path: string; body: Uint8Array; source: string },
  ): Promise<EnrollReply> {
    let id: string;
    try {
      id = devicePublicKeyOf(body.device.sealingKey, body.device.signingKey).deviceId;
    } catch (cause) {
      throw new ApiError(
        400,
        'TANDEM_INVALID_INPUT',
        'bad-device-key',
        'The device keys are not valid X25519 and Ed25519 keys.',
        {
          cause,
        },
      );
    }
    if (id !== sig.device)
      throw new ApiError(
        401,
        'TANDEM_AUTH',
        'bad-signature',
        'The request is signed for another device than the keys it enrolls.',
      );
    await checkSignature(this.requestStore, this.#clock, sig, body.device.signingKey, request);
    const existing = await this.store.getDevice(id);
    if (existing?.revokedAt)
      throw new ApiError(
        403,
        'TANDEM_AUTH',
        'revoked',
        'This device was revoked and cannot enroll again with the same keys; make new device keys (tandem keys device init --replace).',
      );
    const signIn = await this.#signIn(body.user, body.password, request.source);
    const now = new Date(this.#clock.now()).toISOString();
    await this.store.putDevice({
      id,
      sealingKey: body.device.sealingKey,
      signingKey: body.device.signingKey,
      user: signIn.user,
      hostName: body.hostName,
      enrolledAt: existing?.enrolledAt ?? now,
      revokedAt: null,
      lastCheckInAt: existing?.lastCheckInAt ?? null,
      lastState: existing?.lastState,
    });
    await this.#authEvent(id, signIn.user, 'auth.success', 'enroll');
    return { device: id, signIn, authority: this.secrets.authority.publicKey };
  }

  /** Signs a user in on an enrolled device; the device acts for them from now on. */
  async signIn(device: DeviceRecord, body: z.output<typeof SignInRequestSchema>, source: string): Promise<SignInReply> {
    let signIn: SignInInfo;
    try {
      signIn = await this.#signIn(body.user, body.password, source);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401)
        await this.#authEvent(device.id, body.user, 'auth.failure', 'password', err.reason);
      throw err;
    }
    if (signIn.user !== device.user) await this.store.putDevice({ ...device, user: signIn.user });
    await this.#authEvent(device.id, signIn.user, 'auth.success', 'password');
    return { signIn };
  }

  async #authEvent(
    device: string,
    user: string,
    type: 'auth.success' | 'auth.failure',
    method: string,
    reason?: string,
  ): Promise<void> {
    const at = new Date(this.#clock.now()).toISOString();
    const event = {
      id: createHash('sha256')
        .update(`${device}\n${user}\n${type}\n${at}\n${Math.random()}`)
        .digest('hex')
        .slice(0, 32),
      type,
      at,
      workspace: null,
      session: null,
      data: type === 'auth.success' ? { user, method } : { user, method, reason: reason ?? 'refused' },
    } as AnyTandemEvent;
    await this.store.ingestEvents([{ device, user, receivedAt: at, event }]);
  }

  /**
   * Stores events idempotently by id; the events of concurrent requests share one store write
   * (group commit), and the reply waits for it.
   */
  async ingest(device: DeviceRecord, events: readonly WireEvent[]): Promise<EventUploadReply> {
    if (events.length === 0) return { inserted: 0, duplicates: 0 };
    const receivedAt = new Date(this.#clock.now()).toISOString();
    const rows: StoredEvent[] = events.map((event) => ({
      device: device.id,
      user: device.user,
      receivedAt,
      event: event as unknown as AnyTandemEvent,
    }));
    return this.#events.write(rows);
  }

  async #compiledFor(
    known?: number,
  ): Promise<{ list: CompiledAssignment[]; keys: Map<string, string>; revision: number }> {
    const revision = known ?? (await this.store.revision());
    if (this.#compiled?.revision === revision) return this.#compiled;
    const [assignments, layers] = await Promise.all([this.store.listAssignments(), this.store.listPolicyLayers()]);
    const byName = new Map(layers.map((l) => [l.name, l]));
    const list = assignments.map((a) => compileAssignment(a, byName));
    const keys = new Map<string, string>();
    for (const w of new Set(assignments.map((a) => a.workspace))) {
      const k = await this.store.getWorkspaceKey(w);
      if (k) keys.set(w, k.sealedDataKey);
    }
    this.#compiled = { revision, list, keys };
    return this.#compiled;
  }

  async #userView(name: string): Promise<UserView> {
    const now = this.#clock.now();
    const cached = this.#users.get(name);
    if (cached && now - cached.at < this.#cacheMs) return cached;
    let view: UserView;
    try {
      const user = await this.directory.findUser(name);
      const groups = user ? await this.directory.groupsOf(name) : [];
      view = { at: now, user, groups: [...new Set(groups.flatMap((g) => [g.dn, g.name]))], unreachable: false };
    } catch (err) {
      if (!TandemError.is(err) || !err.retryable) throw err;
      view = { at: now, user: cached?.user, groups: cached?.groups ?? [], unreachable: true };
    }
    if (this.#users.size > 10_000) this.#users.clear();
    this.#users.set(name, view);
    return view;
  }

  #revocation(view: UserView, credentialsCachedAt: string | undefined): Revocation | undefined {
    if (view.unreachable) return undefined;
    const u = view.user;
    if (!u) return { reason: 'unknown-user', message: 'The account no longer exists in the directory.' };
    if (u.state.disabled) return { reason: 'disabled', message: `The account ${u.name} was disabled.` };
    if (u.state.locked) return { reason: 'locked', message: `The account ${u.name} is locked.` };
    if (u.state.expired) return { reason: 'expired', message: `The account ${u.name} has expired.` };
    if (
      credentialsCachedAt !== undefined &&
      u.state.passwordChangedAt !== undefined &&
      Date.parse(u.state.passwordChangedAt) > Date.parse(credentialsCachedAt)
    )
      return {
        reason: 'password-changed',
        message: `The password of ${u.name} was changed after this device cached it; sign in again with the new one.`,
      };
    return undefined;
  }

  async #provisioned(device: DeviceRecord, view: UserView, revision?: number) {
    const { list, keys } = await this.#compiledFor(revision);
    const subject: PolicySubject = { user: device.user, groups: view.groups };
    return { items: provisionFor(list, subject, (w) => keys.has(w)), keys };
  }

  /** The workspaces the device's user gets; another user's are refused. */
  async assignments(device: DeviceRecord, user: string | undefined): Promise<AssignmentsReply> {
    this.#sameUser(device, user, 'assignments');
    const view = await this.#userView(device.user);
    const revocation = this.#revocation(view, undefined);
    if (revocation) throw new ApiError(403, 'TANDEM_AUTH', revocation.reason, revocation.message);
    const { items } = await this.#provisioned(device, view);
    return { user: device.user, workspaces: items.map((i) => i.workspace) };
  }

  #sameUser(device: DeviceRecord, user: string | undefined, what: string): void {
    if (user !== undefined && user.toLowerCase() !== device.user.toLowerCase())
      throw new ApiError(
        403,
        'TANDEM_POLICY_DENIED',
        'other-user',
        `This device acts for ${device.user}; it may not fetch the ${what} of ${user}.`,
      );
  }

  async #seal(device: DeviceRecord, w: ProvisionedWorkspace, sealed: string, versions: string) {
    using dataKey = this.secrets.openDataKey(w.workspace, sealed);
    return await this.secrets.authority.seal({
      dataKey,
      device: devicePublicKeyOf(device.sealingKey, device.signingKey),
      imageId: w.workspace,
      versions,
      notAfter: w.lease,
      policySha256: w.policySha256,
    });
  }

  /** An envelope for one workspace, sealed for this device, for its user only. */
  async envelope(device: DeviceRecord, workspace: string, user: string | undefined): Promise<EnvelopeReply> {
    this.#sameUser(device, user, 'envelope');
    const view = await this.#userView(device.user);
    if (view.unreachable)
      throw new ApiError(
        503,
        'TANDEM_AUTH',
        'directory-unreachable',
        'The directory cannot be reached to confirm the account; keys are released again when it is back.',
        { retryable: true },
      );
    const revocation = this.#revocation(view, undefined);
    if (revocation) throw new ApiError(403, 'TANDEM_AUTH', revocation.reason, revocation.message);
    const { items, keys } = await this.#provisioned(device, view);
    const item = items.find((i) => i.workspace.workspace === workspace);
    if (!item)
      throw new ApiError(
        403,
        'TANDEM_POLICY_DENIED',
        'not-assigned',
        `${workspace} is not assigned to ${device.user}; no key is released for it.`,
      );
    const sealed = keys.get(workspace);
    if (sealed === undefined)
      throw new ApiError(404, 'TANDEM_NOT_FOUND', 'not-encrypted', `The server holds no data key for ${workspace}.`);
    const envelope = await this.#seal(device, item.workspace, sealed, item.workspace.version ?? '*');
    const grant = JSON.parse(Buffer.from(envelope.payload, 'base64url').toString('utf8')) as {
      lease: { notAfter: string };
    };
    return { workspace, envelope, notAfter: grant.lease.notAfter };
  }

  async #recordCheckIn(id: string, at: string, state: unknown): Promise<void> {
    if (!(await this.#states.write({ id, at, state }))) throw new NotFoundError(`No enrolled device ${id}.`);
  }

  /**
   * A check-in: stores the events (idempotently), records the state, and answers `unchanged`
   * when the version token still holds and no envelope is due for renewal, else what the
   * device's user gets now.
   */
  async checkIn(device: DeviceRecord, body: CheckInInput): Promise<CheckInReply> {
    const nowMs = this.#clock.now();
    const now = new Date(nowMs).toISOString();
    // Independent reads and writes, at once: the events, the state, the revision, the account.
    const [events, , revision, view] = await Promise.all([
      this.ingest(device, body.events),
      this.#recordCheckIn(device.id, now, checkInState(body)),
      this.store.revision(),
      this.#userView(device.user),
    ]);
    return this.#answer(device, body, revision, view, events, nowMs);
  }

  /**
   * The device of a signed request, its signature and time checked (not its nonce: the caller
   * uses it). With a store that has `checkInGroup` the device's keys come from a per-process
   * cache; otherwise it is read, and refused here when revoked.
   */
  async verify(
    sig: RequestSignature,
    request: { method: string; path: string; body: Uint8Array },
  ): Promise<{ device: DeviceRecord; time: number }> {
    let device = this.#checkIns ? this.#devices.get(sig.device) : undefined;
    if (!device) {
      device = await this.store.getDevice(sig.device);
      if (!device) throw unknownDevice();
      if (this.#checkIns && keysMatch(device)) {
        if (this.#devices.size >= 100_000) this.#devices.clear();
        this.#devices.set(device.id, device);
      }
    }
    const time = verifyRequest(this.#clock, sig, device.signingKey, request);
    return { device, time };
  }

  /**
   * Uses a verified request's nonce and writes its events and check-in: in one grouped store
   * write where the store can, else one write after another. Refuses a replay, an unknown and a
   * revoked device with their typed errors.
   */
  async #write(
    device: DeviceRecord,
    sig: RequestSignature,
    time: number,
    events: readonly WireEvent[],
    checkIn: { at: string; state: unknown } | undefined,
  ): Promise<
    | { fast: true; device: DeviceRecord; revision: number; events: EventUploadReply }
    | { fast: false; device: DeviceRecord }
  > {
    const expiresAt = new Date(time + REQUEST_WINDOW_MS).toISOString();
    if (!this.#checkIns) {
      if (!(await this.requestStore.useNonce(sig.device, sig.nonce, expiresAt))) throw replayed();
      if (device.revokedAt) throw revokedDevice(device.revokedAt);
      return { fast: false, device };
    }
    const receivedAt = new Date(this.#clock.now()).toISOString();
    const r = await this.#checkIns.write({
      device: device.id,
      nonce: sig.nonce,
      expiresAt,
      ...(checkIn ?? {}),
      events: events.map((event) => ({
        device: device.id,
        user: device.user,
        receivedAt,
        event: event as unknown as AnyTandemEvent,
      })),
    });
    if (r.status === 'replayed') throw replayed();
    if (r.status === 'unknown-device') {
      this.#devices.delete(device.id);
      throw unknownDevice();
    }
    if (r.status === 'revoked') throw revokedDevice(r.revokedAt);
    const current = r.user === device.user ? device : { ...device, user: r.user };
    return {
      fast: true,
      device: current,
      revision: r.revision,
      events: { inserted: r.inserted, duplicates: r.duplicates },
    };
  }

  /** A verified check-in (see {@link verify}): its nonce, events and state written, then answered. */
  async checkInVerified(
    device: DeviceRecord,
    sig: RequestSignature,
    time: number,
    body: CheckInInput,
  ): Promise<CheckInReply> {
    const nowMs = this.#clock.now();
    const w = await this.#write(device, sig, time, body.events, {
      at: new Date(nowMs).toISOString(),
      state: checkInState(body),
    });
    if (!w.fast) return this.checkIn(w.device, body);
    const view = await this.#userView(w.device.user);
    return this.#answer(w.device, body, w.revision, view, w.events, nowMs);
  }

  /** A verified event upload (see {@link verify}): its nonce and events written. */
  async ingestVerified(
    device: DeviceRecord,
    sig: RequestSignature,
    time: number,
    events: readonly WireEvent[],
  ): Promise<EventUploadReply> {
    const w = await this.#write(device, sig, time, events, undefined);
    return w.fast ? w.events : this.ingest(w.device, events);
  }

  async #answer(
    device: DeviceRecord,
    body: CheckInInput,
    revision: number,
    view: UserView,
    events: EventUploadReply,
    nowMs: number,
  ): Promise<CheckInReply> {
    const revocation = this.#revocation(view, body.credentialsCachedAt);
    const token = createHash('sha256')
      .update(`${revision}\n${device.user}\n${revocation?.reason ?? ''}\n${view.unreachable ? 'u' : ''}`)
      .digest('base64url')
      .slice(0, 22);
    const due = (e: { issuedAt: string; notAfter: string }): boolean => {
      const a = Date.parse(e.issuedAt);
      const b = Date.parse(e.notAfter);
      return nowMs >= a + (b - a) / 2;
    };
    if (body.token === token && !body.envelopes.some(due)) return { status: 'unchanged', token, events };
    const held = new Set([...body.envelopes.map((e) => e.workspace), ...body.workspaces.map((w) => w.workspace)]);
    if (revocation)
      return {
        status: 'changed',
        token,
        events,
        user: device.user,
        workspaces: [],
        envelopes: [],
        deprovisioned: [...held].sort(),
        revokeCredentials: revocation,
      };
    const { items, keys } = await this.#provisioned(device, view, revision);
    const given = new Set(items.map((i) => i.workspace.workspace));
    const envelopes: { workspace: string; envelope: EnvelopeReply['envelope'] }[] = [];
    if (!view.unreachable)
      for (const { workspace: w } of items) {
        const sealed = keys.get(w.workspace);
        if (sealed === undefined) continue;
        const mine = body.envelopes.find((e) => e.workspace === w.workspace);
        if (mine && !due(mine)) continue;
        envelopes.push({ workspace: w.workspace, envelope: await this.#seal(device, w, sealed, w.version ?? '*') });
      }
    return {
      status: 'changed',
      token,
      events,
      user: device.user,
      workspaces: items.map((i) => i.workspace),
      envelopes,
      deprovisioned: [...held].filter((w) => !given.has(w)).sort(),
    };
  }
}

/** What a check-in records as the device's state. */
function checkInState(body: CheckInInput): unknown {
  return { agentVersion: body.agentVersion ?? null, workspaces: body.workspaces };
}

/** Whether a device record's id is the one its keys give (only then are its keys cached). */
function keysMatch(device: DeviceRecord): boolean {
  try {
    return devicePublicKeyOf(device.sealingKey, device.signingKey).deviceId === device.id;
  } catch {
    return false;
  }
}
