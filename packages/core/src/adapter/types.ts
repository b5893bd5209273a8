import type { Duplex } from 'node:stream';
import type { TransferPermissions } from '../publishing/enforcement.js';

/**
 * The normalized VM states. Every adapter maps its hypervisor's own states onto these
 * (libvirt shutoff/running/paused/crashed/pmsuspended; VirtualBox poweroff/running/paused/
 * saved/aborted/gurumeditation; Hyper-V Off/Running/Paused/Saved/...).
 */
export type VmState = 'stopped' | 'starting' | 'running' | 'paused' | 'saved' | 'stopping' | 'crashed' | 'unknown';

/** All normalized VM states, in a stable order. */
export const VM_STATES: readonly VmState[] = [
  'stopped',
  'starting',
  'running',
  'paused',
  'saved',
  'stopping',
  'crashed',
  'unknown',
];

/** How a published app's windows reach the host desktop. */
export type SeamlessTransport = 'rdp-remoteapp' | 'xpra' | 'vbox-seamless' | 'enhanced-session';

/** How the host talks to the guest agent. */
export type GuestChannelKind = 'virtio-serial' | 'vsock' | 'hvsocket' | 'tcp';

/** What an adapter supports, as plain data. The core checks it before calling optional members. */
export interface AdapterCapabilities {
  /** Snapshots; `live` when they can be taken of a running VM (memory included). */
  readonly snapshots: false | { readonly live: boolean; readonly deleteWithChildren: boolean };
  /** `pause` keeps memory in RAM (suspend/resume); `save` writes it to disk (save/restore). */
  readonly suspend: { readonly pause: boolean; readonly save: boolean };
  /** Seamless-window transports the adapter can launch published apps with. */
  readonly seamlessWindows: readonly SeamlessTransport[];
  /** Kinds of guest channel the adapter can open. */
  readonly guestChannel: readonly GuestChannelKind[];
  readonly sharedFolders: boolean;
  readonly usb: boolean;
  /** Disks encrypted by the hypervisor, keys handed over in memory only. */
  readonly diskEncryption: boolean;
  /** The adapter can drive a hypervisor on another machine. */
  readonly remoteHost: boolean;
  /**
   * Direct kernel boot ({@link VmSpec.boot}): the hypervisor loads a kernel and an initramfs
   * itself. Absent means no: such an adapter refuses a spec with `boot` (UnsupportedCapabilityError).
   */
  readonly directKernelBoot?: boolean;
  /**
   * Encrypted per-session overlays ({@link EncryptedOverlayOps}): how a revertible workspace and
   * the end-of-session snapshot work on an encrypted disk the hypervisor cannot snapshot. Absent
   * means no.
   */
  readonly encryptedOverlays?: boolean;
  /**
   * Live network change ({@link HypervisorAdapter.setNetwork}): a running VM's network mode can
   * be switched without a restart. Absent means no: the new mode waits for the next start.
   */
  readonly liveNetwork?: boolean;
}

/** Facts about the host the adapter runs against. */
export interface HostFacts {
  memoryMiB: number;
  cpus: number;
  hostname?: string;
}

/** The outcome of {@link HypervisorAdapter.probe}: usable, or a reason (never an exception). */
export type ProbeResult =
  | {
      readonly usable: true;
      readonly adapter: string;
      /** The hypervisor's own version, as it reports it. */
      readonly hypervisorVersion: string;
      readonly host: HostFacts;
      /** Further versions and facts (QEMU version, API version, ...). */
      readonly details?: Readonly<Record<string, string>>;
      readonly warnings?: readonly string[];
    }
  | {
      readonly usable: false;
      readonly adapter: string;
      /** Why the adapter cannot be used here. */
      readonly reason: string;
      /** What to do about it. */
      readonly fix?: string;
    };

/** Disk image formats. */
export type DiskFormat = 'qcow2' | 'raw' | 'vdi' | 'vhdx' | 'vmdk';

