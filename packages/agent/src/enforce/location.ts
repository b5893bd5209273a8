import { readFile } from 'node:fs/promises';
import type { NetworkMode, Workspace } from '@tandem/core';

/** Where the host is, as far as its network tells. */
export interface HostLocation {
  /** The DNS suffixes the host searches (`search` and `domain` of /etc/resolv.conf), lower case. */
  readonly dnsSuffixes: readonly string[];
  /** The default route: its interface, gateway and the subnet the interface is on. */
  readonly defaultRoute?: { readonly iface: string; readonly gateway: string; readonly subnet?: string };
}

/** The network a VM gets on this host: its mode and bridge, and the profile that chose them. */
export interface NetworkChoice {
  readonly mode: NetworkMode;
  readonly bridge?: string;
  /** The index of the matching profile in `spec.network.profiles`; null: the workspace's default. */
  readonly profile: number | null;
  readonly reason: string;
}

/** The DNS suffixes of a resolv.conf: `search` and `domain`, lower case, without the final dot. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...values] = line.split(/\s+/);
    if (key !== 'search' && key !== 'domain') continue;
    for (const v of values) {
      const d = v.toLowerCase().replace(/\.$/, '');
      if (d && !out.includes(d)) out.push(d);
    }
  }
  return out;
}

const hexIp = (h: string): number => {
  // /proc/net/route prints addresses in host byte order (little-endian on x86 and arm64).
  const n = parseInt(h, 16);
  return ((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff);
};
const dotted = (n: number): string => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
const prefixOf = (mask: number): number => {
  let bits = 0;
  for (let m = mask >>> 0; m & 0x80000000; m = (m << 1) >>> 0) bits++;
  return bits;
};

/**
 * The default route of a /proc/net/route table (the one with the lowest metric), with the subnet
 * of its interface: the interface's directly connected route (no gateway).
 */
export function parseProcNetRoute(text: string): HostLocation['defaultRoute'] {
  const rows = text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8)
    .map((f) => ({
      iface: f[0]!,
      dest: hexIp(f[1]!),
      gateway: hexIp(f[2]!),
      flags: parseInt(f[3]!, 16),
      metric: parseInt(f[6]!, 10),
      mask: hexIp(f[7]!),
    }))
    .filter((r) => (r.flags & 1) === 1); // RTF_UP
  const def = rows.filter((r) => r.dest === 0 && r.mask === 0).sort((a, b) => a.metric - b.metric)[0];
  if (!def) return undefined;
  const link = rows.find((r) => r.iface === def.iface && r.mask !== 0 && r.gateway === 0);
  return {
    iface: def.iface,
    gateway: dotted(def.gateway >>> 0),
    ...(link ? { subnet: `${dotted(link.dest >>> 0)}/${prefixOf(link.mask)}` } : {}),
  };
}

/** Reads where the host is from /etc/resolv.conf and /proc/net/route (missing files: nothing known). */
export async function readHostLocation(paths: { resolvConf?: string; route?: string } = {}): Promise<HostLocation> {
  const read = (p: string): Promise<string> => readFile(p, 'utf8').catch(() => '');
  const [resolv, route] = await Promise.all([
    read(paths.resolvConf ?? '/etc/resolv.conf'),
    read(paths.route ?? '/proc/net/route'),
  ]);
  const defaultRoute = parseProcNetRoute(route);
  return { dnsSuffixes: parseResolvConf(resolv), ...(defaultRoute ? { defaultRoute } : {}) };
}

function ipv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8) | Number(p);
  }
  return n >>> 0;
}

/** True when the IPv4 prefix `inner` (or address) lies inside the IPv4 prefix `outer`. */
export function cidrContains(outer: string, inner: string): boolean {
  const [oa, ob] = outer.split('/');
  const [ia, ib] = inner.split('/');
  const o = ipv4(oa ?? '');
  const i = ipv4(ia ?? '');
  if (o === undefined || i === undefined) return false;
  const op = Number(ob ?? 32);
  const ip = Number(ib ?? 32);
  if (ip < op) return false;
  const mask = op === 0 ? 0 : (0xffffffff << (32 - op)) >>> 0;
  return (o & mask) >>> 0 === (i & mask) >>> 0;
}

const suffixMatches = (suffix: string, domains: readonly string[]): boolean => {
  const s = suffix.toLowerCase().replace(/^\./, '').replace(/\.$/, '');
  return domains.some((d) => d === s || d.endsWith(`.${s}`));
};

/**
 * Chooses the VM's network by where the host is: the first of `spec.network.profiles` whose
 * `when` matches (a DNS suffix the host searches, or the subnet of its default route inside the
 * profile's prefix), else the workspace's own `network.mode`.
 *
 * @example
 * ```ts
 * chooseNetwork(workspace, { dnsSuffixes: ['corp.example.com'] });
 * // { mode: 'bridged', bridge: 'br0', profile: 0, reason: 'the host searches corp.example.com ...' }
 * ```
 */
export function chooseNetwork(workspace: Workspace, location: HostLocation): NetworkChoice {
  const net = workspace.spec.network;
  for (const [i, p] of net.profiles.entries()) {
    const bridge = p.bridge !== undefined ? { bridge: p.bridge } : {};
    if ('dnsSuffix' in p.when && suffixMatches(p.when.dnsSuffix, location.dnsSuffixes)) {
      return {
        mode: p.mode,
        ...bridge,
        profile: i,
        reason: `the host's DNS suffixes (${location.dnsSuffixes.join(', ')}) match ${p.when.dnsSuffix}: network profile ${i}, ${p.mode}`,
      };
    }
    const subnet = location.defaultRoute?.subnet ?? location.defaultRoute?.gateway;
    if ('subnet' in p.when && subnet !== undefined && cidrContains(p.when.subnet, subnet)) {
      return {
        mode: p.mode,
        ...bridge,
        profile: i,
        reason: `the default route's subnet ${subnet} is inside ${p.when.subnet}: network profile ${i}, ${p.mode}`,
      };
    }
  }
  return {
    mode: net.mode,
    ...(net.bridge !== undefined ? { bridge: net.bridge } : {}),
    profile: null,
    reason:
      net.profiles.length === 0
        ? `no network profiles: the workspace's ${net.mode}`
        : `no network profile matches (DNS suffixes ${location.dnsSuffixes.join(', ') || 'none'}, default route subnet ${location.defaultRoute?.subnet ?? 'none'}): the workspace's ${net.mode}`,
  };
}
