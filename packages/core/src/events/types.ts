import type { VmState } from '../adapter/types.js';
import type { SessionOperation, SessionState } from '../session/state-machine.js';

/**
 * What moved a session: one of its operations, a `refresh` that read the VM's state, or the
 * hypervisor acting on its own (a crash, a guest shutdown).
 */
export type SessionTransitionCause = SessionOperation | 'refresh' | 'hypervisor';

/** One change in a VM's definition, as a session update applies it. */
export interface VmSpecChange {
  /** What changed. */
  readonly field: 'disks' | 'memoryMiB' | 'cpus' | 'network' | 'boot';
  /** The defined VM's value, in words (`2 CPUs`, `/images/erp-1.0.qcow2`). */
  readonly from: string;
  /** The new version's value, in words. */
  readonly to: string;
}

/**
 * Every event Tandem emits, by type, with its payload. Modules add their events here so
 * that one typed map covers everything.
 */
export interface TandemEventMap {
  /** A session moved from one state to another. */
  'session.transition': {
    from: SessionState;
    to: SessionState;
    operation: SessionTransitionCause;
    /** Why, when there is more to say: `idle`, `host sleep`, the hypervisor's words. */
    reason?: string;
    /** Set when the operation failed and the session went back to the state it left. */
    failed?: boolean;
    vm: string;
  };
  /**
   * A session was opened for a workspace version whose VM spec differs from the defined VM; the
   * VM is redefined at the session's next start.
   */
  'session.update-pending': { vm: string; fromVersion: string | null; toVersion: string; changes: VmSpecChange[] };
  /**
   * The VM was redefined for a new workspace version. Snapshots are kept where the adapter can
   * redefine in place; otherwise `snapshotsDropped` names the ones that were lost.
   */
  'session.vm-updated': {
    vm: string;
    fromVersion: string | null;
    toVersion: string;
    changes: VmSpecChange[];
    snapshotsKept: number;
    snapshotsDropped: string[];
  };
  /** A session operation failed. */
  'session.error': { operation: SessionOperation; code: string; message: string; vm: string };
  /** The VM changed state on its own (guest shutdown, crash) or was seen to. */
  'vm.state': { vm: string; state: VmState; reason: string; origin: 'hypervisor' | 'tandem' };
  'snapshot.created': { vm: string; snapshot: string };
  'snapshot.reverted': { vm: string; snapshot: string };
  'snapshot.deleted': { vm: string; snapshot: string; children: boolean };
  /** A policy decision that was enforced. */
  'policy.decision': { kind: string; subject: string; outcome: string; rule?: string; layer?: string; reason: string };
  /** Image delivery progress. */
  'sync.progress': {
    version: string;
    bytesNeeded: number;
    bytesFromSeeds: number;
    bytesFetched: number;
    bytesPerSecond: number;
    etaMs: number | null;
  };
  'sync.completed': { version: string; bytesFetched: number; bytesFromSeeds: number; requests: number };
  'sync.failed': { version: string; code: string; message: string };
  /** Data failed verification. */
  'integrity.failure': { subject: string; expected?: string; actual?: string; message: string };
  'auth.success': { user: string; method: string };
  'auth.failure': { user: string; method: string; reason: string };
  /** The watchdog restarted a VM that died: published as the restart begins (`watchdog.restarted` when it worked). */
  'watchdog.restart': { vm: string; attempt: number; reason: string };
  /**
   * The watchdog saw the session's VM crash: through the adapter's events (`event`), its own
   * polling (`poll`), the state re-read after the hypervisor came back (`reconnect`), or a
   * caller's `Watchdog.check()` (`check`).
   */
  'watchdog.detected': { vm: string; reason: string; source: 'event' | 'poll' | 'reconnect' | 'check' };
  /** A restart is due in `delayMs` (the backoff); `attempt` counts restarts within the window. */
  'watchdog.scheduled': { vm: string; attempt: number; delayMs: number };
  /** The restart worked: the VM runs again. */
  'watchdog.restarted': { vm: string; attempt: number };
  /** A restart attempt failed; the watchdog tries again while its budget allows. */
  'watchdog.failed': { vm: string; attempt: number; code: string; message: string; retryable: boolean };
  /**
   * The watchdog stopped trying and left the VM crashed: `restarts` in the last `windowMs` used
   * the budget, or a restart was refused for a reason another try cannot change (`reason`).
   */
  'watchdog.gave-up': { vm: string; restarts: number; windowMs: number; reason: string };
  /**
   * The session lost its hypervisor: the adapter cannot reach it (libvirtd stopped, the SSH link
   * to a remote host dropped). The VM may well keep running; its state is read again on return.
   */
  'hypervisor.lost': { adapter: string; vm: string; reason: string };
  /** The hypervisor is reachable again after `downMs`; `state` is the session's, read again. */
  'hypervisor.restored': { adapter: string; vm: string; downMs: number; state: SessionState };
  /** An adapter's warning (an unknown newer hypervisor version, ...). */
  'adapter.warning': { adapter: string; message: string };
  /** The guest agent said hello (first time, or again after a reboot or restart: `reconnect`). */
  'guest.connected': { vm: string; agent: string; agentVersion: string; protocol: number; reconnect: boolean };
  /** The capabilities the agent advertised that this host knows; `ignored` are the ones it does not. */
  'guest.capabilities': { vm: string; capabilities: string[]; ignored: string[] };
  /** The agent went away: the channel closed, a ping went unanswered, the agent restarted. */
  'guest.disconnected': { vm: string; reason: string };
  /** Something went wrong on the guest channel (the channel does not open, bad input from the agent). */
  'guest.error': { vm: string; code: string; message: string };
  /**
   * One step of first-time setup. `message` on failure is the guest's own; secrets never appear.
   * `skipped`: done by an earlier run.
   */
  'guest.setup-step': {
    vm: string;
    instance: string;
    step: string;
    status: 'started' | 'done' | 'skipped' | 'failed';
    message?: string;
    code?: string;
    retryable?: boolean;
  };
  /**
   * Single sign-on into the guest (`spec.guestSignIn`): the agent signed `user` in with the
   * guest's own mechanism (`method`). The password never appears in any event.
   */
  'guest.signed-in': { vm: string; user: string; method: string; message: string; sessionPid?: number };
  /** Single sign-on into the guest failed: the guest's own words (never the password). */
  'guest.sign-in-failed': { vm: string; user: string; code: string; message: string };
  /**
   * The host agent did not sign the user in to a guest of a `spec.guestSignIn` workspace: no
   * credentials were handed to it, or the guest agent cannot sign users in. Once per guest boot.
   */
  'guest.sign-in-skipped': { vm: string; reason: string; user?: string };
  /**
   * The host agent holds `user`'s credentials in memory for single sign-on into guests
   * (`source`: `login`, `unlock`, an integrator's client). Never the password.
   */
  'credentials.held': { user: string; source: string };
  /**
   * The host agent wiped the credentials it held: the session that used them ended
   * (`session-ended`), new ones replaced them (`replaced`), or the agent stopped (`agent-stopped`).
   */
  'credentials.wiped': { user: string; reason: 'session-ended' | 'replaced' | 'agent-stopped' };
  /** First-time setup of a VM instance finished (or was already done). */
  'guest.setup-completed': { vm: string; instance: string; computerName?: string; rebootRequired: boolean };
  /**
   * The guest asked the host to open a URL (web redirection guest to host), with the policy's
   * decision: `redirect` true when it opens on the host.
   */
  'guest.url-to-host': {
    vm: string;
    url: string;
    target: 'host' | 'guest';
    redirect: boolean;
    reason: string;
    rule?: string;
    layer?: string;
  };
  /**
   * The host agent locked a session (published apps are hidden until it is unlocked; the VM keeps
   * running). `cause`: `idle`, `host-sleep`, `usage-limit`, `request` (the API or the user).
   */
  'session.locked': { vm: string; cause: 'idle' | 'host-sleep' | 'usage-limit' | 'request'; reason: string };
  /** A locked session was unlocked after the user authenticated. */
  'session.unlocked': { vm: string; user: string; method: string };
  /**
   * A usage limit (expiry, offline limit, the offline lease of the disk key) is near: `remainingMs`
   * until `limitAt`.
   */
  'usage.warning': {
    vm: string;
    check: 'expiry' | 'offline' | 'lease';
    limitAt: string;
    remainingMs: number;
    message: string;
  };
  /** A usage limit was reached while the session ran; `action` is what the host agent did. */
  'usage.limit': { vm: string; check: 'expiry' | 'offline' | 'lease'; action: 'lock' | 'stop'; message: string };
  /**
   * The host agent ended a session because of something on the host (`logout`: the user's
   * desktop session ended), as `usage.onSessionEnd` says.
   */
  'session.ended': { vm: string; cause: 'logout'; action: string };
  /**
   * A VM that another host user left suspended, locked or running was taken over: `confirmed`
   * false when the user declined (nothing was touched).
   */
  'session.takeover': { vm: string; previousOwnerUid: number; previousState: string; confirmed: boolean };
  /** One step of a guest maintenance window (wake-to-patch). */
  'maintenance.window': {
    vm: string;
    phase: 'started' | 'finished' | 'skipped' | 'failed';
    reason: string;
    /** The VM's state before the window, restored at its end. */
    before?: string;
  };
  /** Whether the host agent reaches the desktop's D-Bus (idle, sleep, logout, notifications). */
  'desktop.status': { bus: 'session' | 'system'; connected: boolean; reason: string };
}

/** The type names of all events. */
export type TandemEventType = keyof TandemEventMap;

/** One event: its type, when, which workspace and session, and its payload. */
export interface TandemEvent<K extends TandemEventType = TandemEventType> {
  /**
   * A unique id (a random UUID), given when the event is published. Stores and the management
   * server keep an event once by its id, so a retried upload never duplicates it.
   */
  readonly id: string;
  readonly type: K;
  /** ISO 8601 timestamp. */
  readonly at: string;
  readonly workspace: string | null;
  readonly session: string | null;
  readonly data: TandemEventMap[K];
}

/** Any event, as a discriminated union on `type`. */
export type AnyTandemEvent = { [K in TandemEventType]: TandemEvent<K> }[TandemEventType];
