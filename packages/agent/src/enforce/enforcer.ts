import {
  InvalidStateError,
  LeaseError,
  parseDuration,
  PolicyDeniedError,
  type Clock,
  type EventBus,
  type LoadedWorkspace,
  type Session,
  type TandemEvent,
  type TandemEventMap,
  type TandemEventType,
} from '@tandem/core';
import type { DesktopEventSource, DesktopEvents, LoginSessionInfo, NotificationUrgency } from '../desktop/monitor.js';
import { UnlockThrottle, type CredentialCheck, type UnlockThrottleOptions } from './credentials.js';
import { applyHostSpec, type HostSpecOutcome } from './host-spec.js';
import { readHostLocation, type HostLocation } from './location.js';
import { runMaintenance, type MaintenanceGuest } from './maintenance-run.js';
import { currentOrNextWindow } from './maintenance.js';
import { takeOver, type TakeoverRequest, type VmOwnership } from './ownership.js';
import { usageLimits, type UsageLimit } from './usage-limits.js';

/** Options of {@link SessionEnforcer}. */
export interface SessionEnforcerOptions {
  readonly session: Session;
  readonly loaded: LoadedWorkspace;
  readonly events: EventBus;
  /** Default: the session's clock. */
  readonly clock?: Clock;
  /** Idle, sleep, logout and network changes; absent: activity comes only through {@link SessionEnforcer.activity}. */
  readonly desktop?: DesktopEventSource;
  /** Shows a desktop notification (a DesktopMonitor's `notify`). */
  readonly notify?: (summary: string, body: string, urgency: NotificationUrgency) => Promise<unknown>;
  /** Checks the password given to {@link SessionEnforcer.unlock}. */
  readonly credentials: CredentialCheck;
  readonly throttle?: UnlockThrottleOptions;
  /** Where the host is (default: /etc/resolv.conf and /proc/net/route). */
  readonly location?: () => Promise<HostLocation>;
  /** The offline lease of the disk key: the envelope's `notAfter` (ISO 8601), read at every check. */
  readonly leaseNotAfter?: () => string | undefined;
  /** Who owns the VM across host users, and this user's uid (default: this process's). */
  readonly ownership?: VmOwnership;
  readonly uid?: number;
  /** Asks this user to confirm shutting down another user's session; no answer: refused. */
  readonly confirmTakeover?: (request: TakeoverRequest) => Promise<boolean>;
  /** The guest agent, for a maintenance window's command (a GuestConnection fits). */
  readonly guest?: () => Promise<MaintenanceGuest | undefined>;
  /** The host's login sessions (default: the desktop's); maintenance runs only when no user is logged in. */
  readonly loginSessions?: () => Promise<LoginSessionInfo[]>;
  /** How often the network location and the limits are checked without a desktop event (default 60 s). */
  readonly pollMs?: number;
}

type LockCause = TandemEventMap['session.locked']['cause'];

/**
 * Enforces one session's usage policy on the host: the idle lock, the lock on host sleep, the
 * session's end at logout, another host user's VM, expiry and the offline lease while it runs
 * (warn, lock, stop), guest maintenance windows, network by location and memory by host RAM at
 * every start. Timing comes from the clock; desktop facts from a {@link DesktopEventSource}.
 *
 * @example
 * ```ts
 * const enforcer = new SessionEnforcer({ session, loaded, events, desktop, credentials: unixPasswordCheck(),
 *   notify: (s, b, u) => desktop.notify(s, b, u) });
 * await enforcer.beforeStart(); // another user's VM, lease, expiry, memory and network
 * await session.start();
 * enforcer.start();
 * enforcer.activity(); // from a tray app, when the desktop has no D-Bus
 * await enforcer.unlock(password);
 * ```
 */
export class SessionEnforcer {
  readonly session: Session;
  readonly #o: SessionEnforcerOptions;
  readonly #clock: Clock;
  readonly #throttle: UnlockThrottle;
  readonly #listeners: { [K in keyof DesktopEvents]?: (...args: DesktopEvents[K]) => void } = {};
  #abort: AbortController | undefined;
  #kick: AbortController | undefined;
  /** When the user went idle; null while the desktop says the user is there. */
  #idleSince: number | null;
  #presence = false;
  readonly #warned = new Set<string>();
  /** The limit that locked the session, and when. */
  #limitLock: { limit: UsageLimit; at: number } | undefined;
  #suspendedForSleep = false;
  #lastLocation: string | undefined;
  #lastNetworkCheck = 0;
  #networkCheck: Promise<unknown> | undefined;
  #networkDirty = false;
  #maintenanceDone = new Set<number>();
  #maintenance: Promise<void> | undefined;
  #tasks = new Set<Promise<unknown>>();
  #offBus: (() => void) | undefined;

