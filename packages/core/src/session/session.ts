import { randomBytes } from 'node:crypto';
import { requireCapability, requireSnapshots } from '../adapter/registry.js';
import type { HypervisorAdapter, HypervisorEvent, SnapshotInfo, StartOptions, VmSpec } from '../adapter/types.js';
import { systemClock, type Clock } from '../clock.js';
import { AuthError, InvalidStateError, TandemError, UnsupportedCapabilityError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { SessionTransitionCause, TandemEventMap, TandemEventType } from '../events/types.js';
import { toDecisionEvent } from '../policy/decision.js';
import type { SessionEndAction } from '../policy/usage.js';
import type { Workspace } from '../workspace/schema.js';
import { SessionPolicy } from './session-policy.js';
import { applyVmUpdate, type VmUpdate } from './vm-update.js';
import {
  assertTransition,
  SESSION_TRANSITIONS,
  sessionStateForVm,
  type SessionOperation,
  type SessionState,
} from './state-machine.js';

/** The snapshot a revertible workspace returns to at the end of every session. */
export const BASELINE_SNAPSHOT = 'tandem-baseline';

/**
 * True when `spec` has an encrypted disk and the adapter puts encrypted overlays on such disks:
 * then a revertible workspace and the end-of-session snapshot use an overlay per session instead
 * of the hypervisor's snapshots.
 */
export function usesEncryptedOverlays(adapter: HypervisorAdapter, spec: VmSpec | undefined): boolean {
  return (
    adapter.capabilities.encryptedOverlays === true &&
    adapter.encryptedOverlays !== undefined &&
    (spec?.disks.some((d) => d.encryption !== undefined) ?? false)
  );
}

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
  /** The usage policy the session enforces. Default: the workspace file's own, with no layers above. */
  policy?: SessionPolicy;
  /** Where time comes from (snapshot names, idle lock, watchdog). Default: the system clock. */
  clock?: Clock;
  /** The VM spec this workspace version asks for on this host (SessionManager.open builds it). */
  vmSpec?: VmSpec;
  /** A VM spec change to apply at the next start (SessionManager.open finds these). */
  pendingUpdate?: VmUpdate;
  /** Called once when the session closes (SessionManager frees the VM for another session). */
  onClose?: (session: Session) => void;
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
 * await session.close(); // or: await using session = await manager.open(loaded);
 * ```
 */
export class Session implements AsyncDisposable {
  readonly id: string;
  readonly workspace: Workspace;
  readonly vm: string;
  readonly adapter: HypervisorAdapter;
  /** The usage policy this session enforces: idle lock, end action, expiry, offline limit. */
  readonly policy: SessionPolicy;
  /** The clock the session and its idle lock and watchdog read. */
  readonly clock: Clock;
  /**
   * The VM spec this workspace version asks for on this host. The VM has it once
   * {@link Session.pendingUpdate} is undefined.
   */
  readonly vmSpec: VmSpec | undefined;
  readonly #events: EventBus | undefined;
  readonly #onClose: ((session: Session) => void) | undefined;
  #pendingUpdate: VmUpdate | undefined;
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
    this.clock = init.clock ?? systemClock;
    this.policy = init.policy ?? SessionPolicy.for(init.workspace, { clock: this.clock });
    this.#pendingUpdate = init.pendingUpdate;
    this.vmSpec = init.vmSpec ?? init.pendingUpdate?.spec;
    this.#onClose = init.onClose;
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

  /** True once {@link Session.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The VM spec change waiting for the next start: the session was opened for a workspace
   * version whose disks, memory, CPUs or network differ from the defined VM's.
   */
  get pendingUpdate(): VmUpdate | undefined {
    return this.#pendingUpdate;
  }

  /**
   * Starts the VM. First checks the usage policy (expiry, offline limit): a denied start throws
   * PolicyDeniedError naming the rule and layer, and the VM is not touched. Then applies a
   * {@link Session.pendingUpdate}: the VM is redefined for the new version (snapshots kept where
   * the adapter can redefine in place, else a `session.vm-updated` event names those dropped).
   * `diskKeys` are used for this start instead of the session's own (a watchdog restart releases
   * them again, since those the session was opened with are wiped once that start has them).
   */
  start(options: Pick<StartOptions, 'display' | 'signal' | 'diskKeys'> = {}): Promise<void> {
    const checkPolicy = (): void => {
      const decision = this.policy.decide();
      this.#publish('policy.decision', toDecisionEvent(decision));
      this.policy.assertMayStart();
    };
    return this.#run(
      'start',
      async () => {
        const update = this.#pendingUpdate;
        if (update) {
          // A new image version replaces the disk: an overlay on the old one has nothing to add.
          if (this.#overlayMode()) await this.#discardOverlay();
          const result = await applyVmUpdate(this.adapter, this.vm, update, {
            revertible: this.policy.settings.mode.value === 'revertible',
            baseline: BASELINE_SNAPSHOT,
          });
          this.#pendingUpdate = undefined;
          this.#publish('session.vm-updated', {
            vm: this.vm,
            fromVersion: update.fromVersion,
            toVersion: update.toVersion,
            changes: [...update.changes],
            ...result,
          });
        }
        const { diskKeys: given, ...rest } = options;
        const diskKeys = given ?? this.#diskKeys;
        if (this.#overlayMode() && (await this.adapter.state(this.vm)) !== 'saved')
          await this.#prepareOverlay(diskKeys);
        await this.adapter.start(this.vm, { ...rest, ...(diskKeys ? { diskKeys } : {}) });
        return 'running';
      },
      { precheck: checkPolicy },
    );
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
  lock(reason?: string): Promise<void> {
    return this.#run('lock', async () => 'locked', reason !== undefined ? { reason } : {});
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
   * Ends the session as the layered usage policy says ({@link SessionPolicy.endAction}: the
   * highest layer's `usage.onSessionEnd`): `shutdown` stops the VM; `snapshot` takes a snapshot
   * (`session-end-<time>`) and stops; `suspend` saves the VM to disk (or pauses it); `revert`
   * stops and returns to the baseline. A revertible workspace (`usage.mode: revertible`) always
   * returns to its baseline snapshot, so the next session starts clean. `action` overrides the
   * policy (a usage decision's `onSessionEnd`, say). Returns what was done.
   */
  async end(options: SessionStopOptions & { action?: SessionEndAction } = {}): Promise<SessionEndAction> {
    const action = options.action ?? this.policy.endAction;
    const running = (): boolean => this.#state === 'running' || this.#state === 'locked' || this.#state === 'suspended';
    switch (action) {
      case 'suspend':
        if (this.#state === 'running' || this.#state === 'locked') {
          await this.suspend({ mode: this.adapter.capabilities.suspend.save ? 'save' : 'pause' });
        }
        break;
      case 'snapshot':
        if (this.#overlayMode() === 'keep') {
          // The session's writes are in its encrypted overlay: stopping keeps them there.
          if (running()) await this.stop(options);
          break;
        }
        if (this.#state !== 'crashed') {
          const stamp = new Date(this.clock.now()).toISOString().replace(/[:.]/g, '-');
          await this.snapshot(`session-end-${stamp}`, 'taken at the end of a session');
        }
        if (running()) await this.stop(options);
        break;
      case 'revert':
        if (running()) await this.stop({ force: true, ...options });
        if (this.#overlayMode() === 'discard') await this.#discardOverlay();
        else await this.revert(BASELINE_SNAPSHOT);
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
      if (!(this.#state === 'locked' && next === 'running')) this.#set(next, { operation: 'refresh' });
      return this.#state;
    });
  }

  /**
   * Closes the session: stops listening to the hypervisor and frees the VM for another session
   * (its manager forgets it at once). The VM is left as it is. Further operations throw
   * InvalidStateError; the promise resolves once an operation already in progress has finished.
   * Closing twice does nothing.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#tail.then(() => undefined);
    this.#closed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#onClose?.(this);
    return this.#tail.then(() => undefined);
  }

  /** `await using session = await manager.open(...)` closes the session at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- internals ---

  /**
   * How an encrypted disk keeps or forgets a session's writes, when the adapter has encrypted
   * overlays: `discard` for a revertible workspace, `keep` for `onSessionEnd: snapshot`.
   */
  #overlayMode(): 'discard' | 'keep' | undefined {
    if (!usesEncryptedOverlays(this.adapter, this.vmSpec)) return undefined;
    if (this.policy.settings.mode.value === 'revertible') return 'discard';
    return this.policy.endAction === 'snapshot' ? 'keep' : undefined;
  }

  /**
   * Before a cold start: a revertible session always gets a fresh overlay (one left by a session
   * that never ended is discarded first); a kept overlay is written on again.
   */
  async #prepareOverlay(diskKeys: ReadonlyMap<string, Uint8Array> | undefined): Promise<void> {
    const ops = this.adapter.encryptedOverlays!;
    const on = await ops.list(this.vm);
    if (on.length > 0 && this.#overlayMode() === 'discard') await this.#discardOverlay();
    else if (on.length > 0) return;
    if (!diskKeys) {
      throw new InvalidStateError(
        `VM "${this.vm}" has an encrypted disk and the session has no key for it: open the session with diskKeys.`,
        this.#state,
      );
    }
    await ops.create(this.vm, diskKeys);
  }

  async #discardOverlay(): Promise<void> {
    const removed = await this.adapter.encryptedOverlays!.discard(this.vm);
    if (removed.length > 0) this.#publish('snapshot.reverted', { vm: this.vm, snapshot: BASELINE_SNAPSHOT });
  }

  #serialize<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new InvalidStateError(`Session ${this.id} is closed; open a new session for VM "${this.vm}".`, 'closed'),
      );
    }
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  #run(
    operation: SessionOperation,
    body: (from: SessionState) => Promise<SessionState>,
    extra: { reason?: string; precheck?: () => void } = {},
  ): Promise<void> {
    const { precheck, ...cause } = extra;
    return this.#serialize(async () => {
      assertTransition(this.#state, operation, `session ${this.id}`);
      const from = this.#state;
      const via = SESSION_TRANSITIONS[operation].via;
      try {
        // Checked before the session moves: a refused operation leaves no transition behind.
        precheck?.();
      } catch (err) {
        this.#publishError(operation, err);
        throw err;
      }
      if (via) this.#set(via, { operation });
      try {
        const to = await body(from);
        this.#set(to, { operation, ...cause });
      } catch (err) {
        if (via) this.#set(from, { operation, failed: true });
        this.#publishError(operation, err);
        throw err;
      }
    });
  }

  #publishError(operation: SessionOperation, err: unknown): void {
    this.#publish('session.error', {
      operation,
      vm: this.vm,
      code: TandemError.is(err) ? err.code : 'TANDEM_INTERNAL',
      message: (err as Error).message,
    });
  }

  #set(to: SessionState, cause: { operation: SessionTransitionCause; reason?: string; failed?: boolean }): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#publish('session.transition', { from, to, ...cause, vm: this.vm });
  }

  #onHypervisorEvent(e: HypervisorEvent): void {
    if (this.#closed || e.vm !== this.vm) return;
    this.#publish('vm.state', { vm: e.vm, state: e.state, reason: e.reason, origin: 'hypervisor' });
    const next = sessionStateForVm(e.state);
    // Transient states during our own operations are ours to set; react to the end states.
    if (e.state === 'crashed' || (e.state === 'stopped' && this.#state !== 'stopping' && this.#state !== 'starting')) {
      this.#set(next, { operation: 'hypervisor', reason: e.reason });
    }
  }

  #publish<K extends TandemEventType>(type: K, data: TandemEventMap[K]): void {
    this.#events?.publish(type, data, { workspace: this.workspace.metadata.name, session: this.id });
  }
}
