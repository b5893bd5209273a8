import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import {
  AuthError,
  EventBus,
  InvalidInputError,
  SessionManager,
  SqliteEventSink,
  systemClock,
  UnsupportedCapabilityError,
  loadWorkspaceFile,
  vmNameFor,
  type AnyTandemEvent,
  type Clock,
  type DiskKeyRelease,
  type HypervisorAdapter,
  type LoadedWorkspace,
  type Session,
  type SessionEndAction,
  type SnapshotInfo,
} from '@tandem/core';
import { FreedesktopLaunchers } from '@tandem/core/publishing';
import { DiskEventQueue } from './event-queue.js';
import { GuestSignOn, type GuestSignOnOptions } from './guest-sign-in.js';
import { isEncrypted, loadedOf, openedRecord, policyFor, recordAfter } from './session-record.js';
import { StateDir, type SessionRecord } from './state-dir.js';
import { EventShipper, type EventShipperOptions, type EventUplink, type ShipperStatus } from './uplink.js';

/** Opens an adapter by name and options, as the CLI does (`openAdapter`). */
export type AdapterOpener = (
  name: string | undefined,
  options: Record<string, string>,
) => Promise<{ adapter: HypervisorAdapter; name: string }>;

/** User activity reported to the agent (by the desktop monitor, or a client through `activity`). */
export interface ActivityReport {
  /** Who saw it: `dbus`, `tray`, `api`, ... */
  source: string;
  /** Only this workspace's session; all sessions when absent. */
  workspace?: string;
  /** `true` reports the user went idle (a screensaver came on), else they were active. */
  idle?: boolean;
  /** When, as epoch milliseconds on the agent's clock. */
  at: number;
}

/** What an enforcement (engineer B's `SessionEnforcer`, say) does for one attached session. */
export interface SessionEnforcement {
  /**
   * Checks before a start or resume, and before `up` attaches to a VM that already runs (another
   * user's VM, the lease, expiry); throws to refuse. `takeOver`: this user confirmed shutting
   * down another host user's session of the VM (`tandem up|resume --take-over`).
   */
  beforeStart?(options?: { takeOver?: boolean }): Promise<void>;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
  activity?(report: ActivityReport): void;
  /** Unlocks after checking the user's password; without it the agent unlocks on request. */
  unlock?(password: string): Promise<void>;
}

/** Builds the enforcement of a session when the agent attaches it. */
export type EnforcementFactory = (context: {
  session: Session;
  loaded: LoadedWorkspace;
  record: SessionRecord;
  events: EventBus;
  clock: Clock;
  /**
   * For an encrypted workspace, when the agent releases keys ({@link HostAgentOptions.diskKeys}):
   * releases them again (the envelope and its lease checked again) for a start the agent did not
   * ask for, such as the watchdog's restart. The caller disposes of what it returns.
   */
  diskKeys?: () => Promise<DiskKeyRelease | undefined>;
  /**
   * Runs `fn` under the lock the agent's session commands take for this workspace (its
   * per-workspace queue and the VM's lock file): what a start the agent did not ask for, such as
   * the watchdog's restart, runs in, so that it never interleaves with the user's `stop`,
   * `down` or `up` of the same workspace.
   */
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>;
}) => SessionEnforcement | undefined;

