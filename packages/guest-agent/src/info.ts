import { readFile } from 'node:fs/promises';
import { arch, hostname, networkInterfaces, release, uptime, version } from 'node:os';
import { join } from 'node:path';
import type { GuestInfo } from '@tandem/core/guest';
import type { GuestPaths } from './paths.js';
import { AGENT_VERSION } from './version.js';

/** Parses os-release (`KEY=value`, values optionally quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["$`\\])/g, '$1');
    out[m[1]!] = v;
  }
  return out;
}

/** The hostname the kernel has now: read from procfs, as `hostname` does, so a fresh rename shows. */
export async function currentHostname(
  paths: GuestPaths,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  if (platform === 'linux') {
    const text = await readFile(join(paths.proc, 'sys', 'kernel', 'hostname'), 'utf8').catch(() => undefined);
    if (text !== undefined && text.trim() !== '') return text.trim();
  }
  return hostname();
}

/** The guest's facts for `info`. */
export async function guestInfo(
  paths: GuestPaths,
  setupComputerName?: string,
  platform: NodeJS.Platform = process.platform,
): Promise<GuestInfo> {
  const addresses: GuestInfo['addresses'] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      addresses.push({
        interface: name.slice(0, 64),
        address: a.address,
        family: a.family === 'IPv6' ? 'IPv6' : 'IPv4',
      });
    }
  }
  let os: GuestInfo['os'];
  if (platform === 'linux') {
    const text =
      (await readFile(join(paths.etc, 'os-release'), 'utf8').catch(() => undefined)) ??
      (await readFile('/usr/lib/os-release', 'utf8').catch(() => ''));
    const rel = parseOsRelease(text);
    os = {
      family: 'linux',
      name: (rel['NAME'] ?? 'Linux').slice(0, 256),
      version: (rel['VERSION_ID'] ?? rel['VERSION'] ?? '').slice(0, 128),
      kernel: release(),
      arch: arch(),
    };
  } else if (platform === 'win32') {
    os = { family: 'windows', name: version().slice(0, 256), version: release(), kernel: release(), arch: arch() };
  } else {
    os = { family: 'other', name: version().slice(0, 256), version: release(), kernel: release(), arch: arch() };
  }
  return {
    os,
    hostname: (await currentHostname(paths, platform)).slice(0, 255),
    addresses: addresses.slice(0, 256),
    uptimeSeconds: uptime(),
    agentVersion: AGENT_VERSION,
    ...(setupComputerName ? { setupComputerName } : {}),
  };
}
