import { createHash, randomUUID } from 'node:crypto';
import { duplexPair, type Duplex } from 'node:stream';
import type {
  AdapterCapabilities,
  AdapterModule,
  DiskEncryptionOps,
  EncryptedOverlayInfo,
  EncryptedOverlayOps,
  DiskSpec,
  GuestChannelOps,
  HypervisorAdapter,
  HypervisorEvent,
  LaunchHandle,
  LaunchRequest,
  ProbeResult,
  SeamlessOps,
  SnapshotInfo,
  SnapshotOps,
  StartOptions,
  StopOptions,
  VmInfo,
  VmSpec,
  VmState,
} from '../adapter/types.js';
import { systemClock, type Clock } from '../clock.js';
import {
  ConflictError,
  IntegrityError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
} from '../errors.js';
import { requireDirectKernelBoot } from '../adapter/direct-boot.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import { DENY_ALL, freeRdpPolicyArgs, xpraPolicyArgs } from '../publishing/enforcement.js';
import { MockFaults, type MockCall, type MockOperation } from './mock-faults.js';
import { emptyState, readState, writeState, type MockHypervisorState, type MockVmRecord } from './mock-state.js';

/** Options of {@link MockAdapter}. */
export interface MockAdapterOptions {
  /** Time source; a {@link VirtualClock} makes slow operations and timestamps deterministic. */
  clock?: Clock;
  /** Keep the hypervisor's state in this JSON file, so separate processes (the CLI) share it. */
  stateFile?: string;
  /** Host facts reported by probe(). */
  hostMemoryMiB?: number;
  hostCpus?: number;
  /**
   * Whether guests honour a graceful stop (an ACPI power button). Default true. A VM whose spec
   * has the label {@link MOCK_GUEST_LABEL} set to `ignores-shutdown` ignores it whatever this says.
   */
  guestHonoursShutdown?: boolean;
  /** Override capabilities, to test how the core handles an adapter that lacks some. */
  capabilities?: Partial<AdapterCapabilities>;
  /** Set false to leave out `redefine`, like an adapter that can only destroy and define again. */
  redefine?: boolean;
}

/**
 * The label that gives one mock VM a guest of its own kind: `ignores-shutdown` makes it ignore
 * a graceful stop, as a guest with no OS does.
 */
export const MOCK_GUEST_LABEL = 'tandem.mock/guest';

const FULL_CAPABILITIES: AdapterCapabilities = {
  snapshots: { live: true, deleteWithChildren: true },
  suspend: { pause: true, save: true },
  seamlessWindows: ['rdp-remoteapp', 'xpra'],
  guestChannel: ['virtio-serial'],
  sharedFolders: true,
  usb: true,
  diskEncryption: true,
  remoteHost: false,
  encryptedOverlays: true,
  // Off unless asked for (`capabilities: { liveNetwork: true }`): wrappers of the mock written
  // before setNetwork existed copy its capabilities without the member.
  liveNetwork: false,
};

/**
 * An in-memory hypervisor implementing every capability, for tests and demos: an injectable
 * clock, fault injection ({@link MockAdapter.faults}), crashes ({@link MockAdapter.crash}) and
 * a call log ({@link MockAdapter.calls}). With `stateFile` its VMs outlive the process.
 *
 * @example
 * ```ts
 * const adapter = new MockAdapter({ clock: new VirtualClock() });
 * adapter.faults.failNext('start', 1);
 * ```
 */