/** Options of {@link HostAgent}. */
export interface HostAgentOptions {
  /** The private state directory (the CLI's: sessions/, events.sqlite, locks/). */
  stateDir: string;
  openAdapter: AdapterOpener;
  /** Default: the system clock. */
  clock?: Clock;
  /** Where events go; the agent attaches its queue and the SQLite store to it. Default: a new bus. */
  events?: EventBus;
  /** Ship events to a management server through this uplink (queued on disk first). */
  uplink?: EventUplink;
  shipper?: Omit<EventShipperOptions, 'queue' | 'uplink' | 'clock'>;
  enforcement?: EnforcementFactory;
  /**
   * Releases an encrypted workspace's disk keys for a start or resume (the CLI passes its envelope
   * check: the state directory's envelope, the device key, the lease and trusted time). The keys
   * stay in memory and are wiped once the VM has them. Without it, encrypted workspaces are
   * refused by the agent (the CLI then runs them in-process). The watchdog's restart of a
   * crashed encrypted VM releases them again the same way (a lease that ended refuses it).
   */
  diskKeys?: (record: Pick<SessionRecord, 'spec' | 'file'>) => Promise<DiskKeyRelease | undefined>;
  /** The agent's own version, for `status`. */
  version?: string;
  /** Told of problems the agent works around (a VM that could not be re-attached, an uplink failure). */
  log?: (line: string) => void;
  /** Settings of the single sign-on into guests ({@link GuestSignOn}). */
  guestSignOn?: Omit<GuestSignOnOptions, 'events' | 'clock' | 'log'>;
}

/** One session as the API reports it. */
export interface SessionSummary {
  workspace: string;
  version: string;
  session: string;
  adapter: string;
  vm: string;
  state: string;
  file: string;
  attached: boolean;
  pendingUpdate?: SessionRecord['pendingUpdate'];
}

/** The agent's own state, for `tandem agent status`. */
export interface AgentStatus {
  version: string;
  pid: number;
  uid: number;
  startedAt: string;
  stateDir: string;
  sessions: number;
  attached: number;
  queue: ShipperStatus | null;
}

interface Attached {
  session: Session;
  /** The record's updatedAt as the agent last wrote or read it: a newer one was written by an in-process CLI. */
  stamp: string;
  adapterKey: string;
  enforcement: SessionEnforcement | undefined;
}

interface OpenAdapter {
  adapter: HypervisorAdapter;
  name: string;
  manager: SessionManager;
}

/**
 * The host agent: one per host user. It owns the sessions (attached to their VMs for as long as it
 * runs), records them in the state directory the CLI shares (every write atomic and durable), puts
 * every event in the local store and, with an uplink, in a queue on disk that it ships. Started
 * again after a crash it re-reads the records and re-attaches to each VM in the state the
 * hypervisor reports, never starting or stopping one.
 *
 * @example
 * ```ts
 * const agent = new HostAgent({ stateDir, openAdapter: async () => ({ adapter: new MockAdapter(), name: 'mock' }) });
 * await agent.start();
 * await agent.up({ file: 'tandem.workspace.yaml', adapter: 'mock' });
 * await agent.lock({ workspace: 'legacy-erp' });
 * await agent.close(); // the VMs keep running
 * ```
 */
export class HostAgent {
  readonly state: StateDir;
  readonly events: EventBus;
  readonly clock: Clock;
  readonly version: string;
  /** Single sign-on into guests: the credentials handed by `credentials.hold`, in memory only. */
  readonly signOn: GuestSignOn;
  readonly #o: HostAgentOptions;
  readonly #attached = new Map<string, Attached>();
  readonly #adapters = new Map<string, Promise<OpenAdapter>>();
  readonly #serial = new Map<string, Promise<unknown>>();
  readonly #activity = new Set<(report: ActivityReport) => void>();
  readonly #startedAt: number;
  #store: SqliteEventSink | undefined;
  #queue: DiskEventQueue | undefined;
  #shipper: EventShipper | undefined;
  #detach: (() => void)[] = [];
  #closed = false;

  constructor(options: HostAgentOptions) {
    this.#o = options;
    this.state = new StateDir(resolve(options.stateDir));
    this.clock = options.clock ?? systemClock;
    this.events = options.events ?? new EventBus({ clock: this.clock });
    this.version = options.version ?? '0.0.0';
    this.signOn = new GuestSignOn({
      events: this.events,
      clock: this.clock,
      software: { name: '@tandem/agent', version: this.version },
      ...(options.log ? { log: options.log } : {}),
      ...options.guestSignOn,
    });
    this.#startedAt = Date.now();
  }