/** One disk of a VM. */
export interface DiskSpec {
  /** Absolute path of the image on the hypervisor's host. */
  readonly path: string;
  readonly format: DiskFormat;
  readonly readOnly?: boolean;
  /** Set when the image is encrypted; the key is passed to `start` under this id. */
  readonly encryption?: { readonly keyId: string };
}

/**
 * Direct kernel boot: the hypervisor loads the kernel (and initramfs) from the host and starts
 * it with the command line, instead of booting from the disks' boot loader. Small Linux guests
 * (the real test guest, appliances) boot this way.
 *
 * @example
 * ```ts
 * const boot: BootSpec = {
 *   kernel: '/var/cache/tandem-ci/test-guest/current/vmlinuz',
 *   initrd: '/var/lib/tandem/guest/initrd.gz',
 *   cmdline: 'console=ttyS0',
 * };
 * ```
 */
export interface BootSpec {
  /** Absolute path of the kernel image on the hypervisor's host. */
  readonly kernel: string;
  /** Absolute path of the initramfs on the hypervisor's host. */
  readonly initrd?: string;
  /** The kernel's command line. */
  readonly cmdline?: string;
}

/** Network attachment modes. */
export type NetworkMode = 'nat' | 'bridged' | 'host-only' | 'none';

/**
 * Everything an adapter needs to define a VM. Built from a workspace by
 * `buildVmSpec()`, so adapters never read workspace files themselves.
 */
