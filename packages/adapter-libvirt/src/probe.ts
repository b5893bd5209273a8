import { TandemError, type ProbeResult } from '@tandem/core';
import { BINDING_FIX, loadBinding, type BindingLoad } from './binding.js';
import type { LibvirtConnection } from './connection.js';
import { VirshFailure, type Virsh } from './virsh/runner.js';

const DAEMON_FIX =
  'Start libvirtd (systemctl start libvirtd; without systemd: /usr/sbin/virtlogd -d && /usr/sbin/libvirtd -d). For qemu:///system run as root or as a member of the libvirt group; for a remote URI check SSH access.';

/** The libvirt adapter's probe: binding, daemon, versions, host facts. Never throws. */
export async function probeLibvirt(
  conn: LibvirtConnection,
  virsh: Virsh,
  virtType: () => Promise<'kvm' | 'qemu'>,
  binding: BindingLoad | Promise<BindingLoad> = loadBinding(),
): Promise<ProbeResult> {
  const adapter = 'libvirt';
  const loaded = await binding;
  if (!loaded.ok) {
    return {
      usable: false,
      adapter,
      reason: `The libvirt binding @unraid/libvirt is not installed or its native part is not built (${loaded.reason}).`,
      fix: BINDING_FIX,
    };
  }
  let hv;
  try {
    hv = await conn.get();
  } catch (err) {
    const detail = TandemError.is(err) ? err.details['libvirtMessage'] : undefined;
    const message = typeof detail === 'string' ? detail : (err as Error).message;
    return { usable: false, adapter, reason: `libvirtd is unreachable at ${conn.uri}: ${message}`, fix: DAEMON_FIX };
  }
  try {
    const [node, hostname] = await Promise.all([hv.nodeGetInfo(), hv.connectGetHostname()]);
    let versionText: string;
    try {
      versionText = await virsh.run(['version', '--daemon']);
    } catch (err) {
      if (err instanceof VirshFailure) throw new Error(err.libvirtMessage, { cause: err });
      return {
        usable: false,
        adapter,
        reason: `virsh is not usable: ${(err as Error).message}`,
        fix: "Install libvirt's client tools (Debian/Ubuntu: apt-get install libvirt-clients); Tandem uses virsh for snapshots, secrets and events.",
      };
    }
    const versions = parseVirshVersion(versionText);
    const type = await virtType();
    const warnings: string[] = [];
    if (type === 'qemu') warnings.push('KVM is not available on this host: VMs run in software emulation (slow).');
    return {
      usable: true,
      adapter,
      hypervisorVersion: versions.hypervisor ?? 'unknown',
      host: { memoryMiB: Math.floor(node.memory / 1024), cpus: node.cpus, hostname },
      details: {
        uri: conn.uri,
        virtType: type,
        ...(versions.library ? { libvirtLibrary: versions.library } : {}),
        ...(versions.daemon ? { libvirtDaemon: versions.daemon } : {}),
        ...(versions.qemu ? { qemu: versions.qemu } : {}),
      },
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  } catch (err) {
    return {
      usable: false,
      adapter,
      reason: `libvirt at ${conn.uri} did not answer: ${(err as Error).message}`,
      fix: DAEMON_FIX,
    };
  }
}

/** Versions from `virsh version --daemon`. */
export function parseVirshVersion(text: string): {
  library?: string;
  daemon?: string;
  hypervisor?: string;
  qemu?: string;
} {
  const library = /Using library: libvirt (\S+)/.exec(text)?.[1];
  const daemon = /Running against daemon: (\S+)/.exec(text)?.[1];
  const hypervisor = /Running hypervisor: (.+)/.exec(text)?.[1]?.trim();
  const qemu = hypervisor && /^QEMU (\S+)/.exec(hypervisor)?.[1];
  return {
    ...(library ? { library } : {}),
    ...(daemon ? { daemon } : {}),
    ...(hypervisor ? { hypervisor } : {}),
    ...(qemu ? { qemu } : {}),
  };
}
