import { access, readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { SetupStepParams } from '@tandem/core/guest';
import type { GuestPaths } from './paths.js';
import type { ProgramRunner } from './run.js';
import { applyLinuxNetwork } from './setup-network-linux.js';
import { guestFailure, type SetupApplier } from './setup.js';

/**
 * First-time setup on Linux: the hostname through /proc/sys/kernel/hostname (now) and
 * /etc/hostname (at every boot), and domain join through `realm join`, the password on stdin.
 * A step asks the host for a restart when the guest says one is pending after it:
 * `/run/reboot-required` exists (Debian's and Ubuntu's convention; a join that installs packages
 * or an image's own scripts write it).
 */
export function linuxSetup(paths: GuestPaths, run: ProgramRunner): SetupApplier {
  const applier = linuxSteps(paths, run);
  const pending = async <T extends { message: string; rebootRequired: boolean }>(outcome: T): Promise<T> => {
    if (outcome.rebootRequired || paths.run === undefined) return outcome;
    const marker = join(paths.run, 'reboot-required');
    const found = await access(marker).then(
      () => true,
      () => false,
    );
    return found
      ? { ...outcome, message: `${outcome.message} (${marker}: restart pending)`, rebootRequired: true }
      : outcome;
  };
  return {
    ...applier,
    computerName: async (name, signal) => pending(await applier.computerName(name, signal)),
    network: async (params, signal) => pending(await applier.network(params, signal)),
    domainJoin: async (params, signal) => pending(await applier.domainJoin(params, signal)),
  };
}

function linuxSteps(paths: GuestPaths, run: ProgramRunner): SetupApplier {
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
    async network(params, signal) {
      if (params.mode !== 'none' && params.settings) {
        return { message: await applyLinuxNetwork(params.settings, paths.etc, run, signal), rebootRequired: false };
      }
      const external = Object.entries(networkInterfaces()).filter(([, list]) => (list ?? []).some((a) => !a.internal));
      const listed = external.map(([n, list]) => `${n} ${(list ?? []).map((a) => a.address).join(' ')}`).join('; ');
      if (params.mode === 'none') {
        return {
          message: `network mode none: nothing to configure${params.settings ? ' (spec.firstTimeSetup.network ignored)' : ''}`,
          rebootRequired: false,
        };
      }
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
        // A one-time password for a pre-staged computer account. realm takes it only as
        // --one-time-password=VALUE (argv, readable by every user of the guest); adcli, which realm
        // runs underneath, documents --one-time-password as "--login-type=computer and providing a
        // password as input", and reads that input from stdin with --stdin-password.
        const otpArgs = [
          'join',
          '--verbose',
          '--login-type=computer',
          '--stdin-password',
          `--computer-name=${params.computerName}`,
          ...(params.ou ? [`--domain-ou=${params.ou}`] : []),
          `--domain=${params.domain}`,
        ];
        let r;
        try {
          r = await run('adcli', otpArgs, { input: params.secret, signal });
        } catch (err) {
          throw guestFailure(
            'adcli is missing',
            `cannot run adcli: ${(err as Error).message} (install adcli: a one-time-password join needs it)`,
            'adcli-missing',
            false,
          );
        }
        if (r.exitCode !== 0) {
          throw guestFailure('adcli join failed', lastLines(r.stderr || r.stdout), `adcli-${r.exitCode}`);
        }
        return {
          message: `joined ${params.domain} as ${params.computerName} with its one-time password (adcli; the host keytab is written, configure sssd for domain logins)`,
          rebootRequired: false,
        };
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