  /** The event store (SQLite in the state directory); open once {@link start} ran. */
  get store(): SqliteEventSink {
    if (!this.#store) throw new InvalidInputError('The agent has not started.');
    return this.#store;
  }

  /** The uplink queue, when an uplink is configured. */
  get queue(): DiskEventQueue | undefined {
    return this.#queue;
  }

  /** The shipper, when an uplink is configured. */
  get shipper(): EventShipper | undefined {
    return this.#shipper;
  }

  /** Opens the store and the queue, re-attaches every recorded session, starts shipping. */
  async start(): Promise<void> {
    mkdirSync(this.state.root, { recursive: true, mode: 0o700 });
    // The queue first: an event the local store has is then always queued as well.
    if (this.#o.uplink) {
      this.#queue = new DiskEventQueue(join(this.state.root, 'uplink'));
      this.#detach.push(this.events.attach(this.#queue));
    }
    this.#store = new SqliteEventSink(this.state.eventsFile);
    this.#detach.push(this.events.attach(this.#store));
    if (this.#queue && this.#o.uplink) {
      const shipper = new EventShipper({
        queue: this.#queue,
        uplink: this.#o.uplink,
        clock: this.clock,
        onError: (err, attempt, delay) =>
          this.#o.log?.(`uplink: ${err.message} (attempt ${attempt}, next in ${Math.round(delay / 1000)} s)`),
        ...this.#o.shipper,
      });
      this.#shipper = shipper;
      const wake = (): void => shipper.wake();
      this.events.on('*', wake);
      this.#detach.push(() => this.events.off('*', wake));
      shipper.start();
    }
    // A transition the agent did not ask for through an operation (an idle lock, a watchdog
    // restart, a crash) is recorded at once, so a restart finds the session as it was.
    const onTransition = (e: AnyTandemEvent): void => {
      if (e.type !== 'session.transition' || !e.workspace) return;
      const a = this.#attached.get(e.workspace);
      const record = this.state.find(e.workspace);
      if (!a || !record || a.session.id !== e.session || record.state === a.session.state) return;
      this.#save(recordAfter(record, a.session));
    };
    this.events.on('*', onTransition);
    this.#detach.push(() => this.events.off('*', onTransition));
    for (const record of this.state.list()) {
      try {
        await this.#serialized(record.workspace, () => this.#attach(record));
      } catch (err) {
        this.#o.log?.(`could not re-attach ${record.workspace}: ${(err as Error).message}`);
      }
    }
  }

  /** Listens to user activity reports (what `activity` requests and the desktop monitor feed). */
  onActivity(listener: (report: ActivityReport) => void): () => void {
    this.#activity.add(listener);
    return () => this.#activity.delete(listener);
  }

  /** Reports user activity to every listener and to the sessions' enforcement. */
  activity(report: Omit<ActivityReport, 'at'> & { at?: number }): ActivityReport {
    const full: ActivityReport = { ...report, at: report.at ?? this.clock.now() };
    if (full.workspace && !this.state.find(full.workspace)) {
      throw new InvalidInputError(`No session for workspace "${full.workspace}".`, {
        details: { workspace: full.workspace },
      });
    }
    for (const l of this.#activity) l(full);
    for (const [ws, a] of this.#attached) if (!full.workspace || full.workspace === ws) a.enforcement?.activity?.(full);
    return full;
  }

  /** The attached session of a workspace, if any (for enforcement and tests). */
  session(workspace: string): Session | undefined {
    return this.#attached.get(workspace)?.session;
  }

  status(): AgentStatus {
    return {
      version: this.version,
      pid: process.pid,
      uid: process.getuid?.() ?? -1,
      startedAt: new Date(this.#startedAt).toISOString(),
      stateDir: this.state.root,
      sessions: this.state.list().length,
      attached: this.#attached.size,
      queue: this.#shipper ? this.#shipper.status : null,
    };
  }

  /** Every recorded session with its VM's live state. */
  async sessions(): Promise<SessionSummary[]> {
    const out: SessionSummary[] = [];
    for (const record of this.state.list()) {
      let state: string;
      let attached = false;
      let pending = record.pendingUpdate;
      try {
        state = await this.#serialized(record.workspace, async () => {
          const a = await this.#attach(record);
          attached = true;
          const s = await a.session.refresh();
          this.#save(recordAfter(record, a.session));
          pending = this.state.find(record.workspace)?.pendingUpdate;
          return s;
        });
      } catch (err) {
        state = `unknown (${(err as Error).message.split('\n')[0]})`;
      }
      out.push({
        workspace: record.workspace,
        version: record.spec.metadata.version,
        session: record.id,
        adapter: record.adapter.name,
        vm: record.vm,
        state,
        file: record.file,
        attached,
        ...(pending ? { pendingUpdate: pending } : {}),
      });
    }
    return out;
  }

  /** Opens (or re-opens) the session of a workspace file and starts it, as `tandem up` does. */
  async up(params: {
    file: string;
    adapter?: string;
    adapterOptions?: Record<string, string>;
    layers?: string[];
    start?: boolean;
    /** This user confirmed shutting down another host user's session of the VM. */
    takeOver?: boolean;
  }): Promise<SessionSummary> {
    const loaded = await loadWorkspaceFile(params.file);
    const name = loaded.workspace.metadata.name;
    if (isEncrypted(loaded.workspace) && !this.#o.diskKeys) {
      throw new UnsupportedCapabilityError(
        `Workspace "${name}" is encrypted and this agent releases no disk keys (started without a key provider); run tandem up without the agent.`,
        { details: { workspace: name } },
      );
    }
    return this.#serialized(name, async () => {
      const existing = this.state.find(name);
      if (existing && params.adapter && existing.adapter.name !== params.adapter) {
        throw new InvalidInputError(
          `Workspace "${name}" already has a session on the ${existing.adapter.name} adapter; run "tandem down ${name}" first to move it to ${params.adapter}.`,
          { details: { workspace: name, adapter: existing.adapter.name } },
        );
      }
      const layers = params.layers?.length ? params.layers.map((l) => resolve(l)) : (existing?.layers ?? []);
      const adapterOptions =
        existing && !params.adapterOptions ? existing.adapter.options : (params.adapterOptions ?? {});
      const vm = existing?.vm ?? vmNameFor(loaded.workspace);
      // A new workspace version re-opens the session (the VM spec may have changed).
      await this.#detachSession(name);
      return this.state.withVmLock(vm, async () => {
        const opened = await this.#adapter(params.adapter ?? existing?.adapter.name, adapterOptions);
        // An encrypted image's key, released for this start only (envelope, lease, trusted time).
        using keys =
          params.start !== false && isEncrypted(loaded.workspace)
            ? await this.#o.diskKeys?.({ spec: loaded.workspace, file: loaded.file })
            : undefined;
        const session = await opened.manager.open(loaded, {
          vmName: vm,
          ...(keys ? { diskKeys: keys.diskKeys } : {}),
          policy: await policyFor(loaded, layers),
          ...(existing ? { sessionId: existing.id, locked: existing.state === 'locked' } : {}),
          ...(existing?.vmSpec ? { definedSpec: existing.vmSpec } : {}),
        });
        let record: SessionRecord = openedRecord({
          session,
          loaded,
          workspace: name,
          vm,
          adapter: { name: opened.name, options: adapterOptions },
          layers,
          existing,
        });
        this.state.save(record);
        this.#keep(name, session, adapterKey(opened.name, adapterOptions), loaded, record);
        try {
          // Before a start, and before attaching to a VM that runs: it may be another host user's.
          const starts = params.start !== false && session.can('start');
          if (starts || session.state !== 'stopped')
            await this.#attached.get(name)?.enforcement?.beforeStart?.({ takeOver: params.takeOver ?? false });
          // A takeover powers the other user's session off: then it starts for this user.
          if (params.start !== false && session.can('start')) await session.start();
        } finally {
          record = recordAfter(record, session);
          this.#save(record);
        }
        return summary(record, true);
      });
    });
  }

