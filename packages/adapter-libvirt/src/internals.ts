import type { Clock, TandemError, VmState } from '@tandem/core';
import type { NativeDomain } from './binding.js';
import type { ErrorContext } from './errors.js';
import type { LibvirtOptions } from './options.js';
import type { LibvirtUri } from './uri.js';
import type { Virsh } from './virsh/runner.js';

/**
 * What the adapter's parts (snapshots, guest channel, encryption, seamless windows) share:
 * the connection, virsh on the same URI, per-VM serialization and error mapping.
 */
export interface AdapterInternals {
  readonly uri: LibvirtUri;
  readonly options: LibvirtOptions;
  readonly virsh: Virsh;
  readonly clock: Clock;
  /** Runs `task` after every earlier call on `vm` has settled. */
  serialize<T>(vm: string, task: () => Promise<T>): Promise<T>;
  /** Looks the VM up and runs `fn` on it, mapping libvirt's errors (NotFoundError, ...). */
  withDomain<T>(vm: string, operation: string, fn: (dom: NativeDomain) => Promise<T>, idempotent?: boolean): Promise<T>;
  /** The VM's normalized state. */
  stateOf(vm: string): Promise<VmState>;
  /** Throws InvalidStateError unless the VM is in one of `allowed`; returns its state. */
  requireState(vm: string, operation: string, allowed: readonly VmState[]): Promise<VmState>;
  /** Maps any failure (binding, virsh) to a TandemError. */
  toError(err: unknown, context: Omit<ErrorContext, 'uri'>): Promise<TandemError>;
  /** Marks lifecycle events `vm` will raise because of Tandem; call the result when done. */
  expectEvents(vm: string, events: readonly string[]): () => void;
}
