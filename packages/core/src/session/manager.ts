import type { HypervisorAdapter } from '../adapter/types.js';
import { ConflictError, NotFoundError, InvalidInputError, UnsupportedCapabilityError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { LoadedWorkspace } from '../workspace/load.js';
import type { Workspace } from '../workspace/schema.js';
import { buildVmSpec, vmNameFor } from '../workspace/vm-spec.js';
import { BASELINE_SNAPSHOT, Session } from './session.js';
import { sessionStateForVm } from './state-machine.js';

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
}

/**
 * Opens sessions over one adapter and makes sure two sessions never drive one VM.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({ adapter: new MockAdapter(), events });
 * const session = await manager.open(await loadWorkspaceFile('tandem.workspace.yaml'));
 * ```
 */
export class SessionManager {
  readonly adapter: HypervisorAdapter;
  readonly #events: EventBus | undefined;
  readonly #byVm = new Map<string, Session>();
  readonly #opening = new Set<string>();

  constructor(options: { adapter: HypervisorAdapter; events?: EventBus }) {
    this.adapter = options.adapter;
    this.#events = options.events;
  }

  /**
   * Opens a session for a workspace: defines its VM (memory sized by this host's RAM) or, when
   * the VM exists, attaches to it in the state it is in. Throws ConflictError when another
   * session already drives that VM.
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
      const existing = (await this.adapter.list()).find((v) => v.name === vm);
      let initial = existing ? sessionStateForVm(existing.state) : 'stopped';
      if (initial === 'running' && options.locked) initial = 'locked';
      if (!existing) {
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
        const revertible = workspace.spec.usage.mode === 'revertible';
        if (revertible && (this.adapter.capabilities.snapshots === false || !this.adapter.snapshots)) {
          throw new UnsupportedCapabilityError(
            `Workspace "${workspace.metadata.name}" is revertible, which needs snapshots, and the ${this.adapter.name} adapter has none. Use another adapter or set usage.mode to persistent.`,
            { details: { workspace: workspace.metadata.name, adapter: this.adapter.name } },
          );
        }
        await this.adapter.define(spec);
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
        ...(options.sessionId ? { id: options.sessionId } : {}),
        ...(this.#events ? { events: this.#events } : {}),
        ...(options.diskKeys ? { diskKeys: options.diskKeys } : {}),
      });
      this.#byVm.set(vm, session);
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

  /** Closes a session (the VM is left as it is), freeing its VM for another session. */
  close(session: Session): void {
    session.close();
    if (this.#byVm.get(session.vm) === session) this.#byVm.delete(session.vm);
  }
}
