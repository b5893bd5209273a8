import type { LaunchHandle } from '@tandem/core';

/** Why `tandem apps launch` stopped waiting. */
export type LaunchWaitOutcome =
  | { readonly kind: 'exited'; readonly code: number | null }
  | { readonly kind: 'session-ended'; readonly reason: string }
  | { readonly kind: 'interrupted'; readonly signal: 'SIGINT' | 'SIGTERM' };

/** Where signals come from (the process; a plain emitter in tests). */
export interface SignalSource {
  once(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  off(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
}

/** What {@link waitForLaunch} watches. */
export interface LaunchWaitOptions {
  readonly handle: LaunchHandle;
  /**
   * Whether the session has ended: a reason (the VM stopped, saved, crashed or was removed, the
   * session record is gone) or `null` while it runs. Asked every `pollMs`; an error counts as
   * "still running" for that round (libvirtd restarting is not the session ending).
   */
  readonly sessionEnded: () => Promise<string | null>;
  /** How often to ask {@link sessionEnded} (default 2000 ms). */
  readonly pollMs?: number;
  /** A push notice of the same thing where the adapter has one (`watch`); returns an unsubscribe. */
  readonly watchEnded?: (onEnded: (reason: string) => void) => () => void;
  readonly signals?: SignalSource;
}

/**
 * Waits for a launched app the way a launcher needs: until the transport's program exits, the
 * session ends under it (another `tandem stop`, `tandem down`, the guest powering off), or the
 * user interrupts (Ctrl-C, SIGTERM). On the last two the transport's program is closed, so no
 * client is left attached to a VM that is gone. Every adapter gets the same three ends: a
 * transport whose handle never exits (the mock's, an attach that outlives its window) still ends
 * with its session.
 *
 * @example
 * ```ts
 * const outcome = await waitForLaunch({
 *   handle: launch.handle,
 *   sessionEnded: async () => ((await adapter.state(vm)) === 'running' ? null : 'the VM stopped'),
 * });
 * ```
 */
export async function waitForLaunch(o: LaunchWaitOptions): Promise<LaunchWaitOutcome> {
  const signals = o.signals ?? process;
  const pollMs = o.pollMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  let stopped = false;
  const listeners: Array<[event: 'SIGINT' | 'SIGTERM', fn: () => void]> = [];
  try {
    const outcome = await new Promise<LaunchWaitOutcome>((resolve) => {
      o.handle.exited.then(
        (code) => resolve({ kind: 'exited', code }),
        () => resolve({ kind: 'exited', code: null }),
      );
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        const fn = (): void => resolve({ kind: 'interrupted', signal });
        listeners.push([signal, fn]);
        signals.once(signal, fn);
      }
      unwatch = o.watchEnded?.((reason) => resolve({ kind: 'session-ended', reason }));
      const poll = async (): Promise<void> => {
        if (stopped) return;
        const reason = await o.sessionEnded().catch(() => null);
        if (stopped) return;
        if (reason !== null) resolve({ kind: 'session-ended', reason });
        else timer = setTimeout(() => void poll(), pollMs);
      };
      timer = setTimeout(() => void poll(), pollMs);
    });
    if (outcome.kind !== 'exited') await o.handle.close().catch(() => undefined);
    return outcome;
  } finally {
    stopped = true;
    if (timer) clearTimeout(timer);
    unwatch?.();
    for (const [signal, fn] of listeners) signals.off(signal, fn);
  }
}
