import { randomBytes } from 'node:crypto';
import { requireCapability, requireSnapshots } from '../adapter/registry.js';
import type { HypervisorAdapter, HypervisorEvent, SnapshotInfo, StartOptions } from '../adapter/types.js';
import { AuthError, TandemError, UnsupportedCapabilityError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { TandemEventMap, TandemEventType } from '../events/types.js';
import type { Workspace } from '../workspace/schema.js';
import {
  assertTransition,
  SESSION_TRANSITIONS,
  sessionStateForVm,
  type SessionOperation,
  type SessionState,
} from './state-machine.js';

/** The snapshot a revertible workspace returns to at the end of every session. */
export const BASELINE_SNAPSHOT = 'tandem-baseline';

/** Options of {@link Session.stop}. */
export interface SessionStopOptions {
  /** Power off without asking the guest. */
  force?: boolean;
  /** How long the guest gets to shut down before it is powered off (default 60 s). */
  timeoutMs?: number;
}

/** Options of {@link Session.suspend}. */
export interface SessionSuspendOptions {
  /** `pause` keeps memory in RAM (default); `save` writes it to disk, when the adapter can. */
  mode?: 'pause' | 'save';
}

/** Everything a session needs; {@link SessionManager.open} builds it. */
export interface SessionInit {
  id?: string;
  workspace: Workspace;
  vm: string;
  adapter: HypervisorAdapter;
  events?: EventBus;
  initialState?: SessionState;
  /** Keys for encrypted disks, handed to the adapter at start, never stored. */
  diskKeys?: ReadonlyMap<string, Uint8Array>;
}

/**
 * One workspace VM, driven through its lifecycle. Operations are serialized: concurrent calls
 * run one after another, each seeing the state the previous one left. Illegal operations throw
 * InvalidStateError naming the current state, and every change of state is an event.
 *
 * @example
 * ```ts
 * const session = await manager.open(loaded);
 * await session.start();
 * await session.snapshot('before-update');
 * await session.suspend();
 * await session.resume();
 * await session.stop();
 * ```
 */
export class Session {
  readonly id: string;
  readonly workspace: Workspace;
  readonly vm: string;
  readonly adapter: HypervisorAdapter;
  readonly #events: EventBus | undefined;
  readonly #diskKeys: ReadonlyMap<string, Uint8Array> | undefined;
  #state: SessionState;
  #lockedBeforeSuspend = false;
  #tail: Promise<unknown> = Promise.resolve();
  #unwatch: (() => void) | undefined;
  #closed = false;

  constructor(init: SessionInit) {
    this.id = init.id ?? `${init.workspace.metadata.name}-${randomBytes(4).toString('hex')}`;
    this.workspace = init.workspace;
    this.vm = init.vm;
    this.adapter = init.adapter;
    this.#events = init.events;
    this.#diskKeys = init.diskKeys;
    this.#state = init.initialState ?? 'stopped';
    this.#unwatch = init.adapter.watch?.((e) => this.#onHypervisorEvent(e));
  }

  /** The current state. */
  get state(): SessionState {
    return this.#state;
  }

  /** True when `operation` is legal now (it may still fail in the hypervisor). */
  can(operation: SessionOperation): boolean {
    return SESSION_TRANSITIONS[operation].from.includes(this.#state);
  }

  /** Starts the VM. */
  start(options: Pick<StartOptions, 'display' | 'signal'> = {}): Promise<void> {
    return this.#run('start', async () => {
      await this.adapter.start(this.vm, { ...options, ...(this.#diskKeys ? { diskKeys: this.#diskKeys } : {}) });
      return 'running';
    });
  }

  /** Stops the VM: gracefully within `timeoutMs`, then powered off; or at once with `force`. */
  stop(options: SessionStopOptions = {}): Promise<void> {
    return this.#run('stop', async (from) => {
      if (from === 'suspended' && (await this.adapter.state(this.vm)) === 'saved') {
        // A saved VM has no running guest to ask: bring it back, then stop it.
        await this.adapter.restore!(this.vm, this.#diskKeys ? { diskKeys: this.#diskKeys } : {});
      }
      await this.adapter.stop(this.vm, {
        force: options.force ?? false,
        timeoutMs: options.timeoutMs ?? 60_000,
        forceAfterTimeout: true,
      });
      this.#lockedBeforeSuspend = false;
      return 'stopped';
    });
  }

  /** Suspends the VM (paused in memory, or saved to disk with `mode: 'save'`). */
  suspend(options: SessionSuspendOptions = {}): Promise<void> {
    return this.#run('suspend', async (from) => {
      if (options.mode === 'save') {
        requireCapability(this.adapter, 'save');
        await this.adapter.save!(this.vm);
      } else {
        await this.adapter.suspend(this.vm);
      }
      this.#lockedBeforeSuspend = from === 'locked';
      return 'suspended';
    });
  }

  /** Resumes a suspended VM. A session that was locked when suspended comes back locked. */
  resume(): Promise<void> {
    return this.#run('resume', async () => {
      const vmState = await this.adapter.state(this.vm);
      if (vmState === 'saved') await this.adapter.restore!(this.vm, this.#diskKeys ? { diskKeys: this.#diskKeys } : {});
      else await this.adapter.resume(this.vm);
      return this.#lockedBeforeSuspend ? 'locked' : 'running';
    });
  }

  /** Locks the session: the VM keeps running, its apps are hidden until {@link Session.unlock}. */
  lock(reason = 'requested'): Promise<void> {
    return this.#run('lock', async () => 'locked', { reason });
  }

  /**
   * Unlocks the session. `verify` (for example a credential check) must resolve true; a false
   * or a throw keeps the session locked.
   */
  unlock(verify?: () => Promise<boolean>): Promise<void> {
    return this.#run('unlock', async () => {
      if (verify && !(await verify())) {
        throw new AuthError('Unlock refused: the credentials were not accepted. The session stays locked.');
      }
      return 'running';
    });
  }

  /** Takes a snapshot (live when the VM runs and the adapter can). */
  snapshot(name: string, description?: string): Promise<SnapshotInfo> {
    let info!: SnapshotInfo;
    return this.#run('snapshot', async (from) => {
      const ops = requireSnapshots(this.adapter);
      if (
        from !== 'stopped' &&
        this.adapter.capabilities.snapshots !== false &&
        !this.adapter.capabilities.snapshots.live
      ) {
        throw new UnsupportedCapabilityError(
          `The ${this.adapter.name} adapter can only snapshot a stopped VM; stop the session first.`,
        );
      }
      info = await ops.create(this.vm, { name, ...(description !== undefined ? { description } : {}) });
      this.#publish('snapshot.created', { vm: this.vm, snapshot: info.name });
      return from;
    }).then(() => info);
  }

  /** The VM's snapshots, flat (see `buildSnapshotTree`). */
  async snapshots(): Promise<SnapshotInfo[]> {
    return requireSnapshots(this.adapter).list(this.vm);
  }

  /** Reverts to a snapshot (id or name); the session takes the state the snapshot restores. */
  revert(snapshot: string): Promise<void> {
    return this.#run('revert', async () => {
      await requireSnapshots(this.adapter).revert(
        this.vm,
        snapshot,
        this.#diskKeys ? { diskKeys: this.#diskKeys } : {},
      );
      this.#publish('snapshot.reverted', { vm: this.vm, snapshot });
      this.#lockedBeforeSuspend = false;
      return sessionStateForVm(await this.adapter.state(this.vm));
    });
  }

  /** Deletes a snapshot, or with `children` its whole subtree. Legal in any state. */
  async deleteSnapshot(snapshot: string, options: { children?: boolean } = {}): Promise<void> {
    await this.#serialize(async () => {
      await requireSnapshots(this.adapter).delete(this.vm, snapshot, options);
      this.#publish('snapshot.deleted', { vm: this.vm, snapshot, children: options.children ?? false });
    });
  }

  /**
   * Ends the session as the workspace's usage policy says (`usage.onSessionEnd`): `shutdown`
   * stops the VM; `snapshot` takes a snapshot (`session-end-<time>`) and stops; `suspend` saves
   * the VM to disk (or pauses it); `revert` stops and returns to the baseline. A revertible
   * workspace (`usage.mode: revertible`) always returns to its baseline snapshot, so the next
   * session starts clean. Returns what was done.
   */
  async end(options: SessionStopOptions = {}): Promise<'shutdown' | 'snapshot' | 'suspend' | 'revert'> {
    const { usage } = this.workspace.spec;
    const action = usage.mode === 'revertible' ? 'revert' : usage.onSessionEnd;
    const running = (): boolean => this.#state === 'running' || this.#state === 'locked' || this.#state === 'suspended';
    switch (action) {
      case 'suspend':
        if (this.#state === 'running' || this.#state === 'locked') {
          await this.suspend({ mode: this.adapter.capabilities.suspend.save ? 'save' : 'pause' });
        }
        break;
      case 'snapshot':
        if (this.#state !== 'crashed') {
          const stamp = new Date().toISOString().replace(/[:.]/g, '-');
          await this.snapshot(`session-end-${stamp}`, 'taken at the end of a session');
        }
        if (running()) await this.stop(options);
        break;
      case 'revert':
        if (running()) await this.stop({ force: true, ...options });
        await this.revert(BASELINE_SNAPSHOT);
        break;
      case 'shutdown':
        if (running()) await this.stop(options);
        break;
    }
    return action;
  }

  /** Re-reads the VM's state from the hypervisor (it may have changed behind Tandem's back). */
  async refresh(): Promise<SessionState> {
    return this.#serialize(async () => {
      const vmState = await this.adapter.state(this.vm);
      const next = sessionStateForVm(vmState);
      // A running VM in a locked session stays locked: the lock lives in the session.
      if (!(this.#state === 'locked' && next === 'running')) this.#set(next, 'refresh');
      return this.#state;
    });
  }

  /** Stops listening to the hypervisor. The VM is left as it is. */
  close(): void {
    this.#closed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  // --- internals ---

  #serialize<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  #run(
    operation: SessionOperation,
    body: (from: SessionState) => Promise<SessionState>,
    extra: { reason?: string } = {},
  ): Promise<void> {
    return this.#serialize(async () => {
      assertTransition(this.#state, operation, `session ${this.id}`);
      const from = this.#state;
      const via = SESSION_TRANSITIONS[operation].via;
      if (via) this.#set(via, operation);
      try {
        const to = await body(from);
        this.#set(to, operation, extra.reason);
      } catch (err) {
        if (via) this.#set(from, `${operation} failed`);
        this.#publish('session.error', {
          operation,
          vm: this.vm,
          code: TandemError.is(err) ? err.code : 'TANDEM_INTERNAL',
          message: (err as Error).message,
        });
        throw err;
      }
    });
  }

  #set(to: SessionState, operation: string, reason?: string): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#publish('session.transition', {
      from,
      to,
      operation: reason ? `${operation}: ${reason}` : operation,
      vm: this.vm,
    });
  }

  #onHypervisorEvent(e: HypervisorEvent): void {
    if (this.#closed || e.vm !== this.vm) return;
    this.#publish('vm.state', { vm: e.vm, state: e.state, reason: e.reason, origin: 'hypervisor' });
    const next = sessionStateForVm(e.state);
    // Transient states during our own operations are ours to set; react to the end states.
    if (e.state === 'crashed' || (e.state === 'stopped' && this.#state !== 'stopping' && this.#state !== 'starting')) {
      this.#set(next, `hypervisor: ${e.reason}`);
    }
  }

  #publish<K extends TandemEventType>(type: K, data: TandemEventMap[K]): void {
    this.#events?.publish(type, data, { workspace: this.workspace.metadata.name, session: this.id });
  }
}
