import {
  KeyedQueue,
  requireDirectKernelBoot,
  LocalRunner,
  SshRunner,
  TandemError,
  UnsupportedCapabilityError,
  type AdapterCapabilities,
  type CommandRunner,
  type HypervisorAdapter,
  type ProbeResult,
  type SeamlessOps,
  type SnapshotOps,
  type SshHostOptions,
  type StartOptions,
  type StopOptions,
  type VmInfo,
  type VmSpec,
  type VmState,
} from '@tandem/core';
import { asList } from './parse.js';
import { MODULE_FIX, PRIVILEGE_FIX, PowerShellCli } from './pwsh.js';
import { HyperVSeamless, type RdpClient } from './seamless.js';
import { HyperVSnapshots } from './snapshots.js';
import { liveNetworkValues, setLiveNetwork } from './live-network.js';
import { allowed, checkVmName, defineValues, toRemovedVm, toVmInfo, type HyperVContext } from './vm.js';

/** Options of {@link hyperv}. */
export interface HyperVOptions {
  /** Where PowerShell runs (default: this machine). */
  readonly runner?: CommandRunner;
  /** Shorthand for a runner on a Windows host over SSH (set `shell` to its OpenSSH default shell). */
  readonly ssh?: SshHostOptions;
  /** The PowerShell program: `powershell.exe` (Windows PowerShell 5.1, the default) or `pwsh`. */
  readonly powershell?: string;
  /** Extra environment for PowerShell. */
  readonly env?: Readonly<Record<string, string>>;
  /** Time allowed for one PowerShell call (default 120 s). */
  readonly timeoutMs?: number;
  /** The virtual switch for `nat` networking (default `Default Switch`). */
  readonly defaultSwitch?: string;
  /** The RDP client for seamless windows (default mstsc on Windows, xfreerdp elsewhere). */
  readonly rdpClient?: RdpClient;
  /** Runs the RDP client (default: this machine). */
  readonly clientRunner?: CommandRunner;
  /** The Hyper-V host as this machine's RDP client reaches it (default: the SSH host, or localhost). */
  readonly hostAddress?: string;
  /** Directory for .rdp files (default the system temp directory). */
  readonly rdpDir?: string;
  /** Receives warnings. */
  readonly onWarning?: (message: string) => void;
}