export interface VmSpec {
  /** The VM's name on the hypervisor; also how Tandem finds it again. */
  readonly name: string;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly disks: readonly DiskSpec[];
  readonly network: { readonly mode: NetworkMode; readonly bridge?: string; readonly macAddress?: string };
  readonly graphics: { readonly kind: 'vnc' | 'spice' | 'rdp' | 'none' };
  readonly osFamily: 'windows' | 'linux' | 'other';
  /** Ask for a guest channel (virtio-serial or the adapter's equivalent). */
  readonly guestChannel?: boolean;
  /** Direct kernel boot (only where `capabilities.directKernelBoot`); the disks stay attached. */
  readonly boot?: BootSpec;
  /** Free-form labels stored with the VM where the hypervisor allows (workspace name, version). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A VM as the adapter sees it. */
export interface VmInfo {
  /** The name the VM is known by (the same as {@link VmSpec.name}). */
  readonly name: string;
  /** The hypervisor's own id (UUID, GUID), when it has one. */
  readonly id?: string;
  readonly state: VmState;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** The disks it is defined with, when the adapter can read them back. */
  readonly disks?: readonly DiskSpec[];
  /** Its network attachment, when the adapter can read it back. */
  readonly network?: VmSpec['network'];
  /** The labels it was defined with (`tandem.version`, ...), when the adapter can read them back. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The kernel it boots directly ({@link VmSpec.boot}), or `null` when it boots from its disks;
   * absent when the adapter cannot read it back.
   */
  readonly boot?: BootSpec | null;
}

/** Options of {@link HypervisorAdapter.start}. */
export interface StartOptions {
  /** Keys of encrypted disks by `keyId`. Handed to the hypervisor in memory only, never stored. */
  readonly diskKeys?: ReadonlyMap<string, Uint8Array>;
  /** `headless` (default) or with the hypervisor's own window. */
  readonly display?: 'headless' | 'window';
  readonly signal?: AbortSignal;
}

/**
 * Options of {@link HypervisorAdapter.stop}. Without `force` the stop is graceful: the adapter
 * asks the guest to shut down (the ACPI power button or the hypervisor's equivalent; a paused
 * VM is resumed first, since a paused guest cannot see the request) and waits up to `timeoutMs`
 * for it to power off.
 */
export interface StopOptions {
  /** Power off at once, without asking the guest. */
  readonly force?: boolean;
  /** How long a graceful stop may take (default 60 s). */
  readonly timeoutMs?: number;
  /**
   * After a graceful stop times out, power off (default true). With `false` the adapter throws
   * TimeoutError and leaves the VM running.
   */
  readonly forceAfterTimeout?: boolean;
  readonly signal?: AbortSignal;
}

/** One snapshot. `list` returns them flat; {@link buildSnapshotTree} nests them. */
export interface SnapshotInfo {
  /** The adapter's identifier (often the name). */
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** The parent snapshot's id; null for a root. */
  readonly parentId: string | null;
  /**
   * True for the snapshot the VM's current state descends from (at most one). A new snapshot
   * becomes current, and so does the one a revert went to. When the current snapshot is
   * deleted, its parent becomes current; when a subtree holding it is deleted with
   * `children`, the deleted snapshot's parent does (no snapshot is current when that is a root).
   */
  readonly current: boolean;
  /** The VM's state when the snapshot was taken: reverting brings it back. */
  readonly vmState: VmState;
}

/** Options of {@link SnapshotOps.revert}. */
export interface RevertOptions {
  /**
   * Keys of encrypted disks by `keyId`: reverting to a snapshot of a running VM starts it, and
   * an encrypted disk needs its key then, as at {@link HypervisorAdapter.start}.
   */
  readonly diskKeys?: ReadonlyMap<string, Uint8Array>;
}

/**
 * Snapshot operations (present when `capabilities.snapshots` is set). An unknown VM is
 * NotFoundError for every one of them, and so is an unknown snapshot.
 *
 * Ids are unique per VM. Whether a name may be used twice is the hypervisor's: an adapter
 * either refuses a second snapshot of the same name with ConflictError (libvirt, the mock) or
 * takes it under a new id (VirtualBox, Hyper-V); a name that several snapshots share is then
 * ConflictError when given to `revert` or `delete` (use the id).
 *
 * States: `create` works in stopped, running and paused (running and paused only with
 * `capabilities.snapshots.live`), and the VM stays in the state it was in. In saved and
 * crashed an adapter may refuse with InvalidStateError or take the snapshot (Hyper-V takes one
 * of a saved VM, libvirt one of a crashed VM's disks); `list`, `revert` and `delete` work in
 * every state.
 */
export interface SnapshotOps {
  /** Takes a snapshot; it becomes current, a child of the snapshot that was current. */
  create(vm: string, options: { name: string; description?: string }): Promise<SnapshotInfo>;
  /** Every snapshot of the VM, flat, with `parentId` and `current` (see {@link buildSnapshotTree}). */
  list(vm: string): Promise<SnapshotInfo[]>;
  /**
   * Returns the VM to the snapshot (given by id, or by name when no id matches), including
   * the disks' contents and the state it was taken in (stopped, running or paused), from any
   * state the VM is in now. The snapshot becomes current.
   */
  revert(vm: string, snapshot: string, options?: RevertOptions): Promise<void>;
  /**
   * Deletes one snapshot (its children move to its parent), or with `children` its whole
   * subtree, every level of it. Deleting never changes the VM's state or disks.
   */
  delete(vm: string, snapshot: string, options?: { children?: boolean }): Promise<void>;
}

/** A published app to launch. */
export interface LaunchRequest {
  readonly appId: string;
  /** The program inside the guest (a Windows path, or a Linux command). */
  readonly command: string;
  readonly args?: readonly string[];
  readonly workingDirectory?: string;
  /** `seamless` shows only the app's windows; `full-desktop` the whole guest desktop. */
  readonly mode: 'seamless' | 'full-desktop';
  readonly frameColor?: string;
  readonly transport?: SeamlessTransport;
  /** Credentials for the transport where it needs them (RDP). Kept in memory only. */
  readonly credentials?: { readonly username: string; readonly password?: string; readonly domain?: string };
  /**
   * The data-transfer policy resolved for this launch (see `resolveTransferPolicy` in
   * `@tandem/core/publishing`); the adapter translates it into its transport's settings.
   * Absent: everything is denied, explicitly.
   */
  readonly transfer?: TransferPermissions;
  /** The window class for the app's windows where the transport sets one (FreeRDP `/wm-class`). */
  readonly windowClass?: string;
}

/** A running launch. */
export interface LaunchHandle {
  readonly transport: SeamlessTransport;
  /** The host-side program and its arguments, as started (never a shell string). */
  readonly argv: readonly string[];
  readonly pid?: number;
  /** Resolves with the exit code when the host-side program ends. */
  readonly exited: Promise<number | null>;
  close(): Promise<void>;
}

/** Seamless windows (present when `capabilities.seamlessWindows` is not empty). */
export interface SeamlessOps {
  launch(vm: string, request: LaunchRequest): Promise<LaunchHandle>;
}

/** The guest channel (present when `capabilities.guestChannel` is not empty). */
export interface GuestChannelOps {
  /** Opens a byte stream to the guest agent. */
  open(vm: string, options?: { signal?: AbortSignal }): Promise<Duplex>;
}

/** Disk encryption (present when `capabilities.diskEncryption`). */
export interface DiskEncryptionOps {
  /** Encrypts an image in place or creates it encrypted, under `key`. */
  encrypt(disk: DiskSpec, key: Uint8Array, options?: { sizeBytes?: number }): Promise<void>;
}

/** One encrypted disk of a VM and the overlay it writes into. */
export interface EncryptedOverlayInfo {
  /** The encrypted image as delivered: the overlay's backing file, never written while it is on. */
  readonly base: string;
  /** The overlay: a new image encrypted with the base's key, the disk the VM opens. */
  readonly overlay: string;
}

/**
 * Encrypted per-session overlays (present when `capabilities.encryptedOverlays`). Each works on
 * a stopped (or crashed) VM; the key reaches the hypervisor in memory only.
 *
 * @example
 * ```ts
 * await adapter.encryptedOverlays.create(vm, diskKeys); // before start: writes go to the overlay
 * await adapter.encryptedOverlays.discard(vm); // after stop: back on the untouched base
 * ```
 */
export interface EncryptedOverlayOps {
  /**
   * Puts a new overlay, encrypted with the same key (by the disk's `keyId` in `keys`), on every
   * encrypted disk of the VM that has none, and points the VM at it. Returns every overlay now on.
   */
  create(vm: string, keys: ReadonlyMap<string, Uint8Array>): Promise<EncryptedOverlayInfo[]>;
  /** Removes the VM's overlays (their files deleted) and points it back at the bases. Returns those removed. */
  discard(vm: string): Promise<EncryptedOverlayInfo[]>;
  /** The VM's overlays now on (empty when it writes into its bases). */
  list(vm: string): Promise<EncryptedOverlayInfo[]>;
}

/**
 * Something the hypervisor did on its own (guest shut down, qemu killed, ...): never the result
 * of a call Tandem made through the adapter. A guest that powers itself off ends `stopped`; a
 * hypervisor process that was killed or died ends `crashed`.
 */
export interface HypervisorEvent {
  readonly vm: string;
  readonly state: VmState;
  /** The hypervisor's own words for what happened. */
  readonly reason: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/**
 * The adapter lost or regained its hypervisor (libvirtd stopped and started again, an SSH link
 * to a remote host dropped). While lost, calls fail with a retryable error; the VMs usually keep
 * running, so their states are read again once the hypervisor is back.
 */
export interface HypervisorConnectionEvent {
  readonly state: 'lost' | 'restored';
  /** What was seen: the hypervisor's or the system's own words. */
  readonly reason: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/**
 * The contract between Tandem and a hypervisor. Small and async; the core calls it and it
 * never calls the core back except through {@link HypervisorAdapter.watch}.
 *
 * VMs are addressed by name. Operations on a VM that does not exist throw NotFoundError;
 * operations in the wrong state throw InvalidStateError naming the state; defining a name
 * that exists throws ConflictError. Calls on one VM may arrive concurrently: an adapter
 * serializes them per VM, so every call sees the state the previous one left.
 *
 * Legal transitions: start from stopped, crashed or saved; stop from running or paused;
 * suspend from running; resume from paused; save from running or paused; restore from
 * saved; snapshots may be created in stopped, running or paused (running/paused only when
 * `capabilities.snapshots.live`); destroy from any state.
 *
 * Capabilities and members agree: every capability the adapter claims has its members
 * (`suspend.save` needs `save` and `restore`, `snapshots` needs `snapshots`, ...). The registry
 * and `loadAdapterModule()` refuse an adapter that claims more than it has.
 *
 * The conformance suite from `@tandem/core/testing` checks all of this.
 */
export interface HypervisorAdapter {
  readonly name: string;
  readonly version: string;
  readonly capabilities: AdapterCapabilities;