export class MockAdapter implements HypervisorAdapter {
  readonly name = 'mock';
  readonly version = '1.0.0';
  readonly capabilities: AdapterCapabilities;
  readonly faults = new MockFaults();
  readonly calls: MockCall[] = [];
  readonly snapshots: SnapshotOps;
  readonly seamless: SeamlessOps;
  readonly guestChannel: GuestChannelOps;
  readonly diskEncryption: DiskEncryptionOps;
  /**
   * Encrypted overlays: the simulated disk's contents at creation are the base's; what is
   * written while one is on ({@link MockAdapter.writeDisk}) is gone after `discard`.
   */
  readonly encryptedOverlays: EncryptedOverlayOps;
  /** Replaces a stopped VM's definition; its snapshots stay. Absent with `redefine: false`. */
  readonly redefine?: (spec: VmSpec) => Promise<VmInfo>;
  /**
   * Switches a running or paused VM's network at once (kept in its definition, so `list()` shows
   * it). Present with `capabilities: { liveNetwork: true }`; absent by default, like an adapter
   * that cannot.
   */
  readonly setNetwork?: (vm: string, network: VmSpec['network']) => Promise<void>;

  readonly #clock: Clock;
  readonly #options: MockAdapterOptions;
  readonly #queue = new KeyedQueue();
  readonly #listeners = new Set<(e: HypervisorEvent) => void>();
  readonly #guestEnds = new Map<string, Duplex[]>();
  /** Keys of disks encrypted before their VM was defined, by path. */
  readonly #pendingKeys = new Map<string, string>();
  #state: MockHypervisorState;

