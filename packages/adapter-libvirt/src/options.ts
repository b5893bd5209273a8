import type { Clock } from '@tandem/core';

/** FreeRDP, for RemoteApp launches into Windows guests. */
export interface FreeRdpOptions {
  /** The FreeRDP client (default `xfreerdp`; `xfreerdp3`, `wlfreerdp`, `sdl-freerdp` also work). */
  readonly path?: string;
  /**
   * Command-line dialect: `v2` (`/app:<path> /app-cmd:...`) or `v3` (`/app:program:...,cmd:...`).
   * Default: asked from the client's `/version` once.
   */
  readonly syntax?: 'v2' | 'v3';
  /** RDP port in the guest (default 3389). */
  readonly port?: number;
  /** Server certificate handling: `tofu` (trust on first use, default) or `ignore`. */
  readonly certificate?: 'tofu' | 'ignore';
}

/** Xpra, for seamless windows from Linux guests (over SSH to the guest). */
export interface XpraOptions {
  /** The xpra client (default `xpra`). */
  readonly path?: string;
  /** SSH port in the guest (default 22). */
  readonly sshPort?: number;
  /**
   * Attach to an Xpra server already running in the guest (started by the guest agent) on this
   * TCP port of the guest's address, instead of starting one over SSH.
   */
  readonly attachPort?: number;
}

/** Options of {@link libvirt}. Every field is optional. */
export interface LibvirtOptions {
  /**
   * libvirt connection URI: `qemu:///system` (default, or `$TANDEM_LIBVIRT_URI`),
   * `qemu:///session`, `qemu+ssh://user@host/system`, `qemu+libssh://...?known_hosts=...`.
   */
  readonly uri?: string;
  /** virsh binary (default `virsh`), used for what the binding lacks (snapshots, secrets, events). */
  readonly virsh?: string;
  /** qemu-img binary (default `qemu-img`), used to create encrypted disks. */
  readonly qemuImg?: string;
  /** `kvm`, `qemu` (software emulation) or `auto` (default: kvm when the host offers it). */
  readonly virtType?: 'kvm' | 'qemu' | 'auto';
  /** libvirt network for `nat` (default `default`); started on demand. */
  readonly natNetwork?: string;
  /** libvirt network for `host-only` (default `tandem-hostonly`); created isolated on demand. */
  readonly hostOnlyNetwork?: string;
  /** Guest architecture (default `x86_64`). */
  readonly arch?: string;
  /** Machine type (default: libvirt's default). */
  readonly machine?: string;
  /** Let VMs boot from the network (PXE) when their disk has no OS, for network provisioning (default false). */
  readonly networkBoot?: boolean;
  /** LUKS key-derivation time for new encrypted disks, ms (default: qemu-img's, 2000). */
  readonly luksIterTimeMs?: number;
  readonly freerdp?: FreeRdpOptions;
  readonly xpra?: XpraOptions;
  /** Time source for timeouts and event timestamps (default: the system clock). */
  readonly clock?: Clock;
  /**
   * While someone listens through `watchConnection()`: how often libvirtd is called to see it is
   * still there, ms (default 5000).
   */
  readonly keepaliveMs?: number;
  /** A keep-alive call unanswered this long counts as libvirtd lost, ms (default 15000). */
  readonly keepaliveTimeoutMs?: number;
  /** After libvirtd was lost: the first wait before reconnecting, doubled per failed try, ms (default 500). */
  readonly reconnectMs?: number;
  /** The longest wait between reconnection tries, ms (default 30000). */
  readonly maxReconnectMs?: number;
}

/** The URI used when none is given: `$TANDEM_LIBVIRT_URI`, else `qemu:///system`. */
export function defaultUri(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['TANDEM_LIBVIRT_URI'];
  return fromEnv && fromEnv.trim() !== '' ? fromEnv.trim() : 'qemu:///system';
}
