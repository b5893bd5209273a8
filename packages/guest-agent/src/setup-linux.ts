import { readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { SetupStepParams } from '@tandem/core/guest';
import type { GuestPaths } from './paths.js';
import type { ProgramRunner } from './run.js';
import { guestFailure, type SetupApplier } from './setup.js';

/**
 * First-time setup on Linux: the hostname through /proc/sys/kernel/hostname (now) and
 * /etc/hostname (at every boot), and domain join through `realm join`, the password on stdin.
 */
export function linuxSetup(paths: GuestPaths, run: ProgramRunner): SetupApplier {
  const setHostname = async (name: string): Promise<void> => {
    await writeFile(join(paths.proc, 'sys', 'kernel', 'hostname'), `${name}\n`);
  };
  return {
    async computerName(name) {
      try {
        await setHostname(name);
      } catch (err) {
        throw guestFailure(
          'Cannot set the hostname',
          `cannot write /proc/sys/kernel/hostname: ${(err as Error).message}`,
          'hostname',
        );
      }
      try {
        await writeFile(join(paths.etc, 'hostname'), `${name}\n`);
      } catch (err) {
        // A read-only /etc (an initramfs, a live image): the agent's own record re-applies it at start.
        return {
          message: `hostname set to ${name} (/etc/hostname not written: ${(err as Error).message})`,
          rebootRequired: false,
        };
      }
      return { message: `hostname set to ${name}`, rebootRequired: false };
    },
    async network(params) {
      const external = Object.entries(networkInterfaces()).filter(([, list]) => (list ?? []).some((a) => !a.internal));
      const listed = external.map(([n, list]) => `${n} ${(list ?? []).map((a) => a.address).join(' ')}`).join('; ');
      if (params.mode === 'none') return { message: 'network mode none: nothing to configure', rebootRequired: false };
      const links = await readLinks();
      if (external.length === 0 && links.length === 0) {
        throw guestFailure(
          'No network interface',
          `the workspace asks for network mode ${params.mode}, but the guest has no network interface besides loopback (is the virtio_net module loaded?)`,
          'no-interface',
        );
      }
      return {
        message:
          external.length > 0
            ? `network mode ${params.mode}: ${listed}`
            : `network mode ${params.mode}: interfaces ${links.join(', ')} present, no address yet (DHCP is the guest's own)`,
        rebootRequired: false,
      };
    },
    async domainJoin(params: Extract<SetupStepParams, { step: 'domain-join' }>, signal) {
      if (!params.user) {
        // realm takes a one-time password only as --one-time-password=VALUE, visible in
        // /proc/*/cmdline to every user of the guest: refused rather than exposed.
        throw guestFailure(
          'One-time password not supported',
          'realm join accepts a one-time password only on its command line, where other users of the guest can read it; use a joining user (credential with a user) on Linux',
          'otp-unsupported',
          false,
        );
      }
      const args = ['join', '--verbose', `--computer-name=${params.computerName}`, `--user=${params.user}`];
      if (params.ou) args.push(`--computer-ou=${params.ou}`);
      args.push('--', params.domain);
      let r;
      try {
        r = await run('realm', args, { input: `${params.secret}\n`, signal });
      } catch (err) {
        throw guestFailure(
          'realm is missing',
          `cannot run realm: ${(err as Error).message} (install realmd)`,
          'realm-missing',
          false,
        );
      }
      if (r.exitCode !== 0) {
        throw guestFailure('realm join failed', lastLines(r.stderr || r.stdout), `realm-${r.exitCode}`);
      }
      return { message: `joined ${params.domain} as ${params.computerName}`, rebootRequired: false };
    },
    async reapply(name) {
      const current = await readFile(join(paths.proc, 'sys', 'kernel', 'hostname'), 'utf8').catch(() => '');
      if (current.trim() !== name) await setHostname(name);
    },
  };
}

async function readLinks(): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const names = await readdir('/sys/class/net').catch(() => [] as string[]);
  return names.filter((n) => n !== 'lo');
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n');
}