  constructor(options: MockAdapterOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.capabilities = { ...FULL_CAPABILITIES, ...options.capabilities };
    this.#state = options.stateFile ? readState(options.stateFile) : emptyState();
    if (options.redefine !== false) this.redefine = (spec) => this.#redefine(spec);
    if (this.capabilities.liveNetwork === true) {
      this.setNetwork = (vm, network) =>
        this.#op('setNetwork', vm, async (r) => {
          expectState(r, ['running', 'paused'], 'change the network of');
          const macAddress = network.macAddress ?? r.spec.network.macAddress;
          r.spec = { ...r.spec, network: { ...network, ...(macAddress !== undefined ? { macAddress } : {}) } };
        });
    }
    this.snapshots = {
      create: (vm, o) => this.#op('snapshot.create', vm, (r) => this.#snapshotCreate(r, o.name, o.description)),
      list: (vm) =>
        this.#op('snapshot.list', vm, (r) => Promise.resolve(r.snapshots.map((s) => this.#withCurrent(r, s)))),
      revert: (vm, id, o) => this.#op('snapshot.revert', vm, (r) => this.#snapshotRevert(r, id, o?.diskKeys)),
      delete: (vm, id, o) => this.#op('snapshot.delete', vm, (r) => this.#snapshotDelete(r, id, o?.children ?? false)),
    };
    this.seamless = { launch: (vm, req) => this.#op('seamless.launch', vm, (r) => this.#launch(r, req)) };
    this.guestChannel = { open: (vm) => this.#op('guestChannel.open', vm, (r) => this.#openChannel(r)) };
    this.diskEncryption = {
      encrypt: (disk, key) => this.#op('diskEncryption.encrypt', undefined, () => this.#encrypt(disk, key)),
    };
    this.encryptedOverlays = {
      create: (vm, keys) => this.#op('encryptedOverlays.create', vm, (r) => this.#overlayCreate(r, keys)),
      discard: (vm) => this.#op('encryptedOverlays.discard', vm, (r) => this.#overlayDiscard(r)),
      list: (vm) => this.#op('encryptedOverlays.list', vm, async (r) => overlayInfo(r)),
    };
  }

  async probe(): Promise<ProbeResult> {
    return this.#op('probe', undefined, async () => ({
      usable: true as const,
      adapter: this.name,
      hypervisorVersion: `mock ${this.version}`,
      host: {
        memoryMiB: this.#options.hostMemoryMiB ?? 16384,
        cpus: this.#options.hostCpus ?? 8,
        hostname: 'mock-host',
      },
      details: { stateFile: this.#options.stateFile ?? '(in memory)' },
    }));
  }

  async list(): Promise<VmInfo[]> {
    return this.#op('list', undefined, async () => this.#state.vms.map((r) => this.#info(r)));
  }

  async define(spec: VmSpec): Promise<VmInfo> {
    return this.#op('define', spec.name, async () => {
      requireDirectKernelBoot(this, spec);
      if (spec.name.includes('\0'))
        throw new InvalidInputError('A VM name cannot contain a NUL byte.', { details: { name: spec.name } });
      if (this.#find(spec.name))
        throw new ConflictError(`A VM named "${spec.name}" already exists.`, { details: { vm: spec.name } });
      const record: MockVmRecord = {
        name: spec.name,
        id: randomUUID(),
        spec,
        state: 'stopped',
        snapshots: [],
        currentSnapshot: null,
        diskKeys: {},
      };
      this.#state.vms.push(record);
      return this.#info(record);
    });
  }

  async #redefine(spec: VmSpec): Promise<VmInfo> {
    return this.#op('redefine', spec.name, async (r) => {
      requireDirectKernelBoot(this, spec);
      expectState(r, ['stopped', 'crashed'], 'redefine');
      r.spec = spec;
      r.state = 'stopped';
      return this.#info(r);
    });
  }

  async state(vm: string): Promise<VmState> {
    return this.#op('state', vm, async (r) => r.state);
  }

  async start(vm: string, options: StartOptions = {}): Promise<void> {
    return this.#op('start', vm, async (r) => {
      expectState(r, ['stopped', 'crashed', 'saved'], 'start');
      this.#checkKeys(r, options.diskKeys);
      r.state = 'running';
    });
  }

  async stop(vm: string, options: StopOptions = {}): Promise<void> {
    return this.#op('stop', vm, async (r) => {
      expectState(r, ['running', 'paused'], 'stop');
      // A paused guest cannot see the power button: a graceful stop resumes it first.
      if (!options.force && r.state === 'paused') r.state = 'running';
      if (!options.force && !this.#honoursShutdown(r)) {
        // The guest ignores the request: wait out the timeout, then power off or give up.
        await this.#clock.sleep(options.timeoutMs ?? 60_000, options.signal);
        if (options.forceAfterTimeout === false) {
          throw new TimeoutError(`VM "${r.name}" did not shut down within ${options.timeoutMs ?? 60_000} ms.`, {
            details: { vm: r.name },
          });
        }
      }
      r.state = 'stopped';
    });
  }

  async suspend(vm: string): Promise<void> {
    return this.#op('suspend', vm, async (r) => {
      expectState(r, ['running'], 'suspend');
      r.state = 'paused';
    });
  }

  async resume(vm: string): Promise<void> {
    return this.#op('resume', vm, async (r) => {
      expectState(r, ['paused'], 'resume');
      r.state = 'running';
    });
  }

  async save(vm: string): Promise<void> {
    return this.#op('save', vm, async (r) => {
      expectState(r, ['running', 'paused'], 'save');
      r.state = 'saved';
    });
  }

  async restore(vm: string, options: StartOptions = {}): Promise<void> {
    return this.#op('restore', vm, async (r) => {
      expectState(r, ['saved'], 'restore');
      this.#checkKeys(r, options.diskKeys);
      r.state = 'running';
    });
  }

  /** Removes the VM in any state (its simulated process ends with it). */
  async destroy(vm: string, _options: { deleteDisks?: boolean } = {}): Promise<void> {
    return this.#op('destroy', vm, async (r) => {
      this.#state.vms = this.#state.vms.filter((x) => x !== r);
    });
  }

  watch(listener: (event: HypervisorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Simulates the VM's process dying: a running or paused VM becomes `crashed` and watchers hear it. */
  crash(vm: string, reason = 'the VM process was killed'): void {
    const r = this.#require(vm);
    expectState(r, ['running', 'paused'], 'crash');
    r.state = 'crashed';
    this.#persist();
    this.#emit(r.name, 'crashed', reason);
  }

  /** Simulates the guest shutting itself down from inside. */
  guestShutdown(vm: string): void {
    const r = this.#require(vm);
    expectState(r, ['running'], 'guest shutdown');
    r.state = 'stopped';
    this.#persist();
    this.#emit(r.name, 'stopped', 'the guest shut down');
  }

  /**
   * Writes a marker on the VM's simulated disk, behind the adapter's back, as a test would with
   * qemu-io: only while the VM is stopped. Snapshots keep the disk's contents; a revert restores them.
   */
  writeDisk(vm: string, marker: string): void {
    const r = this.#require(vm);
    expectState(r, ['stopped'], 'write the disk of');
    r.disk = marker;
    this.#persist();
  }

  /** Reads the VM's simulated disk (empty before any write): only while the VM is stopped. */
  readDisk(vm: string): string {
    const r = this.#require(vm);
    expectState(r, ['stopped'], 'read the disk of');
    return r.disk ?? '';
  }

  /** How many simulated hypervisor processes run for the VM: one while it runs or is paused. */
  processCount(vm: string): number {
    const r = this.#find(vm);
    return r !== undefined && (r.state === 'running' || r.state === 'paused') ? 1 : 0;
  }

  /** The guest agent's end of the guest channels opened on `vm` (oldest first). */
  guestEnds(vm: string): Duplex[] {
    return this.#guestEnds.get(vm) ?? [];
  }

  /** Reloads state from the state file (another process may have changed it). */
  reload(): void {
    if (this.#options.stateFile) this.#state = readState(this.#options.stateFile);
  }

  // --- internals ---

  async #op<T>(op: MockOperation, vm: string | undefined, fn: (r: MockVmRecord) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const at = this.#clock.now();
      try {
        const delay = this.faults.delayOf(op);
        if (delay > 0) await this.#clock.sleep(delay);
        const injected = this.faults.take(op);
        if (injected) throw injected;
        const record = vm === undefined || op === 'define' ? (undefined as unknown as MockVmRecord) : this.#require(vm);
        const result = await fn(record);
        this.#persist();
        this.calls.push({ op, ...(vm !== undefined ? { vm } : {}), at, outcome: 'ok' });
        return result;
      } catch (err) {
        this.calls.push({
          op,
          ...(vm !== undefined ? { vm } : {}),
          at,
          outcome: 'error',
          error: (err as Error).message,
        });
        throw err;
      }
    };
    return vm === undefined ? run() : this.#queue.run(vm, run);
  }

  #honoursShutdown(r: MockVmRecord): boolean {
    if (r.spec.labels?.[MOCK_GUEST_LABEL] === 'ignores-shutdown') return false;
    return this.#options.guestHonoursShutdown !== false;
  }

  #find(vm: string): MockVmRecord | undefined {
    return this.#state.vms.find((r) => r.name === vm);
  }

  #require(vm: string): MockVmRecord {
    const r = this.#find(vm);
    if (!r) throw new NotFoundError(`No VM named "${vm}" on the mock hypervisor.`, { details: { vm } });
    return r;
  }

  #info(r: MockVmRecord): VmInfo {
    return {
      name: r.name,
      id: r.id,
      state: r.state,
      memoryMiB: r.spec.memoryMiB,
      cpus: r.spec.cpus,
      disks: r.spec.disks,
      network: r.spec.network,
      labels: r.spec.labels ?? {},
      boot: r.spec.boot ?? null,
    };
  }

  #persist(): void {
    if (this.#options.stateFile) writeState(this.#options.stateFile, this.#state);
  }

  #emit(vm: string, state: VmState, reason: string): void {
    const event: HypervisorEvent = { vm, state, reason, at: this.#clock.now() };
    for (const l of this.#listeners) l(event);
  }

  #withCurrent(r: MockVmRecord, s: SnapshotInfo): SnapshotInfo {
    return { ...s, current: s.id === r.currentSnapshot };
  }

  #findSnapshot(r: MockVmRecord, idOrName: string): SnapshotInfo {
    const s = r.snapshots.find((x) => x.id === idOrName) ?? r.snapshots.find((x) => x.name === idOrName);
    if (!s)
      throw new NotFoundError(`VM "${r.name}" has no snapshot "${idOrName}".`, {
        details: { vm: r.name, snapshot: idOrName },
      });
    return s;
  }

  async #snapshotCreate(r: MockVmRecord, name: string, description?: string): Promise<SnapshotInfo> {
    if (!name || name.includes('\0'))
      throw new InvalidInputError('A snapshot name must be non-empty and contain no NUL byte.', { details: { name } });
    expectState(r, ['stopped', 'running', 'paused'], 'take a snapshot');
    if (r.snapshots.some((x) => x.name === name))
      throw new ConflictError(`VM "${r.name}" already has a snapshot named "${name}"; choose another name.`, {
        details: { vm: r.name, snapshot: name },
      });
    const info: SnapshotInfo = {
      id: `snap-${this.#state.nextId++}`,
      name,
      ...(description !== undefined ? { description } : {}),
      createdAt: new Date(this.#clock.now()).toISOString(),
      parentId: r.currentSnapshot,
      current: true,
      vmState: r.state,
    };
    r.snapshots.push(info);
    r.currentSnapshot = info.id;
    r.snapshotDisks = { ...r.snapshotDisks, [info.id]: r.disk ?? '' };
    return info;
  }

  async #snapshotRevert(r: MockVmRecord, id: string, keys?: ReadonlyMap<string, Uint8Array>): Promise<void> {
    const s = this.#findSnapshot(r, id);
    // A snapshot of a running VM starts it: encrypted disks need their keys, as at start.
    if (s.vmState === 'running' || s.vmState === 'paused') this.#checkKeys(r, keys);
    r.currentSnapshot = s.id;
    r.state = s.vmState;
    r.disk = r.snapshotDisks?.[s.id] ?? '';
  }

  async #snapshotDelete(r: MockVmRecord, id: string, children: boolean): Promise<void> {
    const s = this.#findSnapshot(r, id);
    if (children) {
      const doomed = new Set([s.id]);
      for (let grew = true; grew;) {
        grew = false;
        for (const x of r.snapshots) {
          if (x.parentId !== null && doomed.has(x.parentId) && !doomed.has(x.id)) {
            doomed.add(x.id);
            grew = true;
          }
        }
      }
      r.snapshots = r.snapshots.filter((x) => !doomed.has(x.id));
      if (r.currentSnapshot !== null && doomed.has(r.currentSnapshot)) r.currentSnapshot = s.parentId;
    } else {
      r.snapshots = r.snapshots
        .filter((x) => x.id !== s.id)
        .map((x) => (x.parentId === s.id ? { ...x, parentId: s.parentId } : x));
      if (r.currentSnapshot === s.id) r.currentSnapshot = s.parentId;
    }
    if (r.snapshotDisks) {
      const kept = new Set(r.snapshots.map((x) => x.id));
      r.snapshotDisks = Object.fromEntries(Object.entries(r.snapshotDisks).filter(([k]) => kept.has(k)));
    }
  }

  async #launch(r: MockVmRecord, req: LaunchRequest): Promise<LaunchHandle> {
    expectState(r, ['running'], 'launch an app');
    const transport = req.transport ?? (r.spec.osFamily === 'windows' ? 'rdp-remoteapp' : 'xpra');
    let close!: (code: number | null) => void;
    const exited = new Promise<number | null>((resolve) => (close = resolve));
    return {
      transport,
      // The policy part is what the real transport's client would get (see @tandem/core/publishing).
      argv: [
        'mock-seamless',
        `--vm=${r.name}`,
        `--mode=${req.mode}`,
        `--app=${req.command}`,
        ...(req.args ?? []),
        ...mockTransportArgs(transport, req),
      ],
      exited,
      close: async () => close(0),
    };
  }

  async #openChannel(r: MockVmRecord): Promise<Duplex> {
    expectState(r, ['running', 'paused'], 'open the guest channel');
    const [host, guest] = duplexPair();
    const ends = this.#guestEnds.get(r.name) ?? [];
    ends.push(guest);
    this.#guestEnds.set(r.name, ends);
    return host;
  }

  async #overlayCreate(r: MockVmRecord, keys: ReadonlyMap<string, Uint8Array>): Promise<EncryptedOverlayInfo[]> {
    expectState(r, ['stopped', 'crashed'], 'put an encrypted overlay on');
    this.#checkKeys(r, keys);
    const on = r.overlays ?? [];
    for (const d of r.spec.disks) {
      if (!d.encryption || on.some((o) => o.base === d.path)) continue;
      on.push({ base: d.path, overlay: `${d.path}.overlay-${this.#state.nextId++}`, baseDisk: r.disk ?? '' });
    }
    r.overlays = on;
    return overlayInfo(r);
  }

  async #overlayDiscard(r: MockVmRecord): Promise<EncryptedOverlayInfo[]> {
    expectState(r, ['stopped', 'crashed'], 'discard the encrypted overlay of');
    const removed = overlayInfo(r);
    const first = r.overlays?.[0];
    if (first) r.disk = first.baseDisk;
    delete r.overlays;
    return removed;
  }

  async #encrypt(disk: DiskSpec, key: Uint8Array): Promise<void> {
    if (!disk.encryption)
      throw new InvalidInputError(`Disk ${disk.path} has no encryption.keyId.`, { details: { disk: disk.path } });
    for (const r of this.#state.vms) {
      if (r.spec.disks.some((d) => d.path === disk.path)) r.diskKeys[disk.path] = sha256(key);
    }
    this.#pendingKeys.set(disk.path, sha256(key));
  }

  #checkKeys(r: MockVmRecord, keys: ReadonlyMap<string, Uint8Array> | undefined): void {
    for (const d of r.spec.disks) {
      if (!d.encryption) continue;
      const expected = r.diskKeys[d.path] ?? this.#pendingKeys.get(d.path);
      const key = keys?.get(d.encryption.keyId);
      if (!key) {
        throw new InvalidInputError(
          `Disk ${d.path} of VM "${r.name}" is encrypted; pass its key "${d.encryption.keyId}" in diskKeys.`,
          {
            details: { vm: r.name, disk: d.path, keyId: d.encryption.keyId },
          },
        );
      }
      if (expected !== undefined && expected !== sha256(key)) {
        throw new IntegrityError(`The key "${d.encryption.keyId}" does not open disk ${d.path} of VM "${r.name}".`, {
          details: { vm: r.name, disk: d.path },
        });
      }
    }
  }
}

