import type { GuestNetworkSettings } from '@tandem/core/guest';
import type { ProgramRunner, RunResult } from './run.js';
import { guestFailure } from './setup.js';

/**
 * Applies `spec.firstTimeSetup.network` on Windows with `netsh interface ipv4` (argv as an array,
 * never a command line), idempotently: `show config` first, and only what differs is set.
 * netsh has no setting for the connection's DNS suffix: a `dnsSuffix` is reported as not applied.
 *
 * @example
 * const message = await applyWindowsNetwork({ address: '10.0.2.15/24', gateway: '10.0.2.2' }, runProgram);
 * // "Ethernet: address 10.0.2.15/24 set (static)"
 */
export async function applyWindowsNetwork(
  settings: GuestNetworkSettings,
  run: ProgramRunner,
  signal?: AbortSignal,
): Promise<string> {
  const netsh = async (args: string[], what: string): Promise<RunResult> => {
    let r: RunResult;
    try {
      r = await run('netsh.exe', ['interface', 'ipv4', ...args], signal ? { signal } : {});
    } catch (err) {
      throw guestFailure('netsh is missing', `cannot run netsh.exe: ${(err as Error).message}`, 'netsh-missing', false);
    }
    // netsh prints its errors on stdout and exits with 1.
    if (r.exitCode !== 0) throw guestFailure(`${what} failed`, `netsh: ${(r.stdout || r.stderr).trim()}`, 'netsh');
    return r;
  };
  const name = settings.interface ?? firstInterface((await netsh(['show', 'interfaces'], 'Listing interfaces')).stdout);
  if (!name)
    throw guestFailure('No network interface', 'netsh lists no connected interface besides loopback', 'no-interface');
  const config = parseNetshConfig((await netsh(['show', 'config', `name=${name}`], `Reading ${name}`)).stdout);
  const done: string[] = [];
  if (settings.address) {
    const [addr, prefix] = settings.address.split('/') as [string, string];
    const mask = prefixToMask(Number(prefix));
    const same =
      !config.dhcp &&
      config.addresses.includes(addr) &&
      config.masks.includes(mask) &&
      (settings.gateway === undefined || config.gateways.includes(settings.gateway));
    if (same) done.push(`address ${settings.address} already set`);
    else {
      await netsh(
        [
          'set',
          'address',
          `name=${name}`,
          'source=static',
          `address=${addr}`,
          `mask=${mask}`,
          ...(settings.gateway ? [`gateway=${settings.gateway}`, 'gwmetric=0'] : []),
        ],
        `Setting ${settings.address}`,
      );
      done.push(`address ${settings.address} set (static${settings.gateway ? `, gateway ${settings.gateway}` : ''})`);
    }
  } else if (settings.dhcp) {
    if (config.dhcp) done.push('DHCP already on');
    else {
      await netsh(['set', 'address', `name=${name}`, 'source=dhcp'], 'Turning DHCP on');
      done.push('DHCP turned on');
    }
  }
  if (settings.dns) {
    if (sameList(config.dns, settings.dns)) done.push(`DNS ${settings.dns.join(' ')} already set`);
    else {
      const [first, ...rest] = settings.dns;
      if (first) {
        await netsh(
          ['set', 'dnsservers', `name=${name}`, 'source=static', `address=${first}`, 'register=primary', 'validate=no'],
          'Setting DNS',
        );
      }
      for (const [i, d] of rest.entries()) {
        await netsh(
          ['add', 'dnsservers', `name=${name}`, `address=${d}`, `index=${i + 2}`, 'validate=no'],
          'Adding DNS',
        );
      }
      done.push(`DNS ${settings.dns.join(' ')} set`);
    }
  }
  if (settings.dnsSuffix) done.push(`DNS suffix ${settings.dnsSuffix} not applied (netsh cannot set it)`);
  return `${name}: ${done.join('; ')}`;
}

/** The first connected interface of `netsh interface ipv4 show interfaces` that is not loopback. */
export function firstInterface(text: string): string | undefined {
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const m = /^\s*\d+\s+\d+\s+\d+\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (m?.[1] === 'connected' && m[2] && !/loopback/i.test(m[2])) return m[2];
  }
  return undefined;
}

/** What `netsh interface ipv4 show config name=X` says (English output). */
export interface NetshConfig {
  dhcp: boolean;
  addresses: string[];
  masks: string[];
  gateways: string[];
  dns: string[];
}

/** Parses `netsh interface ipv4 show config`. */
export function parseNetshConfig(text: string): NetshConfig {
  const c: NetshConfig = { dhcp: false, addresses: [], masks: [], gateways: [], dns: [] };
  let inDns = false;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const kv = /^\s*([^:]+?):\s*(.*?)\s*$/.exec(line);
    if (kv) {
      const [, key = '', value = ''] = kv;
      inDns = /DNS servers/i.test(key);
      if (/^DHCP enabled$/i.test(key)) c.dhcp = /^yes$/i.test(value);
      else if (/^IP Address$/i.test(key)) c.addresses.push(value);
      else if (/^Subnet Prefix$/i.test(key)) {
        const m = /mask (\d+\.\d+\.\d+\.\d+)/.exec(value);
        if (m?.[1]) c.masks.push(m[1]);
      } else if (/^Default Gateway$/i.test(key) && value) c.gateways.push(value);
      if (inDns && /^\d+\.\d+\.\d+\.\d+$/.test(value)) c.dns.push(value);
    } else if (inDns && /^\s+\d+\.\d+\.\d+\.\d+\s*$/.test(line)) {
      c.dns.push(line.trim());
    } else inDns = false;
  }
  return c;
}

/** 24 → 255.255.255.0 */
export function prefixToMask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
