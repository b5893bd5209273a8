import { HypervisorError, InvalidInputError, KeyedQueue, LocalRunner, SshRunner } from '@tandem/core';
import type { HyperVOptions } from './adapter.js';
import { PowerShellCli } from './pwsh.js';
import { checkVmName } from './vm.js';

/** The line in a VM's Notes that holds its owner's uid. */
export const OWNER_NOTES_PREFIX = 'tandem-owner-uid: ';

/** Options of {@link hypervOwnership}: where PowerShell runs, as for the adapter. */
export type HyperVOwnershipOptions = Pick<HyperVOptions, 'runner' | 'ssh' | 'powershell' | 'env' | 'timeoutMs'>;

/** Which host user's session a VM belongs to (the host agent's `VmOwnership`). */
export interface HyperVOwnership {
  owner(vm: string): Promise<number | undefined>;
  claim(vm: string, uid: number): Promise<void>;
  /** Ends the SSH connection when the options asked for one. */
  close(): Promise<void>;
}

/** The uid in a VM's Notes (`tandem-owner-uid: 1000` on a line of its own), or undefined. */
export function ownerFromNotes(vm: string, notes: unknown): number | undefined {
  const text = typeof notes === 'string' ? notes : '';
  const line = text.split(/\r?\n/).find((l) => l.startsWith(OWNER_NOTES_PREFIX));
  if (line === undefined) return undefined;
  const value = line.slice(OWNER_NOTES_PREFIX.length).trim();
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new HypervisorError(
      `VM "${vm}" has "${value}" after "${OWNER_NOTES_PREFIX.trim()}" in its Notes, which is not a uid. Fix or remove that line (Set-VM -Notes).`,
      { details: { vm, notes: text } },
    );
  }
  return Number(value);
}

/**
 * Records the host user whose session a VM belongs to as one line of the VM's Notes
 * (`tandem-owner-uid: 1000`), keeping every other line, so every account that may manage the
 * host's VMs sees it, running or not. The values reach PowerShell on stdin, as for the adapter.
 *
 * @example
 * ```ts
 * const owners = hypervOwnership();
 * await owners.claim('tandem-erp', 1000);
 * await owners.owner('tandem-erp'); // 1000
 * ```
 */
export function hypervOwnership(options: HyperVOwnershipOptions = {}): HyperVOwnership {
  const runner = options.runner ?? (options.ssh ? new SshRunner(options.ssh) : new LocalRunner());
  const ownsRunner = !options.runner;
  const ps = new PowerShellCli(
    runner,
    options.powershell ?? 'powershell.exe',
    options.env ?? {},
    options.timeoutMs ?? 120_000,
  );
  const serial = new KeyedQueue();
  return {
    async owner(vm) {
      checkVmName(vm);
      const o = (await ps.call('owner-get', { name: vm }, `Read the owner of "${vm}"`)) as Record<string, unknown>;
      return ownerFromNotes(vm, o?.['Notes']);
    },
    async claim(vm, uid) {
      checkVmName(vm);
      if (!Number.isSafeInteger(uid) || uid < 0) {
        throw new InvalidInputError(`The owner uid ${uid} is not a uid: expected a whole number, 0 or more.`, {
          details: { what: 'uid', value: uid },
        });
      }
      await serial.run(vm, () => ps.call('owner-set', { name: vm, uid }, `Record the owner of "${vm}"`));
    },
    async close() {
      if (ownsRunner) await runner.close();
    },
  };
}
