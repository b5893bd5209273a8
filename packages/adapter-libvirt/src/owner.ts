import { Virsh, VirshFailure } from './virsh/runner.js';

/** The namespace of the owner record in a libvirt domain's metadata. */
export const OWNER_XMLNS = 'https://tandem.dev/xmlns/owner/1';

/** Options of {@link libvirtOwnership}. */
export interface LibvirtOwnershipOptions {
  /** Default `qemu:///system`, where every host user's agent sees the same domains. */
  readonly uri?: string;
  readonly virsh?: string;
}

/** Which host user's session a domain belongs to (the host agent's `VmOwnership`). */
export interface LibvirtOwnership {
  owner(vm: string): Promise<number | undefined>;
  claim(vm: string, uid: number): Promise<void>;
}

/**
 * Records the host user whose session a VM belongs to in the domain's own metadata
 * (`<owner uid="1000"/>` in {@link OWNER_XMLNS}), live and persistent, so that another user's
 * agent on the same libvirtd sees it and asks before it shuts that session down.
 *
 * @example
 * ```ts
 * const owners = libvirtOwnership();
 * await owners.claim('tandem-erp', process.getuid());
 * await owners.owner('tandem-erp'); // 1000
 * ```
 */
export function libvirtOwnership(options: LibvirtOwnershipOptions = {}): LibvirtOwnership {
  const virsh = new Virsh(options.uri ?? 'qemu:///system', options.virsh);
  return {
    async owner(vm) {
      let xml: string;
      try {
        xml = await virsh.run(['metadata', '--domain', vm, '--uri', OWNER_XMLNS]);
      } catch (err) {
        // libvirt: "metadata not found: Requested metadata element is not present".
        if (err instanceof VirshFailure && /metadata not found/i.test(err.libvirtMessage)) return undefined;
        throw err;
      }
      const uid = /\buid=["'](\d+)["']/.exec(xml)?.[1];
      return uid === undefined ? undefined : Number(uid);
    },
    async claim(vm, uid) {
      if (!Number.isSafeInteger(uid) || uid < 0) throw new RangeError(`not a uid: ${uid}`);
      const set = [
        'metadata',
        '--domain',
        vm,
        '--uri',
        OWNER_XMLNS,
        '--key',
        'tandem',
        '--set',
        `<owner uid="${uid}"/>`,
      ];
      try {
        await virsh.run([...set, '--live', '--config']);
      } catch (err) {
        // A domain that is not running has no live definition to change.
        if (!(err instanceof VirshFailure) || !/not running|inactive/i.test(err.libvirtMessage)) throw err;
        await virsh.run([...set, '--config']);
      }
    },
  };
}
