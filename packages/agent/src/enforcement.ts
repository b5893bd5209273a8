import { Watchdog, type WatchdogOptions } from '@tandem/core';
import { DesktopMonitor, type DesktopEventSource, type DesktopMonitorOptions } from './desktop/index.js';
import {
  SessionEnforcer,
  unixPasswordCheck,
  type CredentialCheck,
  type SessionEnforcerOptions,
} from './enforce/index.js';
import type { EnforcementFactory, SessionEnforcement } from './host-agent.js';
import type { VmOwnership } from './enforce/ownership.js';
import type { SessionRecord } from './state-dir.js';

/** Options of {@link sessionEnforcement}. */
export interface SessionEnforcementOptions {
  /** Idle, sleep, logout and network changes (a DesktopMonitor, or a test desktop). */
  desktop?: DesktopEventSource;
  notify?: SessionEnforcerOptions['notify'];
  /** Checks the unlock password. Default: this user's own password through unix_chkpwd. */
  credentials?: CredentialCheck;
  /** The watchdog's limits, or false for none. */
  watchdog?: Omit<WatchdogOptions, 'clock' | 'events'> | false;
  /**
   * Where the VM's owner among host users is recorded, for the session's adapter (libvirt's
   * domain metadata, VirtualBox's extradata, Hyper-V's Notes: the adapters' `libvirtOwnership()`,
   * `virtualboxOwnership()`, `hypervOwnership()`); undefined: not kept. Closed (when it has
   * `close`) as the session detaches.
   */
  ownershipFor?: (record: SessionRecord) => VmOwnership | undefined;
  /** Anything else the enforcer takes (lease, location, ...). */
  enforcer?: Partial<Omit<SessionEnforcerOptions, 'session' | 'loaded' | 'events' | 'clock'>>;
}

/**
 * What the agent enforces for each session it attaches: the usage policy (engineer B's
 * SessionEnforcer: idle lock, lock on sleep, end on logout, another user's VM, expiry and lease,
 * maintenance windows, network by location, memory by host RAM) and the core watchdog.
 *
 * @example
 * ```ts
 * const agent = new HostAgent({ stateDir, openAdapter, enforcement: sessionEnforcement({ desktop }) });
 * ```
 */
export function sessionEnforcement(options: SessionEnforcementOptions = {}): EnforcementFactory {
  const credentials = options.credentials ?? unixPasswordCheck();
  return ({ session, loaded, events, clock, record, diskKeys, exclusive }): SessionEnforcement => {
    // A takeover is confirmed per request (`up|resume --take-over`), never remembered.
    let takeOver = false;
    const ownership = options.ownershipFor?.(record);
    const enforcer = new SessionEnforcer({
      session,
      loaded,
      events,
      clock,
      credentials,
      ...(options.desktop ? { desktop: options.desktop } : {}),
      ...(options.notify ? { notify: options.notify } : {}),
      ...(ownership ? { ownership, confirmTakeover: async () => takeOver } : {}),
      ...options.enforcer,
    });
    // An encrypted VM's restart releases its key again, as its start did (lease checked again);
    // a restart runs under the workspace's lock, after or before a user's stop/down/up, never amid.
    const watchdog =
      options.watchdog === false
        ? undefined
        : new Watchdog(session, { clock, events, exclusive, ...(diskKeys ? { diskKeys } : {}), ...options.watchdog });
    return {
      beforeStart: async (o) => {
        takeOver = o?.takeOver ?? false;
        try {
          await enforcer.beforeStart();
        } finally {
          takeOver = false;
        }
      },
      start: () => {
        enforcer.start();
        watchdog?.start();
      },
      stop: async () => {
        watchdog?.stop();
        try {
          await enforcer.stop();
        } finally {
          await ownership?.close?.().catch(() => undefined);
        }
      },
      activity: (report) => {
        if (!report.idle) enforcer.activity();
      },
      unlock: (password) => enforcer.unlock(password),
    };
  };
}

/**
 * {@link sessionEnforcement} with the real desktop: a DesktopMonitor on the session and system
 * buses (what `tandem agent run` uses). Without a bus it says why in `note`, and activity then
 * comes only through the API.
 *
 * @example
 * ```ts
 * const enforcement = await desktopEnforcement();
 * const running = await runAgent({ stateDir, socketPath, openAdapter, enforcement: enforcement.factory });
 * ```
 */
export async function desktopEnforcement(
  options: { desktop?: boolean; monitor?: DesktopMonitorOptions } & Omit<
    SessionEnforcementOptions,
    'desktop' | 'notify'
  > = {},
): Promise<{ factory: EnforcementFactory; note: string | undefined; close: () => Promise<void> }> {
  const { desktop: useDesktop, monitor: monitorOptions, ...rest } = options;
  if (useDesktop === false) {
    return {
      factory: sessionEnforcement(rest),
      note: 'no desktop (activity only through the API)',
      close: async () => undefined,
    };
  }
  const monitor = new DesktopMonitor(monitorOptions);
  const status = await monitor.start();
  const down = status.filter((s) => !s.connected);
  return {
    factory: sessionEnforcement({
      ...rest,
      desktop: monitor,
      notify: (summary, body, urgency) => monitor.notify(summary, body, urgency),
    }),
    note:
      down.length > 0 ? `D-Bus: ${down.map((s) => `${s.bus} bus ${s.reason ?? 'unreachable'}`).join('; ')}` : undefined,
    close: () => monitor.close(),
  };
}