  constructor(options: SessionEnforcerOptions) {
    this.session = options.session;
    this.#o = options;
    this.#clock = options.clock ?? options.session.clock;
    this.#throttle = new UnlockThrottle(this.#clock, options.throttle);
    this.#idleSince = this.#clock.now();
  }

  // --- lifecycle ---

  /**
   * Before the session starts or resumes: a VM that another host user's session left is shut
   * down once this user confirms (else TakeoverRefusedError), the offline lease and the usage
   * policy are checked (LeaseError, PolicyDeniedError), and the VM gets this host's memory and
   * network (a stopped VM is redefined).
   */
  async beforeStart(): Promise<HostSpecOutcome | undefined> {
    await this.#claim();
    const lease = this.#leaseLimit();
    if (lease && lease.remainingMs <= 0) {
      throw new LeaseError(
        `The offline lease of the disk key ended at ${lease.limitAt}. Connect to get a new envelope.`,
        {
          details: { notAfter: lease.limitAt, reason: 'expired' },
        },
      );
    }
    this.session.policy.assertMayStart();
    const location = await this.#location();
    this.#lastLocation = JSON.stringify(location);
    const outcome = await applyHostSpec(this.session, location, this.#o.events);
    // A new definition may not carry the owner record over (libvirt's metadata): record it again.
    if (outcome?.applied === 'redefined' && this.#o.ownership)
      await this.#o.ownership.claim(this.session.vm, this.#o.uid ?? process.getuid?.() ?? 0);
    return outcome;
  }

  /** Starts enforcing: listens to the desktop and runs the checks on the clock. */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    this.#idleSince = this.#clock.now();
    const d = this.#o.desktop;
    if (d) {
      this.#listen(d, 'idle', () => this.#setPresence(false));
      this.#listen(d, 'active', () => this.#setPresence(true));
      this.#listen(d, 'prepare-for-sleep', (start, delay) => {
        if (start) delay(this.#background(this.#hostSleeps()));
        else void this.#background(this.#hostWakes());
      });
      this.#listen(d, 'logout', (reason) => void this.#background(this.#logout(reason)));
      this.#listen(d, 'network-changed', () => this.#requestNetworkCheck());
    }
    const onTransition = (e: TandemEvent<'session.transition'>): void => {
      if (e.session !== this.session.id) return;
      // A session that (re)starts or is unlocked counts its idle time from then.
      if (e.data.to === 'running' && !this.#presence) this.#idleSince = this.#clock.now();
      this.#wake();
    };
    this.#o.events.on('session.transition', onTransition);
    this.#offBus = () => this.#o.events.off('session.transition', onTransition);
    void this.#loop(this.#abort.signal);
  }

  /** Stops enforcing; resolves once work in progress (a lock, a maintenance window) has settled. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#abort = undefined;
    this.#offBus?.();
    this.#offBus = undefined;
    const d = this.#o.desktop;
    if (d) for (const [event, fn] of Object.entries(this.#listeners)) d.off(event as keyof DesktopEvents, fn as never);
    await Promise.allSettled([...this.#tasks]);
  }

  /** Records user activity from anywhere (a tray app, the API): the idle period starts again. */
  activity(): void {
    if (!this.#presence) this.#idleSince = this.#clock.now();
    this.#wake();
  }

  /** Locks the session now (the user asked). */
  async lock(): Promise<void> {
    await this.#lock('request', 'locked on request');
  }

  /**
   * Unlocks the session after checking `password` with the credential check. A wrong password
   * is an AuthError; after repeated failures attempts wait a growing delay (UnlockThrottledError);
   * a session locked at a usage limit stays locked while the limit holds (PolicyDeniedError).
   */
  async unlock(password: string): Promise<void> {
    if (this.session.state !== 'locked') {
      throw new InvalidStateError(
        `Session ${this.session.id} is ${this.session.state}, not locked.`,
        this.session.state,
      );
    }
    this.#throttle.check();
    const held = this.#limits().find((l) => l.remainingMs <= 0);
    if (held) {
      throw new PolicyDeniedError(`The session stays locked: ${held.message}.`, { details: { check: held.check } });
    }
    let user = '';
    await this.session.unlock(async () => {
      const r = await this.#o.credentials.verify(password);
      user = r.user;
      this.#throttle.record(r.ok);
      if (r.ok) this.#publish('auth.success', { user: r.user, method: r.method });
      else this.#publish('auth.failure', { user: r.user, method: r.method, reason: r.reason ?? 'refused' });
      return r.ok;
    });
    this.#limitLock = undefined;
    if (!this.#presence) this.#idleSince = this.#clock.now();
    this.#publish('session.unlocked', { vm: this.session.vm, user, method: 'local-password' });
    this.#wake();
  }

  // --- the loop ---

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const next = await this.#track(this.#tick().catch(() => 60_000));
      if (signal.aborted) return;
      this.#kick = new AbortController();
      try {
        await this.#clock.sleep(Math.max(1, next), AbortSignal.any([signal, this.#kick.signal]));
      } catch {
        // Woken early: something changed.
      }
    }
  }

  #wake(): void {
    this.#kick?.abort();
  }

