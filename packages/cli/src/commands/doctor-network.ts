import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetworkMode } from '@tandem/core';

/** The state of one libvirt network as `virsh net-info` reports it. */
export interface LibvirtNetworkFacts {
  readonly name: string;
  readonly state: 'active' | 'inactive' | 'absent' | 'unknown';
  /** The bridge libvirt gives it (`virbr0`), when defined. */
  readonly bridge?: string;
}

/** What `tandem doctor` looks at to say which network modes can work (libvirt's, on this host). */
export interface NetworkFacts {
  readonly uri: string;
  /** Whether the facts of the host itself (dnsmasq, bridges) were looked at: not for a remote URI. */
  readonly local: boolean;
  /** Null when virsh reached libvirtd; otherwise why not. */
  readonly libvirtUnreachable: string | null;
  /** Path of the dnsmasq binary libvirt runs for its NAT and isolated networks; null when missing. */
  readonly dnsmasq: string | null;
  readonly natNetwork: LibvirtNetworkFacts;
  readonly hostOnlyNetwork: LibvirtNetworkFacts;
  /** Bridges of the host (`/sys/class/net/X/bridge`), libvirt's own `virbr*` apart. */
  readonly hostBridges: readonly string[];
  readonly libvirtBridges: readonly string[];
}

/** Whether one network mode can work here, why, and what to do when it cannot. */
export interface NetworkModeCheck {
  readonly mode: NetworkMode;
  readonly works: boolean;
  readonly why: string;
  readonly fix?: string;
}

const DNSMASQ_PATHS = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq'];

/**
 * Says, per network mode (nat, bridged, host-only, none), whether a libvirt VM can use it on this
 * host and why not. Pure: the facts come from {@link gatherNetworkFacts}.
 *
 * @example
 * ```ts
 * for (const c of checkNetworkModes(await gatherNetworkFacts({ uri: 'qemu:///system' }))) {
 *   console.log(c.mode, c.works, c.why);
 * }
 * ```
 */
export function checkNetworkModes(f: NetworkFacts): NetworkModeCheck[] {
  const dnsmasqFix = 'install dnsmasq-base (apt-get install -y --no-install-recommends dnsmasq-base); .ci/run does';
  const viaLibvirt = (mode: 'nat' | 'host-only'): NetworkModeCheck => {
    const net = mode === 'nat' ? f.natNetwork : f.hostOnlyNetwork;
    if (f.libvirtUnreachable !== null) {
      return {
        mode,
        works: false,
        why: `libvirt is not reachable at ${f.uri} (${f.libvirtUnreachable})`,
        fix: 'start libvirtd (see docs/adapters/libvirt.md)',
      };
    }
    // An active network already has its dnsmasq running; anything else needs one to start.
    if (net.state !== 'active' && f.local && f.dnsmasq === null) {
      return {
        mode,
        works: false,
        why: `dnsmasq is not installed, and libvirt needs it to start network "${net.name}" (DHCP and DNS for the guests)`,
        fix: dnsmasqFix,
      };
    }
    if (mode === 'nat') {
      switch (net.state) {
        case 'active':
          return {
            mode,
            works: true,
            why: `libvirt network "${net.name}" is active${net.bridge ? ` (${net.bridge})` : ''}`,
          };
        case 'inactive':
          return {
            mode,
            works: true,
            why: `libvirt network "${net.name}" is defined but inactive: tandem up starts it`,
          };
        case 'absent':
          return {
            mode,
            works: false,
            why: `libvirt has no network "${net.name}", which nat uses`,
            fix: `virsh -c ${f.uri} net-define /usr/share/libvirt/networks/default.xml && virsh -c ${f.uri} net-start default (Debian: libvirt-daemon-system ships that file), or pass --adapter-option natNetwork=NAME`,
          };
        case 'unknown':
          return {
            mode,
            works: false,
            why: `cannot read libvirt network "${net.name}"`,
            fix: `virsh -c ${f.uri} net-info ${net.name}`,
          };
      }
    }
    switch (net.state) {
      case 'active':
        return { mode, works: true, why: `isolated libvirt network "${net.name}" is active` };
      case 'inactive':
        return {
          mode,
          works: true,
          why: `isolated libvirt network "${net.name}" is defined but inactive: tandem up starts it`,
        };
      case 'absent':
        return { mode, works: true, why: `Tandem defines the isolated libvirt network "${net.name}" on first use` };
      case 'unknown':
        return {
          mode,
          works: false,
          why: `cannot read libvirt network "${net.name}"`,
          fix: `virsh -c ${f.uri} net-info ${net.name}`,
        };
    }
  };
  const bridged = ((): NetworkModeCheck => {
    if (!f.local) {
      return {
        mode: 'bridged',
        works: true,
        why: `the bridges of the remote host behind ${f.uri} are not checked from here: network.bridge must name one there`,
      };
    }
    if (f.hostBridges.length > 0) {
      return {
        mode: 'bridged',
        works: true,
        why: `host bridge(s): ${f.hostBridges.join(', ')} (name one in network.bridge)`,
      };
    }
    const own = f.libvirtBridges.length > 0 ? ` (only libvirt's own: ${f.libvirtBridges.join(', ')})` : '';
    return {
      mode: 'bridged',
      works: false,
      why: `this host has no network bridge to attach guests to${own}`,
      fix: "create a bridge over the host's LAN interface (e.g. br0 with your distribution's network configuration) and name it in network.bridge",
    };
  })();
  return [
    viaLibvirt('nat'),
    bridged,
    viaLibvirt('host-only'),
    { mode: 'none', works: true, why: 'no network card: always works' },
  ];
}