/** A scalar from JSON as text (empty for anything else). */
function text(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/** How long a destroy waits for Hyper-V to merge a VM's checkpoints into its disks. */
const MERGE_TIMEOUT_SECONDS = 3600;

/** What the Hyper-V adapter supports. */
export const HYPERV_CAPABILITIES: AdapterCapabilities = {
  snapshots: { live: true, deleteWithChildren: true },
  suspend: { pause: true, save: true },
  seamlessWindows: ['rdp-remoteapp', 'enhanced-session'],
  guestChannel: [],
  sharedFolders: false,
  usb: false,
  diskEncryption: false,
  remoteHost: true,
  liveNetwork: true,
};

/**
 * The Hyper-V adapter: drives the Hyper-V PowerShell module (Windows PowerShell 5.1 or
 * PowerShell 7), on this machine or on a Windows host over SSH. Every operation is one
 * PowerShell process running a fixed script; values reach it on stdin as data.
 */
export class HyperVAdapter implements HypervisorAdapter {
  readonly name = 'hyperv';
  readonly version = '0.1.0';
  readonly capabilities = HYPERV_CAPABILITIES;
  readonly snapshots: SnapshotOps;
  readonly seamless: SeamlessOps;
  readonly #ctx: HyperVContext;
  readonly #ownsRunner: boolean;
  readonly #defaultSwitch: string;

  constructor(options: HyperVOptions = {}) {
    const runner = options.runner ?? (options.ssh ? new SshRunner(options.ssh) : new LocalRunner());
    this.#ownsRunner = !options.runner;
    this.#defaultSwitch = options.defaultSwitch ?? 'Default Switch';
    this.#ctx = {
      ps: new PowerShellCli(
        runner,
        options.powershell ?? 'powershell.exe',
        options.env ?? {},
        options.timeoutMs ?? 120_000,
      ),
      serial: new KeyedQueue(),
      warn: (m) => options.onWarning?.(m),
    };
    this.snapshots = new HyperVSnapshots(this.#ctx);
    this.seamless = new HyperVSeamless(this.#ctx, {
      clientRunner: options.clientRunner ?? new LocalRunner(),
      client: options.rdpClient ?? { kind: process.platform === 'win32' ? 'mstsc' : 'freerdp' },
      hostAddress: options.hostAddress ?? options.ssh?.host ?? 'localhost',
      ...(options.rdpDir ? { rdpDir: options.rdpDir } : {}),
    });
  }

  /** The runner PowerShell runs through. */
  get runner(): CommandRunner {
    return this.#ctx.ps.runner;
  }

  async probe(): Promise<ProbeResult> {
    const where = this.#ctx.ps.runner.description;
    let o: Record<string, unknown>;
    try {
      o = ((await this.#ctx.ps.call('probe', {}, 'Probe Hyper-V')) ?? {}) as Record<string, unknown>;
    } catch (err) {
      const reason = (err as Error).message;
      if (TandemError.is(err, 'TANDEM_AUTH')) return { usable: false, adapter: this.name, reason, fix: PRIVILEGE_FIX };
      if (TandemError.is(err, 'TANDEM_HOST') && /module/.test(reason))
        return { usable: false, adapter: this.name, reason, fix: MODULE_FIX };
      return {
        usable: false,
        adapter: this.name,
        reason: `PowerShell cannot run Hyper-V commands on ${where}: ${reason}`,
        fix: `Check that ${this.#ctx.ps.path} exists there (set the powershell option), that Hyper-V is enabled, and that the account may use it.`,
      };
    }
    if (o['IsAdministrator'] !== true && o['IsHyperVAdministrator'] !== true) {
      return {
        usable: false,
        adapter: this.name,
        reason: `The account on ${where} is neither an administrator nor in Hyper-V Administrators.`,
        fix: PRIVILEGE_FIX,
      };
    }
    const memoryBytes = Number(o['MemoryCapacity'] ?? 0);
    return {
      usable: true,
      adapter: this.name,
      hypervisorVersion: text(o['OSVersion']),
      host: {
        memoryMiB: Math.floor(memoryBytes / (1024 * 1024)),
        cpus: Number(o['LogicalProcessorCount'] ?? 0),
        ...(typeof o['ComputerName'] === 'string' ? { hostname: o['ComputerName'] } : {}),
      },
      details: {
        powershell: text(o['PSVersion']),
        hypervModule: text(o['ModuleVersion']),
        host: where,
      },
    };
  }

  async list(): Promise<VmInfo[]> {
    return asList(await this.#ctx.ps.call('list', {}, 'List Hyper-V VMs')).map(toVmInfo);
  }

  async define(spec: VmSpec): Promise<VmInfo> {
    requireDirectKernelBoot(this, spec);
    const values = defineValues(spec, this.#defaultSwitch);
    return this.#ctx.serial.run(spec.name, async () =>
      toVmInfo((await this.#ctx.ps.call('define', values, `Create VM "${spec.name}"`)) as Record<string, unknown>),
    );
  }

  async state(vm: string): Promise<VmState> {
    return (await this.#vmCall(vm, 'get', {}, 'Read')).state;
  }

  async start(vm: string, options: StartOptions = {}): Promise<void> {
    if (options.diskKeys?.size) {
      throw new UnsupportedCapabilityError(
        'Hyper-V takes no disk keys at start: it has no host-side disk encryption. Encrypt inside the guest instead (BitLocker with a virtual TPM); see docs/encryption.md.',
        {
          details: { capability: 'diskEncryption' },
        },
      );
    }
    await this.#vmCall(vm, 'start', { allowed: allowed(['stopped', 'crashed', 'saved']) }, 'Start');
  }

  async stop(vm: string, options: StopOptions = {}): Promise<void> {
    checkVmName(vm);
    return this.#ctx.serial.run(vm, async () => {
      const ps = this.#ctx.ps;
      const current = toVmInfo((await ps.call('get', { name: vm }, `Read "${vm}"`)) as Record<string, unknown>);
      const ok = allowed(['running', 'paused', 'saved']);
      if (current.state === 'saved') {
        await ps.call('stop', { name: vm, mode: 'discard', allowed: ok }, `Discard the saved state of "${vm}"`);
        return;
      }
      if (options.force || current.state === 'paused') {
        await ps.call('stop', { name: vm, mode: 'turnoff', allowed: ok }, `Turn off "${vm}"`);
        return;
      }
      const timeoutMs = options.timeoutMs ?? 60_000;
      try {
        await ps.call(
          'stop',
          { name: vm, mode: 'shutdown', timeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)), allowed: ok },
          `Shut down "${vm}"`,
          timeoutMs + 60_000,
        );
      } catch (err) {
        if (!TandemError.is(err, 'TANDEM_TIMEOUT') || options.forceAfterTimeout === false) throw err;
        await ps.call(
          'stop',
          { name: vm, mode: 'turnoff', allowed: allowed(['running', 'paused', 'stopping', 'starting']) },
          `Turn off "${vm}"`,
        );
      }
    });
  }

  async suspend(vm: string): Promise<void> {
    await this.#vmCall(vm, 'suspend', { allowed: allowed(['running']) }, 'Pause');
  }

  async resume(vm: string): Promise<void> {
    await this.#vmCall(vm, 'resume', { allowed: allowed(['paused']) }, 'Resume');
  }

  async save(vm: string): Promise<void> {
    await this.#vmCall(vm, 'save', { allowed: allowed(['running', 'paused']) }, 'Save');
  }

  async restore(vm: string, options: StartOptions = {}): Promise<void> {
    if (options.diskKeys?.size)
      throw new UnsupportedCapabilityError(
        'Hyper-V takes no disk keys: it has no host-side disk encryption. Encrypt inside the guest instead (BitLocker with a virtual TPM); see docs/encryption.md.',
        {
          details: { capability: 'diskEncryption' },
        },
      );
    await this.#vmCall(vm, 'start', { allowed: allowed(['saved']) }, 'Restore');
  }

  /**
   * Turns the VM off and removes it. With `deleteDisks` its disks and checkpoint files go too.
   * Without, its checkpoints are removed first and the removal waits until Hyper-V has merged
   * their .avhdx files into the disks (never removing the VM while the chain is in use), so
   * the .vhdx files it keeps hold the VM's current state, not the state of its first
   * checkpoint; a warning names the checkpoints merged.
   */
  async destroy(vm: string, options: { deleteDisks?: boolean } = {}): Promise<void> {
    checkVmName(vm);
    const removed = toRemovedVm(
      await this.#ctx.serial.run(vm, () =>
        this.#ctx.ps.call(
          'destroy',
          { name: vm, deleteDisks: !!options.deleteDisks, mergeTimeoutSeconds: MERGE_TIMEOUT_SECONDS },
          `Remove "${vm}"`,
          (MERGE_TIMEOUT_SECONDS + 120) * 1000,
        ),
      ),
    );
    if (removed.merged.length) {
      this.#ctx.warn(
        `Removed VM "${vm}" after merging its checkpoints (${removed.checkpoints.join(', ')}) into ${removed.disks.join(', ')}; those disks hold its last state.`,
      );
    }
  }

  /**
   * Switches a running or paused VM's network without a restart: its first adapter is connected
   * to the mode's virtual switch (Connect-VMNetworkAdapter; `nat` uses the default switch unless
   * `bridge` names one) or disconnected for `none` (Disconnect-VMNetworkAdapter). A VM defined
   * with `none` has no adapter and gets one (Add-VMNetworkAdapter; generation 2 VMs take it
   * while running). Hyper-V keeps it for the next start. A stopped or saved VM is
   * InvalidStateError, a different `macAddress` InvalidInputError, an unknown switch NotFoundError.
   *
   * @example
   * ```ts
   * await adapter.setNetwork('tandem-erp', { mode: 'host-only', bridge: 'Internal' });
   * ```
   */
  async setNetwork(vm: string, network: VmSpec['network']): Promise<void> {
    checkVmName(vm);
    const values = liveNetworkValues(vm, network, this.#defaultSwitch);
    return this.#ctx.serial.run(vm, () => setLiveNetwork(this.#ctx, values, vm));
  }

  async close(): Promise<void> {
    if (this.#ownsRunner) await this.#ctx.ps.runner.close();
  }

  async #vmCall(
    vm: string,
    op: 'get' | 'start' | 'suspend' | 'resume' | 'save',
    values: Record<string, string>,
    verb: string,
  ): Promise<VmInfo> {
    checkVmName(vm);
    return this.#ctx.serial.run(vm, async () =>
      toVmInfo((await this.#ctx.ps.call(op, { name: vm, ...values }, `${verb} "${vm}"`)) as Record<string, unknown>),
    );
  }
}