  /** One round of checks; returns how long until the next is due. */
  async #tick(): Promise<number> {
    const now = this.#clock.now();
    const poll = this.#o.pollMs ?? 60_000;
    const waits: number[] = [poll];
    // Idle lock.
    const idleMs = this.session.policy.idleLockMs;
    if (idleMs !== null && this.#idleSince !== null && this.session.state === 'running') {
      const left = this.#idleSince + idleMs - now;
      if (left <= 0) await this.#lock('idle', `idle for ${Math.round(idleMs / 1000)} s`);
      else waits.push(left);
    }
    // Usage limits.
    const warnBefore = parseDuration(this.session.workspace.spec.usage.warnBefore ?? 'PT15M');
    const live = ['running', 'locked'].includes(this.session.state);
    for (const limit of this.#limits()) {
      if (limit.remainingMs <= 0) {
        if (live) await this.#atLimit(limit, now);
        continue;
      }
      if (limit.remainingMs <= warnBefore) {
        const key = `${limit.check}@${limit.limitAt}`;
        if (!this.#warned.has(key) && live) {
          this.#warned.add(key);
          this.#publish('usage.warning', { vm: this.session.vm, ...limit });
          // Sent off the loop: a slow or missing notification service never holds up the limits.
          const notify = this.#o.notify;
          if (notify) {
            const name = this.session.workspace.metadata.name;
            void this.#background(notify(`${name}: ${limit.title}`, limit.message, 'critical'));
          }
        }
        waits.push(limit.remainingMs);
      } else waits.push(limit.remainingMs - warnBefore);
    }
    if (this.#limitLock) {
      const stopAfter = parseDuration(this.session.workspace.spec.usage.stopAfter ?? 'PT5M');
      const left = this.#limitLock.at + stopAfter - now;
      if (left <= 0) await this.#stopAtLimit(this.#limitLock.limit);
      else waits.push(left);
    }
    // Network by location: read off the loop, so that slow I/O never delays a lock.
    if (now - this.#lastNetworkCheck >= poll) {
      this.#lastNetworkCheck = now;
      this.#requestNetworkCheck();
    }
    // Guest maintenance windows.
    const policy = this.session.workspace.spec.maintenance;
    if (policy) {
      const w = currentOrNextWindow(policy, now);
      if (w && w.start <= now && !this.#maintenanceDone.has(w.start) && !this.#maintenance) {
        this.#maintenanceDone.add(w.start);
        this.#maintenance = this.#track(this.#runMaintenance(w.end)).finally(() => (this.#maintenance = undefined));
      } else if (w && w.start > now) waits.push(w.start - now);
    }
    return Math.min(...waits);
  }

  // --- rules ---

  #setPresence(present: boolean): void {
    this.#presence = present;
    this.#idleSince = present ? null : this.#clock.now();
    this.#wake();
  }

  async #lock(cause: LockCause, reason: string): Promise<boolean> {
    if (!this.session.can('lock')) return false;
    await this.session.lock(cause === 'host-sleep' ? 'host sleep' : cause === 'usage-limit' ? 'usage limit' : cause);
    this.#publish('session.locked', { vm: this.session.vm, cause, reason });
    return true;
  }

  #leaseLimit(): UsageLimit | undefined {
    return usageLimits(
      { expiresInMs: null, offlineRemainingMs: null },
      this.#o.leaseNotAfter?.(),
      this.#clock.now(),
    )[0];
  }

  #limits(): UsageLimit[] {
    return usageLimits(this.session.policy.decide(), this.#o.leaseNotAfter?.(), this.#clock.now());
  }

  async #atLimit(limit: UsageLimit, now: number): Promise<void> {
    const action = this.session.workspace.spec.usage.atLimit ?? 'lock-then-stop';
    if (action === 'stop') return this.#stopAtLimit(limit);
    if (this.session.state === 'running' && (await this.#lock('usage-limit', limit.message))) {
      this.#publish('usage.limit', { vm: this.session.vm, check: limit.check, action: 'lock', message: limit.message });
      if (action === 'lock-then-stop') this.#limitLock = { limit, at: now };
    } else if (this.session.state === 'locked' && action === 'lock-then-stop' && !this.#limitLock) {
      this.#limitLock = { limit, at: now };
    }
  }

  async #stopAtLimit(limit: UsageLimit): Promise<void> {
    this.#limitLock = undefined;
    if (!this.session.can('stop')) return;
    await this.session.stop();
    this.#publish('usage.limit', { vm: this.session.vm, check: limit.check, action: 'stop', message: limit.message });
  }

  async #hostSleeps(): Promise<void> {
    if (this.session.policy.lockOnHostSleep) await this.#lock('host-sleep', 'the host is going to sleep');
    if (this.session.workspace.spec.usage.suspendOnHostSleep && this.session.can('suspend')) {
      await this.session.suspend();
      this.#suspendedForSleep = true;
    }
  }

  async #hostWakes(): Promise<void> {
    if (this.#suspendedForSleep && this.session.can('resume')) await this.session.resume();
    this.#suspendedForSleep = false;
    this.#wake();
  }

  async #logout(reason: string): Promise<void> {
    if (!['running', 'locked', 'suspended'].includes(this.session.state)) return;
    const action = await this.session.end();
    this.#publish('session.ended', { vm: this.session.vm, cause: 'logout', action });
    void reason;
  }

  /** Checks the location soon; a change signalled during a check is checked again after it. */
  #requestNetworkCheck(): void {
    this.#networkDirty = true;
    if (this.#networkCheck) return;
    const run = async (): Promise<void> => {
      while (this.#networkDirty) {
        this.#networkDirty = false;
        await this.#checkNetwork().catch(() => undefined);
      }
    };
    this.#networkCheck = this.#track(run()).finally(() => (this.#networkCheck = undefined));
  }

  async #checkNetwork(): Promise<void> {
    const location = await this.#location();
    const key = JSON.stringify(location);
    if (key === this.#lastLocation) return;
    this.#lastLocation = key;
    await applyHostSpec(this.session, location, this.#o.events);
  }

  async #claim(): Promise<void> {
    if (!this.#o.ownership) return;
    await takeOver({
      session: this.session,
      ownership: this.#o.ownership,
      uid: this.#o.uid ?? process.getuid?.() ?? 0,
      ...(this.#o.confirmTakeover ? { confirm: this.#o.confirmTakeover } : {}),
      publish: (data) => this.#publish('session.takeover', data),
    });
  }

  async #runMaintenance(end: number): Promise<void> {
    const sessions = await (this.#o.loginSessions ?? this.#o.desktop?.loginSessions?.bind(this.#o.desktop))?.();
    await runMaintenance({
      session: this.session,
      clock: this.#clock,
      until: end,
      loggedIn: (sessions ?? []).filter((s) => s.class === 'user' && s.state !== 'closing'),
      command: this.session.workspace.spec.maintenance?.command,
      ...(this.#o.guest ? { guest: this.#o.guest } : {}),
      publish: (data) => this.#publish('maintenance.window', { vm: this.session.vm, ...data }),
      ...(this.#abort ? { signal: this.#abort.signal } : {}),
    });
  }

  // --- plumbing ---

  async #location(): Promise<HostLocation> {
    return (this.#o.location ?? readHostLocation)();
  }

  #listen<K extends keyof DesktopEvents>(
    d: DesktopEventSource,
    event: K,
    fn: (...args: DesktopEvents[K]) => void,
  ): void {
    (this.#listeners as Record<string, unknown>)[event] = fn;
    d.on(event, fn);
  }

  /** Tracks work started by an event; its failure is already an event (`session.error`). */
  #background(p: Promise<unknown>): Promise<unknown> {
    return this.#track(p).catch(() => undefined);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#tasks.add(p);
    void p.then(
      () => this.#tasks.delete(p),
      () => this.#tasks.delete(p),
    );
    return p;
  }

  #publish<K extends TandemEventType>(type: K, data: TandemEventMap[K]): void {
    this.#o.events.publish(type, data, { workspace: this.session.workspace.metadata.name, session: this.session.id });
  }
}
