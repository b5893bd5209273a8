import { unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  ConflictError,
  KeyedQueue,
  InvalidStateError,
  TandemError,
  TimeoutError,
  systemClock,
  type AdapterCapabilities,
  type Clock,
  type HypervisorAdapter,
  type HypervisorConnectionEvent,
  type HypervisorEvent,
  type ProbeResult,
  type StartOptions,
  type StopOptions,
  type VmInfo,
  type VmSpec,
  type VmState,
} from '@tandem/core';
import { ListFlags, type NativeDomain } from './binding.js';
import { LibvirtConnection } from './connection.js';
import { ConnectionWatch, DEFAULT_CONNECTION_TIMING } from './connection-watch.js';
import { readDomainFacts } from './domain-facts.js';
import { buildDomainXml } from './domain-xml.js';
import { classifyLibvirtMessage, libvirtError, type ErrorContext } from './errors.js';
import { LifecycleEvents, virshEventStream } from './events/watcher.js';
import { LibvirtGuestChannel } from './guest-channel.js';
import type { AdapterInternals } from './internals.js';
import { setLiveNetwork } from './live-network.js';
import { ensureHostOnlyNetwork, startNetworkIfInactive } from './networks.js';
import { defaultUri, type LibvirtOptions } from './options.js';
import { probeLibvirt } from './probe.js';
import { carrySnapshots, definedView, disksStay, dropSnapshots, withUuid } from './redefine.js';
import { LibvirtEncryptedOverlays } from './encrypted-overlays.js';
import { LibvirtDiskEncryption, withDiskSecrets } from './encryption.js';
import { LibvirtSeamless } from './seamless/launch.js';
import { LibvirtSnapshots } from './snapshots.js';
import { mapDomainState, refineShutoff } from './state.js';
import { parseLibvirtUri, type LibvirtUri } from './uri.js';
import { Virsh, VirshFailure } from './virsh/runner.js';
import { virshScript } from './virsh/quote.js';

const CAPABILITIES: AdapterCapabilities = {
  snapshots: { live: true, deleteWithChildren: true },
  suspend: { pause: true, save: true },
  seamlessWindows: ['rdp-remoteapp', 'xpra'],
  guestChannel: ['virtio-serial'],
  sharedFolders: false,
  usb: false,
  diskEncryption: true,
  remoteHost: true,
  directKernelBoot: true,
  encryptedOverlays: true,
  liveNetwork: true,
};

const PACKAGE_VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * The libvirt adapter: drives QEMU/KVM through libvirt, locally (`qemu:///system`,
 * `qemu:///session`) or on another host (`qemu+ssh://user@host/system`). Lifecycle calls go
 * through the `@unraid/libvirt` binding on one kept-open connection; what the binding lacks
 * (snapshots, managed save, secrets, lifecycle events, interface addresses) goes through
 * `virsh` on the same URI. Calls on one VM are serialized.
 *
 * @example
 * ```ts
 * const adapter = new LibvirtAdapter({ uri: 'qemu:///system' });
 * const probe = await adapter.probe();
 * if (probe.usable) await adapter.start('tandem-erp');
 * ```
 */
export class LibvirtAdapter implements HypervisorAdapter {
  readonly name = 'libvirt';
  readonly version = PACKAGE_VERSION;
  readonly capabilities = CAPABILITIES;
  /** The libvirt URI this adapter drives. */
  readonly uri: string;
  readonly snapshots: LibvirtSnapshots;
  readonly guestChannel: LibvirtGuestChannel;
  readonly diskEncryption: LibvirtDiskEncryption;
  /** Encrypted per-session overlays: how revertible and snapshot-ending sessions work on a LUKS disk. */
  readonly encryptedOverlays: LibvirtEncryptedOverlays;
  /** Seamless launches, plus {@link LibvirtSeamless.guestAddress}. */
  readonly seamless: LibvirtSeamless;

