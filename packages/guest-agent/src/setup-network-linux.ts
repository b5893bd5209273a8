import { rename, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestNetworkSettings } from '@tandem/core/guest';
import type { ProgramRunner, RunResult } from './run.js';
import { guestFailure } from './setup.js';

/**
 * Applies `spec.firstTimeSetup.network` on Linux with the tools a minimal guest has (busybox or
 * iproute2 `ip`, busybox `udhcpc`), idempotently: an address, route or resolv.conf already as
 * asked is left alone and reported as already set. Returns what it did, one phrase per setting.
 *
 * @example
 * const message = await applyLinuxNetwork({ address: '10.0.2.15/24', gateway: '10.0.2.2' }, '/etc', runProgram);
 * // "eth0: address 10.0.2.15/24 added; default route via 10.0.2.2 added"
 */
export async function applyLinuxNetwork(
  settings: GuestNetworkSettings,
  etc: string,
  run: ProgramRunner,
  signal?: AbortSignal,
): Promise<string> {
  const ip = async (args: string[], what: string): Promise<RunResult> => {
    let r: RunResult;
    try {
      r = await run('ip', args, signal ? { signal } : {});
    } catch (err) {
      throw guestFailure(
        'ip is missing',
        `cannot run ip: ${(err as Error).message} (install busybox or iproute2)`,
        'ip-missing',
        false,
      );
    }
    if (r.exitCode !== 0)
      throw guestFailure(`${what} failed`, `ip ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`, 'ip');
    return r;
  };
  const dev = settings.interface ?? firstLink((await ip(['-o', 'link', 'show'], 'Listing interfaces')).stdout);
  if (!dev) {
    throw guestFailure(
      'No network interface',
      'the workspace sets the guest network, but the guest has no interface besides loopback (is the virtio_net module loaded?)',
      'no-interface',
    );
  }
  if (dev.length > 15)
    throw guestFailure(
      'Bad interface name',
      `${dev}: a Linux interface name has at most 15 characters`,
      'interface',
      false,
    );
  const done: string[] = [];
  const addresses = async (): Promise<string[]> =>
    parseInet((await ip(['-o', '-4', 'addr', 'show', 'dev', dev], `Reading ${dev}`)).stdout);

  if (settings.address) {
    if ((await addresses()).includes(settings.address)) done.push(`address ${settings.address} already set`);
    else {
      await ip(['link', 'set', 'dev', dev, 'up'], `Bringing ${dev} up`);
      await ip(['addr', 'add', settings.address, 'dev', dev], `Adding ${settings.address}`);
      done.push(`address ${settings.address} added`);
    }
    if (settings.gateway) {
      const routes = (await ip(['route', 'show', 'default'], 'Reading the routes')).stdout;
      if (new RegExp(`^default via ${settings.gateway.replace(/\./g, '\\.')}\\b`, 'm').test(routes)) {
        done.push(`default route via ${settings.gateway} already set`);
      } else {
        if (/^default\b/m.test(routes)) await ip(['route', 'del', 'default'], 'Removing the old default route');
        await ip(
          ['route', 'add', 'default', 'via', settings.gateway, 'dev', dev],
          `Adding the route via ${settings.gateway}`,
        );
        done.push(`default route via ${settings.gateway} added`);
      }
    }
  } else if (settings.dhcp) {
    const before = await addresses();
    if (before.length > 0) done.push(`already has ${before.join(' ')} (DHCP not run again)`);
    else {
      await ip(['link', 'set', 'dev', dev, 'up'], `Bringing ${dev} up`);
      let r: RunResult;
      try {
        // -n: fail when no lease comes; -q: exit once it has one; -t 5 tries.
        r = await run('udhcpc', ['-i', dev, '-n', '-q', '-t', '5'], signal ? { signal } : {});
      } catch (err) {
        throw guestFailure(
          'udhcpc is missing',
          `cannot run udhcpc: ${(err as Error).message} (install busybox)`,
          'udhcpc-missing',
          false,
        );
      }
      if (r.exitCode !== 0)
        throw guestFailure('DHCP failed', `udhcpc -i ${dev}: ${lastLines(r.stderr || r.stdout)}`, 'udhcpc');
      const after = await addresses();
      done.push(
        after.length > 0 ? `DHCP lease ${after.join(' ')}` : "DHCP lease taken (udhcpc's script set no address)",
      );
    }
  }

  if (settings.dns || settings.dnsSuffix) {
    const text = resolvConf(settings);
    const file = join(etc, 'resolv.conf');
    const current = await readFile(file, 'utf8').catch(() => undefined);
    if (current === text) done.push('/etc/resolv.conf already as asked');
    else {
      // Atomic: a reader sees the old file or the new one, never half of it.
      const tmp = `${file}.tandem-${process.pid}`;
      try {
        await writeFile(tmp, text, { mode: 0o644 });
        await rename(tmp, file);
      } catch (err) {
        throw guestFailure(
          'Cannot write resolv.conf',
          `cannot write ${file}: ${(err as Error).message}`,
          'resolv-conf',
        );
      }
      done.push(`/etc/resolv.conf written (${text.trim().replace(/\n/g, ', ')})`);
    }
  }
  return `${dev}: ${done.join('; ')}`;
}

/** The resolv.conf the settings ask for. */
export function resolvConf(settings: GuestNetworkSettings): string {
  return [
    ...(settings.dnsSuffix ? [`search ${settings.dnsSuffix}`] : []),
    ...(settings.dns ?? []).map((d) => `nameserver ${d}`),
    '',
  ].join('\n');
}

/** The first interface of `ip -o link show` that is not loopback. */
export function firstLink(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)[@:]/.exec(line);
    if (m?.[1] && m[1] !== 'lo' && !line.includes('LOOPBACK')) return m[1];
  }
  return undefined;
}

/** The `inet A/P` entries of `ip -o -4 addr show`. */
export function parseInet(text: string): string[] {
  return [...text.matchAll(/\binet (\d+\.\d+\.\d+\.\d+\/\d+)/g)].map((m) => m[1] as string);
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n');
}
