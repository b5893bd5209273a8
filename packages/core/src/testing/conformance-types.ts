import type { HypervisorAdapter, VmSpec } from '../adapter/types.js';

/** A test body as the suite hands it to the test API (it reads vitest's context or mocha's `this`). */
export type ConformanceTestBody = (this: unknown, ...args: unknown[]) => Promise<void>;

/**
 * The `it` (or `test`) of vitest, mocha, jest or node:test. Its `skip` is used for checks the
 * options switch off; checks that the adapter's capabilities or the subject's hooks rule out
 * are skipped at run time through the test's context (vitest's `ctx.skip(note)`, node:test's
 * `t.skip(note)`, mocha's `this.skip()`), so they count as skipped, never as passed.
 */
export interface ConformanceIt {
  (name: string, fn: ConformanceTestBody, timeout?: number): unknown;
  skip?: (name: string, fn: ConformanceTestBody, timeout?: number) => unknown;
}

/** The test API: an `it`/`test` function, or an object holding one (`import * as vitest`). */
export type ConformanceTestApi = ConformanceIt | { readonly it: ConformanceIt } | { readonly test: ConformanceIt };

/** A guest the suite boots to see what a graceful stop does. */
export interface ConformanceGuest {
  /** A definable VM spec with this name, running this guest. */
  vmSpec(name: string): VmSpec | Promise<VmSpec>;
  /** Resolves once the started guest can react to the power button (its OS has booted). */
  ready?(vm: string): Promise<void>;
}

/**
 * What the suite cannot observe through the adapter alone. Every hook is optional: the checks
 * that need a missing one are reported as skipped, naming the hook.
 */
export interface ConformanceHooks {
  /** A guest that powers off when asked (ACPI power button, or the hypervisor's equivalent). */
  readonly acpiGuest?: ConformanceGuest;
  /**
   * A guest that ignores the request (a VM with only firmware and an empty disk usually does):
   * a graceful stop must then time out, and be forced or throw TimeoutError as asked.
   */
  readonly deafGuest?: ConformanceGuest;
  /**
   * Writes and reads a short marker on the VM's (first) disk, behind the adapter's back. Called
   * only while the VM is stopped; `read` returns what the last `write` put there, as it is
   * now (an empty string before any write).
   */
  readonly diskMarker?: {
    write(vm: string, marker: string): Promise<void>;
    read(vm: string): Promise<string>;
  };
  /** How many hypervisor processes (QEMU, VBoxHeadless, vmwp, ...) run for the VM now. */
  hypervisorProcesses?(vm: string): Promise<number>;
  /** Kills the hypervisor's process for a running VM, behind the adapter's back (SIGKILL). */
  killHypervisor?(vm: string): Promise<void>;
  /**
   * Makes the running guest of a VM defined from `acpiGuest.vmSpec` power itself off, behind the
   * adapter's back (for example the power button pressed through the hypervisor's own monitor).
   */
  guestPowerOff?(vm: string): Promise<void>;
}

/** What the factory gives the suite for one test. */
export interface ConformanceSubject {
  readonly adapter: HypervisorAdapter;
  /**
   * A definable VM spec with this name: a few MiB of RAM and a small empty disk of its own
   * (adapters that keep snapshots in their disks need one per VM).
   */
  vmSpec(name: string): VmSpec | Promise<VmSpec>;
  /** Optional observations the suite cannot make through the adapter (see {@link ConformanceHooks}). */
  readonly hooks?: ConformanceHooks;
  /** Called after each test, after the suite has destroyed its VMs (with `deleteDisks: true`). */
  cleanup?(): Promise<void>;
}

/** Switches for what an adapter lacks, and limits for slow hypervisors. */
export interface ConformanceOptions {
  skip?: {
    /** No snapshots at all (otherwise taken from `capabilities.snapshots`). */
    snapshots?: boolean;
    /** No snapshots of running or paused VMs (otherwise from `capabilities.snapshots.live`). */
    liveSnapshots?: boolean;
    /** No save/restore (otherwise from `capabilities.suspend.save`). */
    save?: boolean;
    /** No deletion of a snapshot with its children (otherwise from capabilities). */
    deleteWithChildren?: boolean;
    /**
     * No deletion (without `children`) of a snapshot that has more than one child: VirtualBox
     * refuses it, and keeps a single root.
     */
    deleteWithSeveralChildren?: boolean;
    /**
     * No graceful stop checks at all. Rarely needed: without the guest hooks the suite only
     * checks that a graceful stop with `forceAfterTimeout` ends stopped, which an OS-less
     * guest passes (the stop times out and is forced).
     */
    gracefulStop?: boolean;
    /** Do not check that `watch()` stays silent about the adapter's own calls. */
    watch?: boolean;
  };
  /** Per-test timeout in ms (default 60 s). */
  timeoutMs?: number;
  /** Graceful stop timeout for guests that ignore it (default 2 s; the VM is then forced off). */
  gracefulStopTimeoutMs?: number;
  /**
   * Graceful stop timeout for the guest that honours it (default 30 s; it should be off well
   * before), and how long the suite waits for a change made behind the adapter's back.
   */
  acpiStopTimeoutMs?: number;
  /** How long to listen for stray `watch()` events after the adapter's own calls (default 500 ms). */
  eventSettleMs?: number;
  /** VM name prefix (default `tandem-conf`). */
  prefix?: string;
}