function overlayInfo(r: MockVmRecord): EncryptedOverlayInfo[] {
  return (r.overlays ?? []).map((o) => ({ base: o.base, overlay: o.overlay }));
}

function sha256(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex');
}

function expectState(r: MockVmRecord, allowed: readonly VmState[], action: string): void {
  if (!allowed.includes(r.state)) {
    throw new InvalidStateError(
      `Cannot ${action} VM "${r.name}": it is ${r.state} (expected ${allowed.join(' or ')}).`,
      r.state,
      { details: { vm: r.name, expected: allowed } },
    );
  }
}

/** The mock adapter as a loadable {@link AdapterModule} (name `mock`). */
/** The frame, window class and policy arguments the transport's real client would get. */
function mockTransportArgs(transport: string, req: LaunchRequest): string[] {
  const transfer = req.transfer ?? DENY_ALL;
  if (transport === 'xpra') {
    return [...(req.frameColor ? [`--border=${req.frameColor},2`] : []), ...xpraPolicyArgs(transfer).args];
  }
  return [...freeRdpPolicyArgs(transfer).args, ...(req.windowClass ? [`/wm-class:${req.windowClass}`] : [])];
}

export const mockAdapterModule: AdapterModule<MockAdapterOptions> = {
  name: 'mock',
  create: (options) => new MockAdapter(options),
};