  /**
   * Is the hypervisor usable here? Never throws: an unusable one returns a reason. `adapter`
   * in the result is the adapter's {@link HypervisorAdapter.name}.
   */
  probe(): Promise<ProbeResult>;

  list(): Promise<VmInfo[]>;
  define(spec: VmSpec): Promise<VmInfo>;
  state(vm: string): Promise<VmState>;
  start(vm: string, options?: StartOptions): Promise<void>;
  stop(vm: string, options?: StopOptions): Promise<void>;
  /** Pause in memory. */
  suspend(vm: string): Promise<void>;
  resume(vm: string): Promise<void>;
  /** Save the state to disk and stop (when `capabilities.suspend.save`). */
  save?(vm: string): Promise<void>;
  /** Start from saved state (when `capabilities.suspend.save`). */
  restore?(vm: string, options?: StartOptions): Promise<void>;
  /**
   * Replaces the definition of a stopped VM of the same name (other disks, memory, CPUs,
   * network), keeping its snapshots where the hypervisor can: an adapter may delete those that
   * cannot survive the new definition (libvirt: internal snapshots inside a disk that was
   * replaced), and the core reports the ones `snapshots.list()` no longer shows as dropped.
   * Optional: without it the core destroys and defines the VM again, and its snapshots are lost.
   */
  redefine?(spec: VmSpec): Promise<VmInfo>;
  /**
   * Stop if needed (forced: the hypervisor's processes for the VM end) and remove the
   * definition, its snapshots and saved state; with `deleteDisks`, its disks too.
   */
  destroy(vm: string, options?: { deleteDisks?: boolean }): Promise<void>;

