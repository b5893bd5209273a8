/**
 * Which host user's session a VM belongs to. Each user runs their own agent, so the record lives
 * with the VM where every user's agent can read it: libvirt's domain metadata on qemu:///system
 * (`libvirtOwnership` in @tandem/adapter-libvirt), or an integrator's own store.
 */
export interface VmOwnership {
  /** The uid of the host user whose session the VM belongs to; undefined when unrecorded. */
  owner(vm: string): Promise<number | undefined>;
  /** Records that the VM now belongs to `uid`. */
  claim(vm: string, uid: number): Promise<void>;
}

/**
 * Ownership kept in memory: for one process that runs several users' sessions (and tests).
 *
 * @example
 * ```ts
 * const owners = new MemoryVmOwnership();
 * await owners.claim('tandem-erp', 1000);
 * await owners.owner('tandem-erp'); // 1000
 * ```
 */
export class MemoryVmOwnership implements VmOwnership {
  readonly #owners = new Map<string, number>();

  owner(vm: string): Promise<number | undefined> {
    return Promise.resolve(this.#owners.get(vm));
  }

  claim(vm: string, uid: number): Promise<void> {
    this.#owners.set(vm, uid);
    return Promise.resolve();
  }
}
