import {
  KeyedQueue,
  requireDirectKernelBoot,
  LocalRunner,
  SshRunner,
  TandemError,
  TimeoutError,
  ConflictError,
  systemClock,
  type AdapterCapabilities,
  type Clock,
  type CommandRunner,
  type DiskEncryptionOps,
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
import { checkSpec, defineMachine } from './define.js';
import { VBoxDiskEncryption, addDiskPasswords } from './disk-encryption.js';
import {
  checkVmName,
  expectState,
  findMachine,
  listMachines,
  readMachine,
  waitForState,
  type Machine,
  type VBoxContext,
} from './machine.js';
import { parseGuestProperty, parseHostInfo, parseVersion, type VBoxVersion } from './parse.js';
import { VBoxSeamless } from './seamless.js';
import { VBoxSnapshots } from './snapshots.js';
import { unregisterKeepingDisks } from './unregister.js';
import { VBoxManageCli } from './vboxmanage.js';
import { checkLiveNetwork, setLiveNetwork } from './live-network.js';

/** Options of {@link virtualbox}. */
export interface VirtualBoxOptions {
  /** Where VBoxManage runs (default: this machine). */
  readonly runner?: CommandRunner;
  /** Shorthand for a runner on another machine over SSH. */
  readonly ssh?: SshHostOptions;
  /** The VBoxManage program (default `VBoxManage`, found on PATH). */
  readonly vboxManage?: string;
  /** Extra environment for VBoxManage, such as `VBOX_USER_HOME`. `LANG=C` is always set. */
  readonly env?: Readonly<Record<string, string>>;
  /** Time allowed for one VBoxManage command (default 120 s). */
  readonly timeoutMs?: number;
  /** Clock for graceful-stop waits (default the system clock). */
  readonly clock?: Clock;
  /** How often a graceful stop checks whether the guest has powered off (default 500 ms). */
  readonly pollIntervalMs?: number;
  /** Receives warnings (a newer VirtualBox than tested, inaccessible VMs). Default: none. */
  readonly onWarning?: (message: string) => void;
}

/** What the VirtualBox adapter supports. */
export const VIRTUALBOX_CAPABILITIES: AdapterCapabilities = {
  snapshots: { live: true, deleteWithChildren: true },
  suspend: { pause: true, save: true },
  seamlessWindows: ['vbox-seamless'],
  guestChannel: [],
  sharedFolders: false,
  usb: false,
  diskEncryption: true,
  remoteHost: true,
  liveNetwork: true,
};

/** The VirtualBox versions this adapter was built and tested against. */
export const TESTED_VERSIONS: readonly string[] = ['6.1', '7.0', '7.1'];

const ADAPTER_VERSION = '0.1.0';

/**
 * The VirtualBox adapter: drives VBoxManage on this machine or on another one over SSH.
 * VMs are found by exact name and then addressed by UUID; every call on one VM runs after the
 * previous one finished.
 */
export class VirtualBoxAdapter implements HypervisorAdapter {
  readonly name = 'virtualbox';
  readonly version = ADAPTER_VERSION;
  readonly capabilities = VIRTUALBOX_CAPABILITIES;
  readonly snapshots: SnapshotOps;
  readonly seamless: SeamlessOps;
  readonly diskEncryption: DiskEncryptionOps;
  readonly #ctx: VBoxContext;
  readonly #ownsRunner: boolean;
  #version: VBoxVersion | undefined;

  constructor(options: VirtualBoxOptions = {}) {
    const runner = options.runner ?? (options.ssh ? new SshRunner(options.ssh) : new LocalRunner());
    this.#ownsRunner = !options.runner;
    const cli = new VBoxManageCli(
      runner,
      options.vboxManage ?? 'VBoxManage',
      options.env ?? {},
      options.timeoutMs ?? 120_000,
    );
    this.#ctx = {
      cli,
      serial: new KeyedQueue(),
      clock: options.clock ?? systemClock,
      pollIntervalMs: options.pollIntervalMs ?? 500,
      uuids: new Map(),
      warn: (m) => options.onWarning?.(m),
    };
    this.snapshots = new VBoxSnapshots(this.#ctx);
    this.seamless = new VBoxSeamless(this.#ctx, () => this.#detectVersion());
    this.diskEncryption = new VBoxDiskEncryption(this.#ctx);
  }

  /** The runner VBoxManage runs through. */
  get runner(): CommandRunner {
    return this.#ctx.cli.runner;
  }

  async probe(): Promise<ProbeResult> {
    const { cli } = this.#ctx;
    const fixInstall = `Install VirtualBox ${TESTED_VERSIONS.join(', ')} or later on ${cli.runner.description}, or set the vboxManage option to its path.`;
    let stdout: string;
    try {
      const r = await cli.exec(['--version']);
      if (r.exitCode !== 0)
        return {
          usable: false,
          adapter: this.name,
          reason: `VBoxManage --version failed: ${(r.stderr || r.stdout).trim()}`,
          fix: fixInstall,
        };
      stdout = r.stdout;
    } catch (err) {
      return {
        usable: false,
        adapter: this.name,
        reason: `VBoxManage cannot run: ${(err as Error).message}`,
        fix: fixInstall,
      };
    }
    const { version, warnings } = parseVersion(stdout);
    if (!version)
      return {
        usable: false,
        adapter: this.name,
        reason: `VBoxManage --version printed no version (${stdout.trim()})`,
        fix: fixInstall,
      };
    if (warnings.some((w) => /vboxdrv|kernel module/i.test(w))) {
      return {
        usable: false,
        adapter: this.name,
        reason: `VirtualBox ${version.raw} is installed but its kernel driver is not loaded: ${warnings.join(' ')}`,
        fix: 'Run sudo /sbin/vboxconfig (install the kernel headers first), or reboot after a kernel update.',
      };
    }
    if (version.major < 6 || (version.major === 6 && version.minor < 1)) {
      return {
        usable: false,
        adapter: this.name,
        reason: `VirtualBox ${version.raw} is older than 6.1, the oldest version this adapter supports`,
        fix: fixInstall,
      };
    }
    this.#version = version;
    const notes = [...warnings];
    if (!TESTED_VERSIONS.includes(`${version.major}.${version.minor}`)) {
      const note = `VirtualBox ${version.raw} is newer than the versions this adapter was tested with (${TESTED_VERSIONS.join(', ')}); continuing, but report problems.`;
      notes.push(note);
      this.#ctx.warn(note);
    }
    let host: { cpus: number; memoryMiB: number; os?: string };
    try {
      host = parseHostInfo((await cli.run(['list', 'hostinfo'], 'Read host information')).stdout);
    } catch (err) {
      return {
        usable: false,
        adapter: this.name,
        reason: `VBoxManage list hostinfo failed: ${(err as Error).message}`,
        fix: fixInstall,
      };
    }
    return {
      usable: true,
      adapter: this.name,
      hypervisorVersion: version.raw,
      host: { memoryMiB: host.memoryMiB, cpus: host.cpus },
      details: { vboxManage: cli.path, host: cli.runner.description, ...(host.os ? { os: host.os } : {}) },
      ...(notes.length ? { warnings: notes } : {}),
    };
  }

  async list(): Promise<VmInfo[]> {
    const out: VmInfo[] = [];
    for (const m of await listMachines(this.#ctx)) {
      if (m.inaccessible) {
        this.#ctx.warn(
          `VirtualBox lists an inaccessible VM {${m.uuid}} (its settings file is missing or unreadable); it is left out.`,
        );
        continue;
      }
      try {
        const info = await readMachine(this.#ctx, m.name, m.uuid);
        out.push(toVmInfo(info));
      } catch (err) {
        // A VM unregistered between the two commands is simply gone.
        if (!TandemError.is(err, 'TANDEM_NOT_FOUND')) throw err;
      }
    }
    return out;
  }

  async define(spec: VmSpec): Promise<VmInfo> {
    requireDirectKernelBoot(this, spec);
    checkVmName(spec.name);
    checkSpec(spec);
    return this.#ctx.serial.run(spec.name, async () => {
      if ((await listMachines(this.#ctx)).some((m) => m.name === spec.name)) {
        throw new ConflictError(
          `VirtualBox already has a VM named "${spec.name}". Destroy it first or pick another name.`,
          {
            details: { vm: spec.name },
          },
        );
      }
      return defineMachine(this.#ctx, spec);
    });
  }

  async state(vm: string): Promise<VmState> {
    return this.#onVm(vm, async (m) => m.state);
  }

  async start(vm: string, options: StartOptions = {}): Promise<void> {
    return this.#onVm(vm, async (m) => {
      expectState(m, ['stopped', 'crashed', 'saved'], 'start');
      await this.#startvm(m, options);
    });
  }

  async stop(vm: string, options: StopOptions = {}): Promise<void> {
    return this.#onVm(vm, async (m) => {
      expectState(m, ['running', 'paused', 'saved'], 'stop');
      const { cli } = this.#ctx;
      if (m.state === 'saved') {
        await cli.run(['discardstate', m.uuid], `Discard the saved state of "${vm}"`);
        return;
      }
      if (options.force || m.state === 'paused') {
        await cli.run(['controlvm', m.uuid, 'poweroff'], `Power off "${vm}"`);
        return;
      }
      await cli.run(['controlvm', m.uuid, 'acpipowerbutton'], `Ask "${vm}" to shut down`);
      const timeoutMs = options.timeoutMs ?? 60_000;
      const after = await waitForState(this.#ctx, m, ['stopped'], timeoutMs, options.signal);
      if (after.state === 'stopped') return;
      if (options.forceAfterTimeout === false) {
        throw new TimeoutError(
          `"${vm}" did not shut down within ${timeoutMs} ms. Stop it with force, or allow more time.`,
          {
            details: { vm, timeoutMs, state: after.state },
          },
        );
      }
      await cli.run(['controlvm', m.uuid, 'poweroff'], `Power off "${vm}"`);
    });
  }

  async suspend(vm: string): Promise<void> {
    return this.#onVm(vm, async (m) => {
      expectState(m, ['running'], 'suspend');
      await this.#ctx.cli.run(['controlvm', m.uuid, 'pause'], `Pause "${vm}"`);
    });
  }

  async resume(vm: string): Promise<void> {
    return this.#onVm(vm, async (m) => {
      expectState(m, ['paused'], 'resume');
      await this.#ctx.cli.run(['controlvm', m.uuid, 'resume'], `Resume "${vm}"`);
    });
  }

  async save(vm: string): Promise<void> {
    return this.#onVm(vm, async (m) => {
      expectState(m, ['running', 'paused'], 'save');
      await this.#ctx.cli.run(['controlvm', m.uuid, 'savestate'], `Save the state of "${vm}"`);
    });
  }

  async restore(vm: string, options: StartOptions = {}): Promise<void> {
    return this.#onVm(vm, async (m) => {
      expectState(m, ['saved'], 'restore');
      await this.#startvm(m, options);
    });
  }

  /**
   * Powers the VM off and removes it. With `deleteDisks` every image it refers to goes too
   * (`unregistervm --delete`). Without, its snapshots are deleted first (VirtualBox merges them,
   * so the disks hold the VM's current state), every medium is detached, and then the settings
   * file, logs and folder are deleted: the name is free for a new `define`, no disk is deleted.
   */
  async destroy(vm: string, options: { deleteDisks?: boolean } = {}): Promise<void> {
    return this.#onVm(vm, async (m) => {
      const { cli } = this.#ctx;
      if (m.state === 'running' || m.state === 'paused' || m.state === 'stopping' || m.state === 'starting') {
        await cli.run(['controlvm', m.uuid, 'poweroff'], `Power off "${vm}"`);
      } else if (m.state === 'saved') {
        await cli.run(['discardstate', m.uuid], `Discard the saved state of "${vm}"`);
      }
      if (options.deleteDisks) await cli.run(['unregistervm', m.uuid, '--delete'], `Unregister "${vm}"`);
      else await unregisterKeepingDisks(this.#ctx, m);
      this.#ctx.uuids.delete(vm);
    });
  }

  /**
   * Switches a running or paused VM's network without a restart (`controlvm nic1 ...` and
   * `setlinkstate1`); VirtualBox saves it in the VM's settings, so the next start keeps it.
   * `none` keeps the card with its cable out. A stopped or saved VM is InvalidStateError, as is a
   * VM defined with `none` (its card is disabled, and VirtualBox cannot enable one while the VM
   * runs); a different `macAddress` is InvalidInputError.
   *
   * @example
   * ```ts
   * await adapter.setNetwork('tandem-erp', { mode: 'host-only', bridge: 'vboxnet0' });
   * ```
   */
  async setNetwork(vm: string, network: VmSpec['network']): Promise<void> {
    checkVmName(vm);
    checkLiveNetwork(network);
    return this.#onVm(vm, (m) => setLiveNetwork(this.#ctx, m, network));
  }

  /** The guest's IPv4 address as the Guest Additions report it, or null when they report none. */
  async guestAddress(vm: string, nic = 0): Promise<string | null> {
    return this.#onVm(vm, async (m) => {
      const r = await this.#ctx.cli.run(
        ['guestproperty', 'get', m.uuid, `/VirtualBox/GuestInfo/Net/${nic}/V4/IP`],
        `Read the address of "${vm}"`,
      );
      return parseGuestProperty(r.stdout);
    });
  }

  /** The VirtualBox version (probing once if needed). */
  async #detectVersion(): Promise<VBoxVersion | undefined> {
    if (!this.#version) {
      const r = await this.#ctx.cli.exec(['--version']);
      this.#version = parseVersion(r.stdout).version ?? undefined;
    }
    return this.#version;
  }

  async close(): Promise<void> {
    if (this.#ownsRunner) await this.#ctx.cli.runner.close();
  }

  async #startvm(m: Machine, options: StartOptions): Promise<void> {
    const type = options.display === 'window' ? 'gui' : 'headless';
    await this.#ctx.cli.run(
      ['startvm', m.uuid, `--type=${type}`],
      `Start "${m.name}"`,
      options.signal ? { signal: options.signal } : {},
    );
    if (options.diskKeys?.size) await addDiskPasswords(this.#ctx, m, options.diskKeys);
  }

  async #onVm<T>(vm: string, task: (m: Machine) => Promise<T>): Promise<T> {
    checkVmName(vm);
    return this.#ctx.serial.run(vm, async () => task(await findMachine(this.#ctx, vm)));
  }
}

function toVmInfo(m: Machine): VmInfo {
  const memory = Number(m.info.values.get('memory'));
  const cpus = Number(m.info.values.get('cpus'));
  return {
    name: m.name,
    id: m.uuid,
    state: m.state,
    ...(Number.isFinite(memory) && memory > 0 ? { memoryMiB: memory } : {}),
    ...(Number.isFinite(cpus) && cpus > 0 ? { cpus } : {}),
  };
}

export { toVmInfo };