/** Runs a program and returns its stdout; rejects with its stderr. */
export type RunProgram = (file: string, args: readonly string[]) => Promise<string>;

const runProgram: RunProgram = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { env: { ...process.env, LC_ALL: 'C' }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err)
        reject(Object.assign(new Error(err.message, { cause: err }), { code: err.code, stderr: String(stderr) }));
      else resolve(String(stdout));
    });
  });

/** Options of {@link gatherNetworkFacts}. */
export interface GatherNetworkOptions {
  readonly uri: string;
  readonly natNetwork?: string;
  readonly hostOnlyNetwork?: string;
  /** How virsh is run (tests pass recorded outputs). */
  readonly run?: RunProgram;
  /** Where the host's interfaces are listed (default /sys/class/net). */
  readonly sysClassNet?: string;
  /** Where dnsmasq may be (default: the paths libvirt looks in). */
  readonly dnsmasqPaths?: readonly string[];
}

/** Looks at libvirt's networks (virsh net-info), dnsmasq and the host's bridges. Never throws. */
export async function gatherNetworkFacts(options: GatherNetworkOptions): Promise<NetworkFacts> {
  const run = options.run ?? runProgram;
  const uri = options.uri;
  const local = !/^[a-z0-9]+\+[a-z0-9]+:/i.test(uri) && !/^[a-z0-9+]+:\/\/[^/]/i.test(uri);
  let libvirtUnreachable: string | null = null;
  try {
    await run('virsh', ['-c', uri, 'version', '--daemon']);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    libvirtUnreachable =
      e.code === 'ENOENT' ? 'virsh is not installed' : (e.stderr ?? e.message).trim().split('\n').pop() || e.message;
  }
  const netInfo = async (name: string): Promise<LibvirtNetworkFacts> => {
    if (libvirtUnreachable !== null) return { name, state: 'unknown' };
    try {
      const out = await run('virsh', ['-c', uri, 'net-info', '--network', name]);
      const active = /^Active:\s+(\S+)/m.exec(out)?.[1];
      const bridge = /^Bridge:\s+(\S+)/m.exec(out)?.[1];
      return { name, state: active === 'yes' ? 'active' : 'inactive', ...(bridge ? { bridge } : {}) };
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      return { name, state: /not found|no network with matching name/i.test(stderr) ? 'absent' : 'unknown' };
    }
  };
  const natNetwork = await netInfo(options.natNetwork ?? 'default');
  const hostOnlyNetwork = await netInfo(options.hostOnlyNetwork ?? 'tandem-hostonly');
  let dnsmasq: string | null = null;
  for (const p of options.dnsmasqPaths ?? DNSMASQ_PATHS) {
    if (
      await access(p).then(
        () => true,
        () => false,
      )
    ) {
      dnsmasq = p;
      break;
    }
  }
  const bridges: string[] = [];
  if (local) {
    const dir = options.sysClassNet ?? '/sys/class/net';
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (
        await access(join(dir, name, 'bridge')).then(
          () => true,
          () => false,
        )
      )
        bridges.push(name);
    }
  }
  const libvirtOwn = new Set([natNetwork.bridge, hostOnlyNetwork.bridge].filter((b): b is string => !!b));
  const isLibvirts = (b: string): boolean => libvirtOwn.has(b) || /^virbr\d+$/.test(b);
  return {
    uri,
    local,
    libvirtUnreachable,
    dnsmasq,
    natNetwork,
    hostOnlyNetwork,
    hostBridges: bridges.filter((b) => !isLibvirts(b)).sort(),
    libvirtBridges: bridges.filter(isLibvirts).sort(),
  };
}