  readonly #options: LibvirtOptions;
  readonly #parsed: LibvirtUri;
  readonly #conn: LibvirtConnection;
  readonly #virsh: Virsh;
  readonly #clock: Clock;
  readonly #queue = new KeyedQueue();
  readonly #events: LifecycleEvents;
  readonly #connection: ConnectionWatch;
  readonly #internals: AdapterInternals;
  #virtType: Promise<'kvm' | 'qemu'> | undefined;

  constructor(options: LibvirtOptions = {}) {
    this.#options = options;
    this.uri = options.uri ?? defaultUri();
    this.#parsed = parseLibvirtUri(this.uri);
    this.#clock = options.clock ?? systemClock;
    const d = DEFAULT_CONNECTION_TIMING;
    this.#connection = new ConnectionWatch(
      async () => {
        await this.#conn.use((hv) => hv.connectGetHostname(), true);
      },
      this.#clock,
      {
        keepaliveMs: options.keepaliveMs ?? d.keepaliveMs,
        keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? d.keepaliveTimeoutMs,
        reconnectMs: options.reconnectMs ?? d.reconnectMs,
        maxReconnectMs: options.maxReconnectMs ?? d.maxReconnectMs,
      },
    );
    this.#conn = new LibvirtConnection(this.uri, this.#connection);
    this.#virsh = new Virsh(this.uri, options.virsh ?? 'virsh');
    this.#events = new LifecycleEvents(
      virshEventStream(this.#virsh.binary, this.uri),
      this.#clock,
      undefined,
      // virsh's event loop ends when libvirtd goes away: look now rather than at the next keep-alive.
      () => this.#connection.nudge(),
    );
    this.#internals = {
      uri: this.#parsed,
      options,
      virsh: this.#virsh,
      clock: this.#clock,
      serialize: (vm, task) => this.#queue.run(vm, task),
      withDomain: (vm, op, fn, idempotent) => this.#withDomain(vm, op, fn, idempotent),
      stateOf: (vm) => this.#stateOf(vm),
      requireState: (vm, op, allowed) => this.#requireState(vm, op, allowed),
      toError: (err, ctx) => this.#toError(err, ctx),
      expectEvents: (vm, events) => this.#events.expect(vm, events),
    };
    this.snapshots = new LibvirtSnapshots(this.#internals);
    this.guestChannel = new LibvirtGuestChannel(this.#internals);
    this.diskEncryption = new LibvirtDiskEncryption(this.#internals);
    this.encryptedOverlays = new LibvirtEncryptedOverlays(this.#internals);
    this.seamless = new LibvirtSeamless(this.#internals);
  }

  /** Usable here? libvirt and QEMU versions, host RAM and CPUs; a reason and a fix when not. */
  async probe(): Promise<ProbeResult> {
    return probeLibvirt(this.#conn, this.#virsh, () => this.#resolveVirtType());
  }

  async list(): Promise<VmInfo[]> {
    const rows = await this.#call({ operation: 'list' }, true, async (hv) => {
      const doms = await hv.connectListAllDomains();
      const out = await Promise.all(doms.map((d) => describe(d).catch(() => undefined)));
      return out.filter((r) => r !== undefined);
    });
    const off = rows.filter((r) => r.state === 'stopped').map((r) => r.name);
    const refined = await this.#refineMany(off);
    return rows.map((r) => ({ ...r, state: refined.get(r.name) ?? r.state }));
  }

  async define(spec: VmSpec): Promise<VmInfo> {
    return this.#queue.run(spec.name, async () => {
      if (await this.#exists(spec.name)) {
        throw new ConflictError(
          `A VM named "${spec.name}" already exists on ${this.uri}. Destroy it first or pick another name.`,
          {
            details: { vm: spec.name, uri: this.uri },
          },
        );
      }
      const xml = await this.#domainXml(spec);
      if (spec.network.mode === 'host-only') {
        await ensureHostOnlyNetwork(this.#internals, this.#options.hostOnlyNetwork ?? 'tandem-hostonly');
      }
      const dom = await this.#call({ operation: 'define', vm: spec.name }, false, (hv) => hv.domainDefineXML(xml));
      return { ...(await describe(dom)), state: 'stopped' };
    });
  }

  /**
   * Replaces a stopped (or crashed) VM's definition with one built from `spec`, under the same
   * UUID, so libvirt keeps the domain's snapshot metadata; the MAC address libvirt generated is
   * kept when the spec names none. Another state is InvalidStateError, an unknown VM
   * NotFoundError.
   *
   * Snapshots: when every disk stays (same images, formats and order), they are all kept, and
   * those taken of a stopped VM are given the new definition, so a revert restores the disks'
   * contents under the new memory, CPUs and network; a snapshot of a running or paused VM keeps
   * the hardware its memory image needs, and reverting to it brings that definition back. When
   * a disk changes, the snapshots (internal qcow2 snapshots inside the old images) no longer fit
   * the VM and are deleted; `snapshots.list()` no longer shows them, which the core reports as
   * dropped.
   */
  async redefine(spec: VmSpec): Promise<VmInfo> {
    return this.#queue.run(spec.name, async () => {
      const vm = spec.name;
      await this.#requireState(vm, 'redefine', ['stopped', 'crashed']);
      const facts = readDomainFacts(await this.#withDomain(vm, 'redefine', (d) => d.getXMLDesc(2), true));
      const mac = spec.network.mode !== 'none' && !spec.network.macAddress ? facts.macAddresses[0] : undefined;
      const xml = await this.#domainXml(spec, mac);
      if (spec.network.mode === 'host-only') {
        await ensureHostOnlyNetwork(this.#internals, this.#options.hostOnlyNetwork ?? 'tandem-hostonly');
      }
      const dom = await this.#call({ operation: 'redefine', vm }, false, (hv) =>
        hv.domainDefineXML(facts.uuid ? withUuid(xml, facts.uuid) : xml),
      );
      if (disksStay(facts.disks, spec)) await carrySnapshots(this.#internals, vm);
      else await dropSnapshots(this.#internals, vm);
      return { ...(await describe(dom)), state: 'stopped' };
    });
  }

  /**
   * Switches a running or paused VM's network without a restart: `virsh update-device --live
   * --config` on its card (same MAC and model, the new source; `none` sets the link down and
   * keeps the card, since unplugging needs the guest's help), or `attach-device` when it was
   * defined without one; Tandem's metadata follows in both definitions, so the next start keeps
   * the mode. A stopped VM is InvalidStateError (use redefine).
   */
  async setNetwork(vm: string, network: VmSpec['network']): Promise<void> {
    return this.#queue.run(vm, async () => {
      await this.#requireState(vm, 'change the network of', ['running', 'paused']);
      await setLiveNetwork(this.#internals, vm, network, {
        natNetwork: this.#options.natNetwork ?? 'default',
        hostOnlyNetwork: this.#options.hostOnlyNetwork ?? 'tandem-hostonly',
      });
    });
  }

  async state(vm: string): Promise<VmState> {
    return this.#queue.run(vm, () => this.#stateOf(vm));
  }

  async start(vm: string, options: StartOptions = {}): Promise<void> {
    return this.#queue.run(vm, async () => {
      await this.#requireState(vm, 'start', ['stopped', 'crashed', 'saved']);
      await this.#boot(vm, 'start', options);
    });
  }

  async restore(vm: string, options: StartOptions = {}): Promise<void> {
    return this.#queue.run(vm, async () => {
      await this.#requireState(vm, 'restore', ['saved']);
      await this.#boot(vm, 'restore', options);
    });
  }

  async stop(vm: string, options: StopOptions = {}): Promise<void> {
    return this.#queue.run(vm, async () => {
      const state = await this.#requireState(vm, 'stop', ['running', 'paused', 'stopping']);
      if (options.force) {
        await this.#own(vm, ['Shutdown', 'Stopped Destroyed'], () => this.#withDomain(vm, 'stop', (d) => d.destroy()));
        return;
      }
      await this.#own(vm, ['Shutdown', 'Stopped', 'Resumed Unpaused'], async () => {
        // A paused guest cannot see the ACPI power button.
        if (state === 'paused') await this.#withDomain(vm, 'stop', (d) => d.resume());
        await this.#withDomain(vm, 'stop', (d) => d.shutdown());
        const timeoutMs = options.timeoutMs ?? 60_000;
        const deadline = this.#clock.now() + timeoutMs;
        for (;;) {
          const info = await this.#withDomain(vm, 'stop', (d) => d.getInfo(), true);
          if (mapDomainState(info.state) === 'stopped') return;
          const left = deadline - this.#clock.now();
          if (left <= 0) break;
          await this.#clock.sleep(Math.min(100, left), options.signal);
        }
        if (options.forceAfterTimeout === false) {
          throw new TimeoutError(
            `VM "${vm}" did not shut down within ${timeoutMs} ms. Its guest may ignore ACPI; stop it with force: true.`,
            { details: { vm, timeoutMs, uri: this.uri } },
          );
        }
        await this.#withDomain(vm, 'stop', (d) => d.destroy()).catch((err: unknown) => {
          // It may have gone down on its own between the last look and the destroy.
          if (!TandemError.is(err, 'TANDEM_INVALID_STATE')) throw err;
        });
      });
    });
  }

  async suspend(vm: string): Promise<void> {
    return this.#queue.run(vm, async () => {
      await this.#requireState(vm, 'suspend', ['running']);
      await this.#own(vm, ['Suspended'], () => this.#withDomain(vm, 'suspend', (d) => d.suspend()));
    });
  }

  async resume(vm: string): Promise<void> {
    return this.#queue.run(vm, async () => {
      await this.#requireState(vm, 'resume', ['paused']);
      await this.#own(vm, ['Resumed', 'Started Wakeup'], () => this.#withDomain(vm, 'resume', (d) => d.resume()));
    });
  }

  async save(vm: string): Promise<void> {
    return this.#queue.run(vm, async () => {
      await this.#requireState(vm, 'save', ['running', 'paused']);
      await this.#own(vm, ['Suspended', 'Shutdown', 'Stopped Saved'], () =>
        this.#runVirsh({ operation: 'save', vm }, ['managedsave', '--domain', vm]),
      );
    });
  }

  async destroy(vm: string, options: { deleteDisks?: boolean } = {}): Promise<void> {
    return this.#queue.run(vm, async () => {
      const [info, xml] = await this.#withDomain(
        vm,
        'destroy',
        async (d) => [await d.getInfo(), await d.getXMLDesc(2)] as const,
        true,
      );
      if (mapDomainState(info.state) !== 'stopped') {
        await this.#own(vm, ['Shutdown', 'Stopped Destroyed'], () =>
          this.#withDomain(vm, 'destroy', (d) => d.destroy()),
        ).catch((err: unknown) => {
          if (!TandemError.is(err, 'TANDEM_INVALID_STATE')) throw err;
        });
      }
      const removeStorage = options.deleteDisks === true && this.#parsed.remote;
      // The binding's plain undefine is enough unless snapshots, a managed-save image or
      // storage removal need virsh's flags.
      const plain = removeStorage
        ? false
        : await this.#withDomain(vm, 'destroy', (d) => d.undefine()).then(
            () => true,
            () => false,
          );
      if (!plain) {
        const args = [
          'undefine',
          '--domain',
          vm,
          '--managed-save',
          '--snapshots-metadata',
          '--checkpoints-metadata',
          '--nvram',
        ];
        if (removeStorage) args.push('--remove-all-storage');
        await this.#runVirsh({ operation: 'destroy', vm }, args);
      }
      if (options.deleteDisks && !this.#parsed.remote) {
        for (const disk of readDomainFacts(xml).disks) {
          await unlink(disk.path).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          });
        }
      }
    });
  }

  /** Subscribes to what libvirt reports on its own (guest shutdown, QEMU killed). */
  watch(listener: (event: HypervisorEvent) => void): () => void {
    return this.#events.subscribe(listener);
  }

  /**
   * Subscribes to losing and regaining libvirtd (stopped, restarted, the SSH link to a remote
   * host dropped). While someone listens, libvirtd is called every `keepaliveMs` to see it is
   * there, and after a loss again with backoff (`reconnectMs` doubling up to `maxReconnectMs`)
   * until it answers. Meanwhile every call fails with a retryable `TANDEM_HOST` error saying
   * libvirtd is unreachable; the VMs keep running (QEMU does not depend on libvirtd), so their
   * states are for the caller to read again once `restored` arrives.
   */
  watchConnection(listener: (event: HypervisorConnectionEvent) => void): () => void {
    return this.#connection.subscribe(listener);
  }

  async close(): Promise<void> {
    this.#events.close();
    this.#connection.close();
    await this.#conn.close();
  }

  // ---- internals -------------------------------------------------------------------------

  async #boot(vm: string, operation: 'start' | 'restore', options: StartOptions): Promise<void> {
    const xml = await this.#withDomain(vm, operation, (d) => d.getXMLDesc(0), true);
    const facts = readDomainFacts(xml);
    await this.#own(vm, ['Started', 'Resumed'], () =>
      withDiskSecrets(this.#internals, vm, facts.disks, options.diskKeys, async () => {
        try {
          await this.#withDomain(vm, operation, (d) => d.create());
        } catch (err) {
          const network = await startNetworkIfInactive(this.#internals, err);
          if (!network) throw err;
          await this.#withDomain(vm, operation, (d) => d.create());
        }
      }),
    );
  }

  async #domainXml(spec: VmSpec, keptMacAddress?: string): Promise<string> {
    return buildDomainXml(spec, {
      virtType: await this.#resolveVirtType(),
      natNetwork: this.#options.natNetwork ?? 'default',
      hostOnlyNetwork: this.#options.hostOnlyNetwork ?? 'tandem-hostonly',
      ...(this.#options.arch ? { arch: this.#options.arch } : {}),
      ...(this.#options.machine ? { machine: this.#options.machine } : {}),
      ...(this.#options.networkBoot ? { networkBoot: true } : {}),
      ...(keptMacAddress ? { keptMacAddress } : {}),
    });
  }

  async #own<T>(vm: string, events: readonly string[], fn: () => Promise<T>): Promise<T> {
    const done = this.#events.expect(vm, events);
    try {
      return await fn();
    } finally {
      done();
    }
  }

  async #exists(vm: string): Promise<boolean> {
    try {
      await this.#withDomain(vm, 'define', (d) => d.getInfo(), true);
      return true;
    } catch (err) {
      if (TandemError.is(err, 'TANDEM_NOT_FOUND')) return false;
      throw err;
    }
  }

  async #stateOf(vm: string): Promise<VmState> {
    const info = await this.#withDomain(vm, 'state', (d) => d.getInfo(), true);
    const state = mapDomainState(info.state);
    return state === 'stopped' ? ((await this.#refineMany([vm])).get(vm) ?? 'stopped') : state;
  }

  async #requireState(vm: string, operation: string, allowed: readonly VmState[]): Promise<VmState> {
    const info = await this.#withDomain(vm, operation, (d) => d.getInfo(), true);
    let state = mapDomainState(info.state);
    // A shut-off VM is stopped, saved or crashed; look closer only when that decides.
    const allOff = allowed.includes('stopped') && allowed.includes('saved') && allowed.includes('crashed');
    if (state === 'stopped' && !allOff) state = (await this.#refineMany([vm])).get(vm) ?? 'stopped';
    if (!allowed.includes(state)) {
      throw new InvalidStateError(
        `Cannot ${operation} VM "${vm}": it is ${state}, and ${operation} needs it ${allowed.join(' or ')}.`,
        state,
        { details: { vm, operation, allowed, uri: this.uri } },
      );
    }
    return state;
  }

  /** Shut-off VMs: saved (managed-save image), crashed or stopped. */
  async #refineMany(vms: readonly string[]): Promise<Map<string, VmState>> {
    const out = new Map<string, VmState>();
    if (vms.length === 0) return out;
    const saved = await this.#call({ operation: 'state' }, true, async (hv) => {
      const doms = await hv.connectListAllDomains(ListFlags.MANAGEDSAVE);
      return new Set(await Promise.all(doms.map((d) => d.getName())));
    });
    const script = virshScript(vms.map((vm) => ['domstate', '--domain', vm, '--reason']));
    const result = await this.#virsh.script(script).catch(() => undefined);
    const lines = result && result.errors.length === 0 ? result.stdout.split('\n').filter((l) => l !== '') : [];
    vms.forEach((vm, i) =>
      out.set(vm, refineShutoff(lines.length === vms.length ? lines[i] : undefined, saved.has(vm))),
    );
    return out;
  }

  async #resolveVirtType(): Promise<'kvm' | 'qemu'> {
    const wanted = this.#options.virtType ?? 'auto';
    if (wanted !== 'auto') return wanted;
    this.#virtType ??= this.#virsh
      .run(['domcapabilities', '--virttype', 'kvm'])
      .then(() => 'kvm' as const)
      .catch(() => 'qemu' as const);
    return this.#virtType;
  }

  async #withDomain<T>(
    vm: string,
    operation: string,
    fn: (dom: NativeDomain) => Promise<T>,
    idempotent = false,
  ): Promise<T> {
    return this.#call({ operation, vm }, idempotent, async (hv) => fn(await hv.domainLookupByName(vm)));
  }

  async #call<T>(
    context: Omit<ErrorContext, 'uri'>,
    idempotent: boolean,
    fn: (hv: Awaited<ReturnType<LibvirtConnection['get']>>) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.#conn.use(fn, idempotent);
    } catch (err) {
      throw await this.#toError(err, context);
    }
  }

  async #runVirsh(context: Omit<ErrorContext, 'uri'>, args: readonly string[]): Promise<string> {
    try {
      return await this.#virsh.run(args);
    } catch (err) {
      throw await this.#toError(err, context);
    }
  }

  async #toError(err: unknown, context: Omit<ErrorContext, 'uri'>): Promise<TandemError> {
    if (TandemError.is(err)) return err;
    const message = err instanceof VirshFailure ? err.libvirtMessage : err instanceof Error ? err.message : String(err);
    if (err instanceof VirshFailure && classifyLibvirtMessage(message) === 'connection') this.#connection.lost(message);
    const full = { ...context, uri: this.uri };
    const mapped = libvirtError(message, full, { cause: err });
    if (mapped.code !== 'TANDEM_INVALID_STATE' || !context.vm) return mapped;
    // libvirt said the state was wrong (a race with another client): name the state it is in now.
    const current = await this.#stateOf(context.vm).catch(() => 'unknown');
    return libvirtError(message, full, { cause: err, currentState: current });
  }
}

async function describe(d: NativeDomain): Promise<VmInfo> {
  const [name, id, info, xml] = await Promise.all([d.getName(), d.getUUIDString(), d.getInfo(), d.getXMLDesc(2)]);
  return {
    name,
    id,
    state: mapDomainState(info.state),
    memoryMiB: Math.floor(info.maxMem / 1024),
    cpus: info.nrVirtCpu,
    // The persistent definition: what the next start uses, and what an update compares.
    ...definedView(readDomainFacts(xml)),
  };
}