  /** Powers the VM off, removes its definition (disks kept) and forgets the session, as `tandem down`. */
  async down(params: {
    workspace?: string;
  }): Promise<{ workspace: string; session: string; launchersRemoved: string[] }> {
    const record = this.state.resolve(params.workspace);
    return this.#serialized(record.workspace, async () => {
      await this.signOn.detach(record.workspace, { ended: true });
      await this.#detachSession(record.workspace);
      await this.state.withVmLock(record.vm, async () => {
        const { adapter } = await this.#adapter(record.adapter.name, record.adapter.options);
        if ((await adapter.list()).some((v) => v.name === record.vm)) await adapter.destroy(record.vm);
      });
      this.state.remove(record.workspace);
      const launchers = new FreedesktopLaunchers().remove(record.workspace);
      return { workspace: record.workspace, session: record.id, launchersRemoved: [...launchers.removed] };
    });
  }

  stop(p: { workspace?: string; force?: boolean; timeoutMs?: number }): Promise<SessionSummary> {
    return this.#op(p.workspace, (s) => s.stop({ force: p.force ?? false, timeoutMs: p.timeoutMs ?? 60_000 }));
  }

  suspend(p: { workspace?: string; mode?: 'pause' | 'save' }): Promise<SessionSummary> {
    return this.#op(p.workspace, (s) => s.suspend({ mode: p.mode ?? 'pause' }));
  }

  resume(p: { workspace?: string; takeOver?: boolean }): Promise<SessionSummary> {
    return this.#op(
      p.workspace,
      async (s, a) => {
        await a.enforcement?.beforeStart?.({ takeOver: p.takeOver ?? false });
        // A takeover powered the other user's session off: it starts afresh for this user.
        if (s.state === 'stopped') await s.start();
        else await s.resume();
      },
      { needsKeys: true },
    );
  }

  async end(p: { workspace?: string; timeoutMs?: number }): Promise<SessionSummary & { action: SessionEndAction }> {
    let action: SessionEndAction | undefined;
    const s = await this.#op(p.workspace, async (session) => {
      action = await session.end({ timeoutMs: p.timeoutMs ?? 60_000 });
    });
    return { ...s, action: action! };
  }

  lock(p: { workspace?: string; reason?: string }): Promise<SessionSummary> {
    return this.#op(p.workspace, (s) => s.lock(p.reason ?? 'locked through the agent'));
  }

  /**
   * Unlocks. With enforcement that checks credentials (the default of `tandem agent run`), the
   * user's password is required and checked, with a growing delay after failures.
   */
  unlock(p: { workspace?: string; password?: string }): Promise<SessionSummary> {
    return this.#op(p.workspace, async (s, a) => {
      if (a.enforcement?.unlock) {
        if (p.password === undefined) {
          throw new AuthError(
            `Unlocking ${s.workspace.metadata.name} needs your password (tandem unlock --password-stdin).`,
            {
              details: { workspace: s.workspace.metadata.name },
            },
          );
        }
        await a.enforcement.unlock(p.password);
        // The password was checked: it signs the user in to guests that ask (once per guest boot).
        this.holdCredentials({
          user: this.signOn.heldUser ?? userInfo().username,
          password: p.password,
          source: 'unlock',
        });
      } else await s.unlock();
    });
  }

  /**
   * Holds the credentials the user signed in with (`tandem login`, an unlock) in memory, for the
   * single sign-on into the guests of workspaces with `spec.guestSignIn` ({@link GuestSignOn}).
   */
  holdCredentials(p: { user: string; password: string; domain?: string; source?: string }): {
    held: true;
    user: string;
  } {
    // The buffer is the sign-on's from here: it zeroes it when it wipes the credentials.
    const password = Buffer.from(p.password, 'utf8');
    try {
      this.signOn.hold({ user: p.user, password, domain: p.domain, source: p.source ?? 'api' });
    } catch (err) {
      password.fill(0);
      throw err;
    }
    return { held: true, user: p.user };
  }

  async snapshotCreate(p: { workspace?: string; name: string; description?: string }): Promise<SnapshotInfo> {
    let info: SnapshotInfo | undefined;
    await this.#op(p.workspace, async (s) => void (info = await s.snapshot(p.name, p.description)));
    return info!;
  }

  async snapshotList(p: { workspace?: string }): Promise<SnapshotInfo[]> {
    let list: SnapshotInfo[] = [];
    await this.#op(p.workspace, async (s) => void (list = await s.snapshots()));
    return list;
  }

  snapshotRevert(p: { workspace?: string; snapshot: string }): Promise<SessionSummary> {
    return this.#op(p.workspace, (s) => s.revert(p.snapshot));
  }

  snapshotDelete(p: { workspace?: string; snapshot: string; children?: boolean }): Promise<SessionSummary> {
    return this.#op(p.workspace, (s) => s.deleteSnapshot(p.snapshot, { children: p.children ?? false }));
  }

  /** Events in the local store after `since` (a time) or after the event `afterId`. */
  replay(query: { since?: string; afterId?: string; types?: readonly string[]; workspace?: string }): AnyTandemEvent[] {
    const all = this.store.query({
      ...(query.since ? { since: query.since } : {}),
      ...(query.workspace ? { workspace: query.workspace } : {}),
    });
    let from = 0;
    if (query.afterId) {
      const i = all.findIndex((e) => e.id === query.afterId);
      from = i + 1;
    }
    const types = query.types ? new Set(query.types) : undefined;
    return all.slice(from).filter((e) => !types || types.has(e.type));
  }

  /**
   * Stops the agent: enforcement stops, sessions close (their VMs are left as they are), the
   * shipper stops (what it had not shipped stays queued), the store closes.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.signOn.close();
    for (const ws of [...this.#attached.keys()]) await this.#detachSession(ws);
    await this.#shipper?.stop();
    for (const d of this.#detach.splice(0)) d();
    for (const p of this.#adapters.values()) {
      const a = await p.catch(() => undefined);
      await a?.adapter.close?.();
    }
    this.#queue?.close();
    this.#store?.close();
  }

  // --- internals ---

  async #op(
    workspace: string | undefined,
    fn: (s: Session, a: Attached) => Promise<unknown>,
    options: { needsKeys?: boolean } = {},
  ): Promise<SessionSummary> {
    const record = this.state.resolve(workspace);
    const encrypted = options.needsKeys === true && isEncrypted(record.spec);
    if (encrypted && !this.#o.diskKeys) {
      throw new UnsupportedCapabilityError(
        `Workspace "${record.workspace}" is encrypted and this agent releases no disk keys (started without a key provider); run the command without the agent.`,
        { details: { workspace: record.workspace } },
      );
    }
    return this.#serialized(record.workspace, () =>
      this.state.withVmLock(record.vm, async () => {
        // The key is released again (its lease checked) for each start or resume, then wiped.
        using keys = encrypted ? await this.#o.diskKeys?.(record) : undefined;
        const a = await this.#attach(record, keys?.diskKeys);
        try {
          await fn(a.session, a);
        } finally {
          this.#save(recordAfter(this.state.find(record.workspace) ?? record, a.session));
        }
        return summary(this.state.find(record.workspace) ?? record, true);
      }),
    );
  }

  /** The attached session of a record, attaching it (to the VM in whatever state it is) if needed. */
  async #attach(record: SessionRecord, diskKeys?: ReadonlyMap<string, Uint8Array>): Promise<Attached> {
    const have = this.#attached.get(record.workspace);
    // A record written since by someone else (the CLI in-process) means the session is re-read;
    // disk keys for this operation mean it is opened again with them.
    if (!diskKeys && have && !have.session.closed && have.session.id === record.id && have.stamp === record.updatedAt)
      return have;
    if (have) await this.#detachSession(record.workspace);
    const opened = await this.#adapter(record.adapter.name, record.adapter.options);
    const loaded = loadedOf(record);
    // Attach only: a VM that is gone is reported, not defined again behind the user's back.
    if (!(await opened.adapter.list()).some((v) => v.name === record.vm)) {
      throw new InvalidInputError(
        `The VM "${record.vm}" of workspace "${record.workspace}" is not on the ${record.adapter.name} hypervisor any more; run tandem up again or tandem down.`,
        { details: { workspace: record.workspace, vm: record.vm } },
      );
    }
    const session = await opened.manager.open(loaded, {
      vmName: record.vm,
      sessionId: record.id,
      locked: record.state === 'locked',
      policy: await policyFor(loaded, record.layers),
      ...(record.vmSpec ? { definedSpec: record.vmSpec } : {}),
      ...(diskKeys ? { diskKeys } : {}),
    });
    return this.#keep(
      record.workspace,
      session,
      adapterKey(record.adapter.name, record.adapter.options),
      loaded,
      record,
    );
  }

  #keep(workspace: string, session: Session, key: string, loaded: LoadedWorkspace, record: SessionRecord): Attached {
    const release = this.#o.diskKeys;
    const enforcement = this.#o.enforcement?.({
      session,
      loaded,
      record,
      events: this.events,
      clock: this.clock,
      exclusive: (fn) => this.#serialized(workspace, () => this.state.withVmLock(record.vm, fn)),
      ...(release && isEncrypted(loaded.workspace)
        ? { diskKeys: () => release({ spec: loaded.workspace, file: loaded.file }) }
        : {}),
    });
    const a: Attached = { session, adapterKey: key, enforcement, stamp: record.updatedAt };
    this.#attached.set(workspace, a);
    this.signOn.attach(workspace, session);
    if (enforcement) {
      Promise.resolve(enforcement.start()).catch((err: unknown) =>
        this.#o.log?.(`enforcement of ${workspace} failed to start: ${(err as Error).message}`),
      );
    }
    return a;
  }

  /** Saves a record (atomically, durably) and remembers that this agent wrote it. */
  #save(record: SessionRecord): void {
    this.state.save(record);
    const a = this.#attached.get(record.workspace);
    if (a) a.stamp = record.updatedAt;
  }

  async #detachSession(workspace: string): Promise<void> {
    const a = this.#attached.get(workspace);
    if (!a) return;
    this.#attached.delete(workspace);
    await this.signOn.detach(workspace);
    await Promise.resolve(a.enforcement?.stop()).catch(() => undefined);
    await a.session.close();
  }

  #adapter(name: string | undefined, options: Record<string, string>): Promise<OpenAdapter> {
    const key = adapterKey(name ?? '', options);
    let p = this.#adapters.get(key);
    if (!p) {
      p = this.#o.openAdapter(name, options).then(({ adapter, name: resolved }) => ({
        adapter,
        name: resolved,
        manager: new SessionManager({ adapter, events: this.events, clock: this.clock }),
      }));
      p.catch(() => this.#adapters.delete(key));
      this.#adapters.set(key, p);
    }
    return p;
  }

  /** Runs operations on one workspace one at a time, in the order they arrived. */
  #serialized<T>(workspace: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#serial.get(workspace) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#serial.set(workspace, tail);
    void tail.then(() => {
      if (this.#serial.get(workspace) === tail) this.#serial.delete(workspace);
    });
    return next;
  }
}

function adapterKey(name: string, options: Record<string, string>): string {
  return JSON.stringify([name, Object.entries(options).sort()]);
}

function summary(record: SessionRecord, attached: boolean): SessionSummary {
  return {
    workspace: record.workspace,
    version: record.spec.metadata.version,
    session: record.id,
    adapter: record.adapter.name,
    vm: record.vm,
    state: record.state,
    file: record.file,
    attached,
    ...(record.pendingUpdate ? { pendingUpdate: record.pendingUpdate } : {}),
  };
}
