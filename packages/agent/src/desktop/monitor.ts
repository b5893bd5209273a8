import { EventEmitter } from 'node:events';
import dbus from 'dbus-next';
import type { EventBus } from '@tandem/core';
import { systemdInhibitor, type SleepInhibitor } from './inhibitor.js';

const LOGIN1 = 'org.freedesktop.login1';
const LOGIN1_PATH = '/org/freedesktop/login1';
const MANAGER = 'org.freedesktop.login1.Manager';
const SESSION = 'org.freedesktop.login1.Session';
const PROPS = 'org.freedesktop.DBus.Properties';

/** Where an idle or active report came from. */
export type ActivitySource = 'logind' | 'screensaver';

/** The events a {@link DesktopMonitor} emits, with their arguments. */
export interface DesktopEvents {
  /** The user went idle (logind's IdleHint became true, or the screen saver came on). */
  idle: [source: ActivitySource];
  /** The user is back (IdleHint false, or the screen saver went off). */
  active: [source: ActivitySource];
  /**
   * logind's PrepareForSleep. With `start` true the host is about to sleep: hand `delay` the work
   * that must finish first (locking the session); the sleep delay lock is released once it settles.
   */
  'prepare-for-sleep': [start: boolean, delay: (work: Promise<unknown>) => void];
  /** The user's login1 session ended (SessionRemoved, or its State became `closing`). */
  logout: [reason: string];
  /** The host's network changed (NetworkManager's StateChanged). */
  'network-changed': [reason: string];
  /** A bus was connected, or could not be, or was lost. */
  status: [status: DesktopBusStatus];
}

/** What a session enforcer listens to: a {@link DesktopMonitor}, or anything with the same events. */
export interface DesktopEventSource {
  on<K extends keyof DesktopEvents>(event: K, listener: (...args: DesktopEvents[K]) => void): unknown;
  off<K extends keyof DesktopEvents>(event: K, listener: (...args: DesktopEvents[K]) => void): unknown;
  /** The login1 sessions on the host (guest maintenance runs only when no user is logged in). */
  loginSessions?(): Promise<LoginSessionInfo[]>;
}

/** Whether one bus is connected, and why not. */
export interface DesktopBusStatus {
  readonly bus: 'session' | 'system';
  readonly connected: boolean;
  /** What works or what does not, in words. */
  readonly reason: string;
}

/** A login1 session as `ListSessions` reports it, with its class. */
export interface LoginSessionInfo {
  readonly id: string;
  readonly uid: number;
  readonly user: string;
  /** `user` for a person's session, `greeter` for the login screen, ... */
  readonly class: string;
  readonly state: string;
}

/** Urgency of a desktop notification (the freedesktop `urgency` hint). */
export type NotificationUrgency = 'low' | 'normal' | 'critical';

/** Options of {@link DesktopMonitor}. */
export interface DesktopMonitorOptions {
  /** The session bus (ScreenSaver, Notifications). Default `DBUS_SESSION_BUS_ADDRESS`; null: none. */
  sessionBusAddress?: string | null;
  /** The system bus (logind, NetworkManager). Default `DBUS_SYSTEM_BUS_ADDRESS` or the system socket; null: none. */
  systemBusAddress?: string | null;
  /** The login1 session to follow. Default `XDG_SESSION_ID`, else the user's display session. */
  loginSessionId?: string;
  /** The user whose display session to follow (default: this process's uid). */
  uid?: number;
  /** The sleep delay lock (default {@link systemdInhibitor} on the system bus); false: none. */
  inhibitor?: SleepInhibitor | false;
  /** The name notifications carry (default `Tandem`). */
  appName?: string;
  /** How long the host's sleep may wait for the lock (default 4 s, under logind's 5 s InhibitDelayMaxSec). */
  sleepDelayMaxMs?: number;
  /** Publishes each bus's status as a `desktop.status` event. */
  events?: EventBus;
}

type Iface = dbus.ClientInterface & Record<string, (...args: unknown[]) => Promise<unknown>>;

async function connect(address: string, signal: AbortSignal): Promise<dbus.MessageBus> {
  const bus = dbus.sessionBus({ busAddress: address });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => {
      bus.disconnect();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    bus.once('connect', () => resolve());
    bus.once('error', fail);
    signal.addEventListener('abort', () => fail(new Error(`no answer from ${address} within 10 s`)), { once: true });
  });
  // After the handshake, a lost bus must not crash the agent.
  bus.on('error', () => undefined);
  return bus;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The host desktop as the host agent sees it through D-Bus: logind (idle hint, sleep, logout,
 * sessions) and NetworkManager on the system bus, the freedesktop ScreenSaver and Notifications
 * on the session bus. It holds logind's sleep delay lock so that a session is locked before the
 * host sleeps. Without a bus it says why (a `status` event and {@link DesktopMonitor.status})
 * and the agent works on with activity fed through its API.
 *
 * @example
 * ```ts
 * const desktop = new DesktopMonitor();
 * desktop.on('status', (s) => console.log(s.bus, s.connected, s.reason));
 * desktop.on('idle', () => enforcer.idle());
 * desktop.on('prepare-for-sleep', (start, delay) => start && delay(session.lock('host sleep')));
 * await desktop.start();
 * await desktop.notify('Workspace expires soon', 'erp expires in 15 minutes', 'critical');
 * ```
 */
