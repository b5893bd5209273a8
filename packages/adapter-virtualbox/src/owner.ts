import { HypervisorError, InvalidInputError, KeyedQueue, LocalRunner, SshRunner, systemClock } from '@tandem/core';
import type { VirtualBoxOptions } from './adapter.js';
import { findMachine, type VBoxContext } from './machine.js';
import { parseGuestProperty } from './parse.js';
import { VBoxManageCli } from './vboxmanage.js';

/** The VM extradata key that holds the owner's uid. */
export const OWNER_EXTRADATA_KEY = 'tandem/owner/uid';

/** Options of {@link virtualboxOwnership}: where VBoxManage runs, as for the adapter. */
export type VirtualBoxOwnershipOptions = Pick<VirtualBoxOptions, 'runner' | 'ssh' | 'vboxManage' | 'env' | 'timeoutMs'>;

/** Which host user's session a VM belongs to (the host agent's `VmOwnership`). */
export interface VirtualBoxOwnership {
  owner(vm: string): Promise<number | undefined>;
  claim(vm: string, uid: number): Promise<void>;
  /** Ends the SSH connection when the options asked for one. */
  close(): Promise<void>;
}

/**
 * Records the host user whose session a VM belongs to in the VM's own extradata
 * (`VBoxManage setextradata <vm> tandem/owner/uid 1000`), which VirtualBox keeps in the VM's
 * settings file, running or not. VirtualBox registers VMs per host user: another user's agent
 * sees the record when it uses the same VM (the same `.vbox` file, registered for it or through
 * a shared `VBOX_USER_HOME`).
 *
 * @example
 * ```ts
 * const owners = virtualboxOwnership();
 * await owners.claim('tandem-erp', process.getuid());
 * await owners.owner('tandem-erp'); // 1000
 * ```
 */
export function virtualboxOwnership(options: VirtualBoxOwnershipOptions = {}): VirtualBoxOwnership {
  const runner = options.runner ?? (options.ssh ? new SshRunner(options.ssh) : new LocalRunner());
  const ownsRunner = !options.runner;
  const ctx: VBoxContext = {
    cli: new VBoxManageCli(runner, options.vboxManage ?? 'VBoxManage', options.env ?? {}, options.timeoutMs ?? 120_000),
    serial: new KeyedQueue(),
    clock: systemClock,
    pollIntervalMs: 500,
    uuids: new Map(),
    warn: () => undefined,
  };
  return {
    async owner(vm) {
      const m = await findMachine(ctx, vm);
      const r = await ctx.cli.run(['getextradata', m.uuid, OWNER_EXTRADATA_KEY], `Read the owner of "${vm}"`);
      // `Value: 1000`, or `No value set!` for a key that does not exist.
      const value = parseGuestProperty(r.stdout);
      if (value === null) return undefined;
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new HypervisorError(
          `VM "${vm}" has "${value}" in its extradata ${OWNER_EXTRADATA_KEY}, which is not a uid. Remove it (VBoxManage setextradata "${vm}" ${OWNER_EXTRADATA_KEY}) or set a uid.`,
          { details: { vm, key: OWNER_EXTRADATA_KEY, value } },
        );
      }
      return Number(value);
    },
    async claim(vm, uid) {
      if (!Number.isSafeInteger(uid) || uid < 0) {
        throw new InvalidInputError(`The owner uid ${uid} is not a uid: expected a whole number, 0 or more.`, {
          details: { what: 'uid', value: uid },
        });
      }
      const m = await findMachine(ctx, vm);
      await ctx.cli.run(['setextradata', m.uuid, OWNER_EXTRADATA_KEY, String(uid)], `Record the owner of "${vm}"`);
    },
    async close() {
      if (ownsRunner) await runner.close();
    },
  };
}
