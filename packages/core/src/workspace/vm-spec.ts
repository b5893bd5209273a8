import { isAbsolute, resolve, win32 } from 'node:path';
import type { VmSpec } from '../adapter/types.js';
import type { MemoryRule, Workspace } from './schema.js';

/**
 * The VM's memory on this host: a fixed size, or `hostFraction` of the host's RAM clamped to
 * `[minMiB, maxMiB]`, rounded down to a multiple of 4 MiB (MED-V sized memory the same way).
 */
export function computeMemoryMiB(rule: MemoryRule, hostMemoryMiB: number): number {
  if ('fixedMiB' in rule) return rule.fixedMiB;
  const wanted = Math.floor((hostMemoryMiB * rule.hostFraction) / 4) * 4;
  return Math.min(rule.maxMiB, Math.max(rule.minMiB, wanted));
}

/** The name Tandem gives a workspace's VM on the hypervisor. */
export function vmNameFor(workspace: Workspace): string {
  return `tandem-${workspace.metadata.name}`;
}

/** Options of {@link buildVmSpec}. */
export interface VmSpecOptions {
  /** The host's RAM, from the adapter's probe. */
  hostMemoryMiB: number;
  /** Directory relative image paths resolve against (the workspace file's). */
  baseDir: string;
  /** Override the VM name (default `tandem-<workspace name>`). */
  vmName?: string;
  /** Override the disk path (an image installed by `tandem pull`, say). */
  diskPath?: string;
}

/** Builds the adapter's VM spec from a workspace, applying the hardware rules for this host. */
export function buildVmSpec(workspace: Workspace, options: VmSpecOptions): VmSpec {
  const { spec } = workspace;
  const source = options.diskPath ?? spec.image.source;
  // A Windows path is absolute wherever this runs: the hypervisor may be a Hyper-V or VirtualBox
  // host driven over SSH from Linux or macOS.
  const local = (p: string): string => (isAbsolute(p) || win32.isAbsolute(p) ? p : resolve(options.baseDir, p));
  const path = local(source);
  return {
    name: options.vmName ?? vmNameFor(workspace),
    memoryMiB: computeMemoryMiB(spec.hardware.memory, options.hostMemoryMiB),
    cpus: spec.hardware.cpus,
    disks: [
      {
        path,
        format: spec.image.format,
        ...(spec.image.encryption ? { encryption: { keyId: spec.image.encryption.keyId } } : {}),
      },
    ],
    network: {
      mode: spec.network.mode,
      ...(spec.network.bridge ? { bridge: spec.network.bridge } : {}),
      ...(spec.network.macAddress ? { macAddress: spec.network.macAddress } : {}),
    },
    graphics: { kind: spec.guestOs === 'windows' ? 'rdp' : 'vnc' },
    osFamily: spec.guestOs,
    guestChannel: spec.hardware.guestChannel,
    ...(spec.boot
      ? {
          boot: {
            kernel: local(spec.boot.kernel),
            ...(spec.boot.initrd ? { initrd: local(spec.boot.initrd) } : {}),
            ...(spec.boot.cmdline !== undefined ? { cmdline: spec.boot.cmdline } : {}),
          },
        }
      : {}),
    labels: { 'tandem.workspace': workspace.metadata.name, 'tandem.version': workspace.metadata.version },
  };
}
