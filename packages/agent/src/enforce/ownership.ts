import type { Session, TandemEventMap } from '@tandem/core';
import { TakeoverRefusedError } from './errors.js';

/**
 * Which host user's session a VM belongs to. Each user runs their own agent, so the record lives
 * with the VM where every user's agent can read it: libvirt's domain metadata on qemu:///system
 * (`libvirtOwnership` in @tandem/adapter-libvirt), VirtualBox's VM extradata
 * (`virtualboxOwnership` in @tandem/adapter-virtualbox), Hyper-V's VM Notes (`hypervOwnership`
 * in @tandem/adapter-hyperv), or an integrator's own store.
 */
export interface VmOwnership {
  /** The uid of the host user whose session the VM belongs to; undefined when unrecorded. */
  owner(vm: string): Promise<number | undefined>;
  /** Records that the VM now belongs to `uid`. */
  claim(vm: string, uid: number): Promise<void>;
  /** Ends what reaching the record holds open (an SSH connection); called when the session detaches. */
  close?(): Promise<void>;
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

/** What a user is asked before a VM another host user left is shut down for them. */
export interface TakeoverRequest {
  readonly vm: string;
  readonly previousOwnerUid: number;
  /** The state the other user's session left the VM in. */
  readonly state: string;
}

/** What {@link takeOver} needs. */
export interface TakeoverOptions {
  readonly session: Session;
  readonly ownership: VmOwnership;
  /** This user's uid. */
  readonly uid: number;
  /** Asks this user; absent or failing: refused. */
  readonly confirm?: (request: TakeoverRequest) => Promise<boolean>;
  readonly publish: (data: TandemEventMap['session.takeover']) => void;
}

/**
 * Makes the session's VM this user's before it starts or resumes. A VM another host user's
 * session left suspended, locked or running is never attached silently: the user is asked, and
 * only on yes is it powered off (that session is lost, as in MED-V) and claimed; on no,
 * TakeoverRefusedError and nothing is touched. A stopped VM is simply claimed.
 */
export async function takeOver(o: TakeoverOptions): Promise<void> {
  const { session, ownership, uid } = o;
  const owner = await ownership.owner(session.vm);
  const state = session.state;
  if (owner !== undefined && owner !== uid && state !== 'stopped' && state !== 'crashed') {
    const request = { vm: session.vm, previousOwnerUid: owner, state };
    const confirmed = (await o.confirm?.(request).catch(() => false)) ?? false;
    o.publish({ vm: session.vm, previousOwnerUid: owner, previousState: state, confirmed });
    if (!confirmed) {
      throw new TakeoverRefusedError(
        `VM "${session.vm}" holds a ${state} session of another user (uid ${owner}). Starting it shuts that session down and its unsaved work is lost; confirm to go on.`,
        { details: { ...request } },
      );
    }
    // The other user's session is lost, as in MED-V: power off without asking the guest.
    await session.stop({ force: true });
  }
  if (owner !== uid) await ownership.claim(session.vm, uid);
}