  readonly snapshots?: SnapshotOps;
  readonly seamless?: SeamlessOps;
  readonly guestChannel?: GuestChannelOps;
  readonly diskEncryption?: DiskEncryptionOps;
  readonly encryptedOverlays?: EncryptedOverlayOps;

  /**
   * Switches a running or paused VM's network attachment to `network` (nat, bridged, host-only,
   * none) without a restart, keeping its MAC address, and records it in the persistent
   * definition too, so the next start keeps it (when `capabilities.liveNetwork`). A stopped VM
   * is InvalidStateError (redefine it instead), an unknown VM NotFoundError.
   *
   * @example
   * ```ts
   * if (adapter.capabilities.liveNetwork) await adapter.setNetwork?.('tandem-erp', { mode: 'host-only' });
   * ```
   */
  setNetwork?(vm: string, network: VmSpec['network']): Promise<void>;

  /**
   * Subscribe to what the hypervisor does on its own (see {@link HypervisorEvent}); the results
   * of the adapter's own calls are not reported. Returns an unsubscribe function.
   */
  watch?(listener: (event: HypervisorEvent) => void): () => void;

  /**
   * Subscribe to the adapter losing and regaining its hypervisor (see
   * {@link HypervisorConnectionEvent}). While someone listens the adapter checks the connection
   * on its own (a keep-alive), so a loss is seen without a call failing first. Optional: adapters
   * whose hypervisor cannot go away separately (the mock, a local command-line tool) omit it.
   */
  watchConnection?(listener: (event: HypervisorConnectionEvent) => void): () => void;

  /** Release connections. */
  close?(): Promise<void>;
}

/** What an adapter package exports so it can be loaded by name. */
export interface AdapterModule<Options = unknown> {
  /** The adapter's short name (`libvirt`, `virtualbox`, `hyperv`, `mock`). */
  readonly name: string;
  create(options?: Options): HypervisorAdapter;
}
