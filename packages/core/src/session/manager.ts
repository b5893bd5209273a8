import type { HypervisorAdapter, VmSpec } from '../adapter/types.js';
import { systemClock, type Clock } from '../clock.js';
import { ConflictError, NotFoundError, InvalidInputError, UnsupportedCapabilityError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { PolicyLayerInput } from '../policy/layers.js';
import type { PolicySubject } from '../policy/types.js';
import type { UsageState } from '../policy/usage.js';
import type { LoadedWorkspace } from '../workspace/load.js';
import type { Workspace } from '../workspace/schema.js';
import { buildVmSpec, vmNameFor } from '../workspace/vm-spec.js';
import { BASELINE_SNAPSHOT, Session, usesEncryptedOverlays } from './session.js';
import { SessionPolicy } from './session-policy.js';
import { sessionStateForVm } from './state-machine.js';
import { definedVm, diffVmSpec, type VmUpdate } from './vm-update.js';

/** Options of {@link SessionManager.open}. */
export interface OpenSessionOptions {
  /** Override the VM name (default `tandem-<workspace name>`). */
  vmName?: string;
  /** Use this disk image instead of the workspace's `image.source` (an installed version, say). */
  diskPath?: string;
  /** Keys for encrypted disks by key id, handed to the hypervisor in memory only. */
  diskKeys?: ReadonlyMap<string, Uint8Array>;
  /** Reuse this session id (the CLI does, across invocations). */
  sessionId?: string;
  /** Attach as locked when the VM is running (a lock outlives the process that took it). */
  locked?: boolean;
  /**
   * A policy engine built for this workspace (from `loadPolicy`, say), used instead of one built
   * from the workspace and the manager's `layers`.
   */
  policy?: PolicyEngine;
  /**
   * The spec the VM was last defined with, when the caller keeps it (the CLI does): fills in what
   * the adapter cannot read back (disks, network) when looking for a pending update.
   */
  definedSpec?: VmSpec;
}

/** Options of {@link SessionManager}. */
export interface SessionManagerOptions {
  adapter: HypervisorAdapter;
  events?: EventBus;
  /** The clock sessions, idle locks and usage decisions read. Default: the system clock. */
  clock?: Clock;
  /**
   * Policy layers above each workspace file's own (machine policy, user policy, local settings),
   * merged by the policy engine into what every session enforces.
   */
  layers?: readonly PolicyLayerInput[];
  /** Whom the sessions are for: the user and their groups. */
  subject?: PolicySubject;
  /** Connectivity as the caller knows it, read at every start. Default: online. */
  usageState?: () => UsageState;
}

/**
 * Opens sessions over one adapter and makes sure two sessions never drive one VM.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({
 *   adapter: new MockAdapter(),
 *   events,
 *   layers: [{ layer: 'machine-policy', policy: { usage: { idleLock: 'PT1M' } } }],
 * });
 * await using session = await manager.open(await loadWorkspaceFile('tandem.workspace.yaml'));
 * await session.start(); // PolicyDeniedError once the workspace has expired
 * ```
 */
export class SessionManager {
  readonly adapter: HypervisorAdapter;
  readonly #events: EventBus | undefined;
  readonly #options: SessionManagerOptions;
  readonly #clock: Clock;
  readonly #byVm = new Map<string, Session>();
  readonly #opening = new Set<string>();
  /** The spec each VM was last defined with by this manager (for what the adapter cannot read back). */
  readonly #defined = new Map<string, VmSpec>();

  constructor(options: SessionManagerOptions) {
    this.adapter = options.adapter;
    this.#events = options.events;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** The usage policy a session of `loaded` enforces under this manager's layers. */
  policyFor(loaded: LoadedWorkspace | Workspace, engine?: PolicyEngine): SessionPolicy {
    const workspace = 'workspace' in loaded ? loaded.workspace : loaded;
    if (engine && engine.workspace.metadata.name !== workspace.metadata.name) {
      throw new InvalidInputError(
        `The policy engine was built for workspace "${engine.workspace.metadata.name}", not "${workspace.metadata.name}".`,
        { details: { engine: engine.workspace.metadata.name, workspace: workspace.metadata.name } },
      );
    }
    const o = this.#options;
    return SessionPolicy.for(workspace, {
      clock: this.#clock,
      ...(engine ? { engine } : {}),
      ...(o.layers ? { layers: o.layers } : {}),
      ...(o.subject ? { subject: o.subject } : {}),
      ...(o.usageState ? { usageState: o.usageState } : {}),
      ...('workspace' in loaded && loaded.file !== '<inline>' ? { workspaceSource: loaded.file } : {}),
    });
  }

  /**
   * Opens a session for a workspace: defines its VM (memory sized by this host's RAM) or, when
   * the VM exists, attaches to it in the state it is in. When the existing VM was defined with
   * other disks, memory, CPUs or network than this workspace version asks for (a new image
   * version, edited hardware), the session carries a {@link Session.pendingUpdate} that its next
   * start applies, and a `session.update-pending` event says what changed. Throws ConflictError
   * when another session already drives that VM.
   */
  async open(source: LoadedWorkspace | Workspace, options: OpenSessionOptions = {}): Promise<Session> {
    const loaded: LoadedWorkspace =
      'workspace' in source ? source : { workspace: source, file: '<inline>', baseDir: process.cwd() };
    const { workspace } = loaded;
    const vm = options.vmName ?? vmNameFor(workspace);
    if (this.#byVm.has(vm) || this.#opening.has(vm)) {
      const holder = this.#byVm.get(vm);
      throw new ConflictError(
        `VM "${vm}" is already driven by session ${holder?.id ?? '(opening)'}; close that session first.`,
        {
          details: { vm, session: holder?.id },
        },
      );
    }
    this.#opening.add(vm);
    try {
      const policy = this.policyFor(loaded, options.policy);
      const existing = (await this.adapter.list()).find((v) => v.name === vm);
      let initial = existing ? sessionStateForVm(existing.state) : 'stopped';
      if (initial === 'running' && options.locked) initial = 'locked';
      const probe = await this.adapter.probe();
      if (!probe.usable) {
        throw new InvalidInputError(`The ${this.adapter.name} adapter is not usable: ${probe.reason}`, {
          details: { probe },
        });
      }
      const spec = buildVmSpec(workspace, {
        hostMemoryMiB: probe.host.memoryMiB,
        baseDir: loaded.baseDir,
        vmName: vm,
        ...(options.diskPath ? { diskPath: options.diskPath } : {}),
      });
      let pendingUpdate: VmUpdate | undefined;
      if (existing) {
        const recorded = options.definedSpec ?? this.#defined.get(vm);
        const changes = diffVmSpec(definedVm(existing, recorded), spec);
        if (changes.length > 0) {
          pendingUpdate = {
            spec,
            fromVersion: existing.labels?.['tandem.version'] ?? recorded?.labels?.['tandem.version'] ?? null,
            toVersion: workspace.metadata.version,
            changes,
          };
        }
      } else {
        // On an encrypted disk with overlays, the untouched base is the baseline: no snapshot.
        const overlays = usesEncryptedOverlays(this.adapter, spec);
        const revertible = policy.settings.mode.value === 'revertible' && !overlays;
        if (revertible && (this.adapter.capabilities.snapshots === false || !this.adapter.snapshots)) {
          throw new UnsupportedCapabilityError(
            `Workspace "${workspace.metadata.name}" is revertible, which needs snapshots, and the ${this.adapter.name} adapter has none. Use another adapter or set usage.mode to persistent.`,
            { details: { workspace: workspace.metadata.name, adapter: this.adapter.name } },
          );
        }
        await this.adapter.define(spec);
        this.#defined.set(vm, spec);
        // The baseline a revertible workspace returns to: the image as delivered, never booted.
        if (revertible)
          await this.adapter.snapshots!.create(vm, {
            name: BASELINE_SNAPSHOT,
            description: 'revertible workspace baseline',
          });
        initial = 'stopped';
      }
      const session = new Session({
        workspace,
        vm,
        adapter: this.adapter,
        initialState: initial,
        policy,
        clock: this.#clock,
        vmSpec: spec,
        onClose: (s) => {
          if (this.#byVm.get(s.vm) === s) this.#byVm.delete(s.vm);
          if (s.vmSpec && !s.pendingUpdate) this.#defined.set(s.vm, s.vmSpec);
        },
        ...(pendingUpdate ? { pendingUpdate } : {}),
        ...(options.sessionId ? { id: options.sessionId } : {}),
        ...(this.#events ? { events: this.#events } : {}),
        ...(options.diskKeys ? { diskKeys: options.diskKeys } : {}),
      });
      this.#byVm.set(vm, session);
      if (pendingUpdate) {
        this.#events?.publish(
          'session.update-pending',
          {
            vm,
            fromVersion: pendingUpdate.fromVersion,
            toVersion: pendingUpdate.toVersion,
            changes: [...pendingUpdate.changes],
          },
          { workspace: workspace.metadata.name, session: session.id },
        );
      }
      return session;
    } finally {
      this.#opening.delete(vm);
    }
  }

  /** The open session with this id. */
  get(id: string): Session {
    for (const s of this.#byVm.values()) if (s.id === id) return s;
    throw new NotFoundError(`No open session with id "${id}".`, { details: { session: id } });
  }

  /** All open sessions. */
  list(): Session[] {
    return [...this.#byVm.values()];
  }

  /** The same as `session.close()`: the VM is left as it is and freed for another session. */
  close(session: Session): Promise<void> {
    return session.close();
  }
}