export class DesktopMonitor implements DesktopEventSource {
  readonly #options: DesktopMonitorOptions;
  readonly #emitter = new EventEmitter();
  #system: dbus.MessageBus | undefined;
  #session: dbus.MessageBus | undefined;
  #manager: Iface | undefined;
  #inhibitor: SleepInhibitor | undefined;
  #loginSessionId: string | undefined;
  #status = new Map<'session' | 'system', DesktopBusStatus>();
  #closed = false;

  constructor(options: DesktopMonitorOptions = {}) {
    this.#options = options;
  }

  on<K extends keyof DesktopEvents>(event: K, listener: (...args: DesktopEvents[K]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof DesktopEvents>(event: K, listener: (...args: DesktopEvents[K]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  #emit<K extends keyof DesktopEvents>(event: K, ...args: DesktopEvents[K]): void {
    try {
      this.#emitter.emit(event, ...args);
    } catch {
      // A listener's failure is the listener's; the monitor goes on.
    }
  }

  /** The state of both buses, after {@link DesktopMonitor.start}. */
  get status(): DesktopBusStatus[] {
    return [...this.#status.values()];
  }

  /** The login1 session followed, once known. */
  get loginSessionId(): string | undefined {
    return this.#loginSessionId;
  }

  /** True while the sleep delay lock is held. */
  get inhibiting(): boolean {
    return this.#inhibitor?.held ?? false;
  }

  #setStatus(status: DesktopBusStatus): void {
    this.#status.set(status.bus, status);
    this.#options.events?.publish('desktop.status', { ...status });
    this.#emit('status', status);
  }

  /**
   * Connects to both buses and subscribes. Never throws for a missing bus or service: each
   * problem is a `status` event and an entry of the returned list.
   */
  async start(): Promise<DesktopBusStatus[]> {
    const env = process.env;
    const systemAddress =
      this.#options.systemBusAddress === undefined
        ? (env['DBUS_SYSTEM_BUS_ADDRESS'] ?? 'unix:path=/var/run/dbus/system_bus_socket')
        : this.#options.systemBusAddress;
    const sessionAddress =
      this.#options.sessionBusAddress === undefined ? env['DBUS_SESSION_BUS_ADDRESS'] : this.#options.sessionBusAddress;
    await Promise.all([this.#startSystem(systemAddress ?? null), this.#startSession(sessionAddress ?? null)]);
    return this.status;
  }

  async #startSystem(address: string | null): Promise<void> {
    if (address === null) {
      this.#setStatus({
        bus: 'system',
        connected: false,
        reason: 'no system bus configured: no idle hint, sleep or logout from logind',
      });
      return;
    }
    try {
      this.#system = await connect(address, AbortSignal.timeout(10_000));
    } catch (err) {
      this.#setStatus({
        bus: 'system',
        connected: false,
        reason: `cannot connect to the system bus at ${address}: ${message(err)}`,
      });
      return;
    }
    const notes: string[] = [];
    try {
      const login1 = await this.#system.getProxyObject(LOGIN1, LOGIN1_PATH);
      const manager = login1.getInterface(MANAGER) as Iface;
      this.#manager = manager;
      manager.on('PrepareForSleep', (start: boolean) => void this.#onPrepareForSleep(start));
      manager.on('SessionRemoved', (id: string) => {
        if (id === this.#loginSessionId) this.#emit('logout', `login1 session ${id} was removed`);
      });
      await this.#followSession(manager);
      if (this.#options.inhibitor !== false) {
        this.#inhibitor =
          this.#options.inhibitor ??
          systemdInhibitor({ systemBusAddress: address, isListed: (pid) => this.#inhibitorListed(pid) });
        try {
          await this.#inhibitor.take();
        } catch (err) {
          notes.push(`no sleep delay lock (${message(err)})`);
        }
      }
    } catch (err) {
      this.#setStatus({ bus: 'system', connected: false, reason: `logind is not on the system bus: ${message(err)}` });
      return;
    }
    try {
      const nm = await this.#system.getProxyObject('org.freedesktop.NetworkManager', '/org/freedesktop/NetworkManager');
      const iface = nm.getInterface('org.freedesktop.NetworkManager');
      iface.on('StateChanged', (state: number) => this.#emit('network-changed', `NetworkManager state ${state}`));
    } catch {
      notes.push('no NetworkManager: network changes are found by polling');
    }
    this.#setStatus({
      bus: 'system',
      connected: true,
      reason: [`logind session ${this.#loginSessionId ?? '(none)'}`, ...notes].join('; '),
    });
  }

  async #inhibitorListed(pid: number): Promise<boolean> {
    const list = (await this.#manager!['ListInhibitors']!()) as [string, string, string, string, number, number][];
    return list.some((i) => i[5] === pid && i[0].split(':').includes('sleep'));
  }

  async #followSession(manager: Iface): Promise<void> {
    let path: string | undefined;
    const id = this.#options.loginSessionId ?? process.env['XDG_SESSION_ID'];
    if (id) {
      path = (await manager['GetSession']!(id)) as string;
      this.#loginSessionId = id;
    } else {
      const uid = this.#options.uid ?? process.getuid?.() ?? 0;
      const userPath = (await manager['GetUser']!(uid)) as string;
      const user = await this.#system!.getProxyObject(LOGIN1, userPath);
      const props = user.getInterface(PROPS) as Iface;
      const display = (await props['Get']!('org.freedesktop.login1.User', 'Display')) as { value: [string, string] };
      if (display.value[0] === '') throw new Error(`user ${uid} has no display session`);
      [this.#loginSessionId, path] = display.value;
    }
    const session = await this.#system!.getProxyObject(LOGIN1, path);
    const props = session.getInterface(PROPS) as Iface;
    props.on('PropertiesChanged', (iface: string, changed: Record<string, { value: unknown }>) => {
      if (iface !== SESSION) return;
      const idle = changed['IdleHint'];
      if (idle) this.#emit(idle.value === true ? 'idle' : 'active', 'logind');
      const state = changed['State'];
      if (state?.value === 'closing') this.#emit('logout', `login1 session ${this.#loginSessionId} is closing`);
    });
  }

  async #startSession(address: string | null): Promise<void> {
    if (address === null) {
      this.#setStatus({
        bus: 'session',
        connected: false,
        reason: 'no session bus (DBUS_SESSION_BUS_ADDRESS is not set): no screen saver, no notifications',
      });
      return;
    }
    try {
      this.#session = await connect(address, AbortSignal.timeout(10_000));
    } catch (err) {
      this.#setStatus({
        bus: 'session',
        connected: false,
        reason: `cannot connect to the session bus at ${address}: ${message(err)}`,
      });
      return;
    }
    let reason = 'screen saver followed';
    try {
      const ss = await this.#session.getProxyObject('org.freedesktop.ScreenSaver', '/org/freedesktop/ScreenSaver');
      ss.getInterface('org.freedesktop.ScreenSaver').on('ActiveChanged', (active: boolean) =>
        this.#emit(active ? 'idle' : 'active', 'screensaver'),
      );
    } catch (err) {
      reason = `no screen saver service (${message(err)})`;
    }
    this.#setStatus({ bus: 'session', connected: true, reason });
  }

  async #onPrepareForSleep(start: boolean): Promise<void> {
    if (this.#closed) return;
    if (!start) {
      this.#emit('prepare-for-sleep', false, () => undefined);
      await this.#inhibitor?.take().catch(() => undefined);
      return;
    }
    const work: Promise<unknown>[] = [];
    this.#emit('prepare-for-sleep', true, (p) => work.push(p));
    const max = this.#options.sleepDelayMaxMs ?? 4_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(work),
      new Promise<void>((r) => {
        timer = setTimeout(r, max);
      }),
    ]);
    clearTimeout(timer);
    await this.#inhibitor?.release();
  }

  /** The login1 sessions on the host (an empty list without logind). */
  async loginSessions(): Promise<LoginSessionInfo[]> {
    const manager = this.#manager;
    if (!manager || !this.#system) return [];
    const list = (await manager['ListSessions']!()) as [string, number, string, string, string][];
    return Promise.all(
      list.map(async ([id, uid, user, , path]) => {
        const props = (await this.#system!.getProxyObject(LOGIN1, path)).getInterface(PROPS) as Iface;
        const all = (await props['GetAll']!(SESSION)) as Record<string, { value: string } | undefined>;
        return { id, uid, user, class: all['Class']?.value ?? '', state: all['State']?.value ?? '' };
      }),
    );
  }

  /**
   * Shows a desktop notification (org.freedesktop.Notifications). Resolves false, without
   * throwing, when there is no session bus or no notification service.
   */
  async notify(summary: string, body: string, urgency: NotificationUrgency = 'normal'): Promise<boolean> {
    if (!this.#session) return false;
    try {
      const obj = await this.#session.getProxyObject('org.freedesktop.Notifications', '/org/freedesktop/Notifications');
      const iface = obj.getInterface('org.freedesktop.Notifications') as Iface;
      const level = urgency === 'low' ? 0 : urgency === 'normal' ? 1 : 2;
      await iface['Notify']!(
        this.#options.appName ?? 'Tandem',
        0,
        '',
        summary,
        body,
        [],
        { urgency: new dbus.Variant('y', level) },
        -1,
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Releases the sleep delay lock and disconnects. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#inhibitor?.release();
    this.#system?.disconnect();
    this.#session?.disconnect();
    this.#emitter.removeAllListeners();
  }
}
