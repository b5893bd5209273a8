// Single sign-on into the guest by the host agent (spec.guestSignIn): the password the user signed
// in with (`tandem login`, an unlock) is held here in memory only, and each session of a workspace
// that asks signs the user in to its guest once per guest-agent instance (its start, and its
// return after a reboot).
import {
  InvalidInputError,
  TandemError,
  type Clock,
  type EventBus,
  type EventContext,
  type Session,
  type TandemEvent,
  type TandemEventMap,
  type TandemEventType,
} from '@tandem/core';
import { GuestConnection, signInToGuest, type GuestConnectionOptions } from '@tandem/core/guest';

/** The credentials handed to the agent: the user's name and password (bytes, UTF-8). */
export interface GuestCredentials {
  readonly user: string;
  /** Taken over by {@link GuestSignOn.hold}, which zeroes it when it wipes the credentials. */
  readonly password: Buffer;
  /** The account's domain in a Windows guest. */
  readonly domain?: string | undefined;
  /** Who handed them: `login`, `unlock`, an integrator's tray app... (for the event). */
  readonly source: string;
}

/** Options of {@link GuestSignOn}. */
export interface GuestSignOnOptions {
  readonly events: EventBus;
  readonly clock?: Clock;
  /** The agent's own name and version, sent in its hello to the guest agent. */
  readonly software?: { readonly name: string; readonly version: string };
  /** How long the first hello of a started guest may take (default 10 minutes). */
  readonly helloTimeoutMs?: number;
  /** How long the guest may take to sign the user in (default 2 minutes). */
  readonly signInTimeoutMs?: number;
  /** Settings of the guest connections it opens (tests shorten pings and backoff). */
  readonly connection?: Pick<
    GuestConnectionOptions,
    'helloTimeoutMs' | 'requestTimeoutMs' | 'pingIntervalMs' | 'pingTimeoutMs' | 'backoff'
  >;
  readonly log?: (line: string) => void;
}

interface Held {
  user: string;
  password: Buffer;
  domain: string | undefined;
}

interface Watch {
  readonly session: Session;
  readonly context: EventContext;
  conn: GuestConnection | undefined;
  off: () => void;
}

/**
 * The host agent's single sign-on into guests. {@link hold} keeps the credentials the user signed
 * in with (in a Buffer, never a file, an event, a log line, argv or the environment). For
 * each attached session whose workspace sets `spec.guestSignIn`, it connects to the guest agent
 * once the VM runs and, on the hello of each guest-agent instance (the session's start, the guest
 * coming back after a reboot or a watchdog restart), calls {@link signInToGuest} once with a copy
 * of the password that the call wipes. The held password is wiped when a session that used it
 * ends (its VM stopped, or `down`), when new credentials replace it, and when the agent stops.
 *
 * Events: `credentials.held`, `credentials.wiped`, `guest.signed-in`, `guest.sign-in-failed`, and
 * `guest.sign-in-skipped` (no credentials held, or the guest agent cannot sign in).
 *
 * @example
 * ```ts
 * const signOn = new GuestSignOn({ events: agent.events });
 * signOn.hold({ user: 'ana', password: Buffer.from(password, 'utf8'), source: 'login' });
 * signOn.attach('legacy-erp', session); // signs ana in to the guest when its agent says hello
 * await signOn.close(); // the password's bytes are zeroed
 * ```
 */
export class GuestSignOn {
  readonly #o: GuestSignOnOptions;
  readonly #watches = new Map<string, Watch>();
  /** Per VM, the guest-agent instance the user was signed in to (or is being signed in to). */
  readonly #signedIn = new Map<string, string>();
  /** Per VM, the instance a `guest.sign-in-skipped` was published for (once each). */
  readonly #skipped = new Map<string, string>();
  /** VMs a held password was used for: its session's end wipes it. */
  readonly #usedBy = new Set<string>();
  #held: Held | undefined;
  #closed = false;

  constructor(options: GuestSignOnOptions) {
    this.#o = options;
  }

  /** The user whose credentials are held, if any (never the password). */
  get heldUser(): string | undefined {
    return this.#held?.user;
  }

  /**
   * Keeps `credentials` in memory for the sessions that sign in to their guest, replacing (and
   * wiping) any held before. The password's Buffer is taken over: it is zeroed when wiped. Running sessions whose guest agent has not signed a user in yet are
   * signed in now.
   */
  hold(credentials: GuestCredentials): void {
    const { user, password, domain, source } = credentials;
    if (typeof user !== 'string' || user.length === 0 || user.length > 256)
      throw new InvalidInputError('The user of the guest sign-in is empty or too long: expected a sign-in name.', {
        details: { field: 'user' },
      });
    if (!Buffer.isBuffer(password) || password.length === 0)
      throw new InvalidInputError(
        'The password of the guest sign-in is empty: expected the bytes the user signed in with.',
        {
          details: { field: 'password', user },
        },
      );
    if (this.#closed) throw new InvalidInputError('The agent is stopping; sign in again once it runs.');
    this.#wipe('replaced');
    this.#held = { user, password, domain };
    this.#publish('credentials.held', { user, source }, {});
    for (const w of this.#watches.values()) if (w.conn?.state === 'connected') this.#onHello(w);
  }

  /**
   * Watches an attached session: when its workspace asks for single sign-on, connects to its
   * guest agent whenever the VM runs. Attaching the same session again is a no-op.
   */
  attach(workspace: string, session: Session): void {
    if (this.#closed || !session.workspace.spec.guestSignIn) return;
    const have = this.#watches.get(workspace);
    if (have?.session === session) return;
    if (have) void this.#unwatch(workspace, have);
    const context: EventContext = { workspace, session: session.id };
    const w: Watch = { session, context, conn: undefined, off: () => undefined };
    const onTransition = (e: TandemEvent<'session.transition'>): void => {
      if (e.session !== session.id) return;
      if (e.data.to === 'running') this.#connect(w);
      else if (e.data.to === 'stopped') this.#sessionEnded(workspace, w);
    };
    this.#o.events.on('session.transition', onTransition);
    w.off = () => this.#o.events.off('session.transition', onTransition);
    this.#watches.set(workspace, w);
    if (session.state === 'running' || session.state === 'locked') this.#connect(w);
  }

  /**
   * Stops watching a session the agent let go of (it re-opens it, or stops). The held password
   * stays: the session has not ended. `ended`: the session ended (`down`), so it is wiped.
   */
  async detach(workspace: string, options: { ended?: boolean } = {}): Promise<void> {
    const w = this.#watches.get(workspace);
    if (!w) return;
    if (options.ended) this.#sessionEnded(workspace, w);
    await this.#unwatch(workspace, w);
  }

  /** Closes every guest connection and wipes the held password (the agent stops). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wipe('agent-stopped');
    await Promise.all([...this.#watches].map(([ws, w]) => this.#unwatch(ws, w)));
  }

  // --- internals ---

  #connect(w: Watch): void {
    if (w.conn && w.conn.state !== 'closed') return;
    const { session } = w;
    const vm = session.vm;
    const conn = new GuestConnection({
      adapter: session.adapter,
      vm,
      context: w.context,
      ...(this.#o.clock ? { clock: this.#o.clock } : {}),
      software: this.#o.software ?? { name: '@tandem/agent', version: '0.1.0' },
      ...this.#o.connection,
      // The connection's events go where every event goes; its hellos start a sign-in.
      bus: {
        publish: <K extends TandemEventType>(type: K, data: TandemEventMap[K], context?: EventContext) => {
          const r = this.#o.events.publish(type, data, context ?? w.context);
          if (type === 'guest.connected') queueMicrotask(() => this.#onHello(w));
          return r;
        },
      },
    });
    w.conn = conn;
    conn.open({ timeoutMs: this.#o.helloTimeoutMs ?? 600_000 }).catch((err: unknown) => {
      if (w.conn !== conn || this.#closed) return;
      this.#o.log?.(`guest sign-in: no guest agent in ${vm}: ${(err as Error).message}`);
      this.#skip(w, 'none', `no guest agent answered: ${(err as Error).message}`);
    });
  }

  #onHello(w: Watch): void {
    const conn = w.conn;
    const agent = conn?.agent;
    if (!conn || !agent || conn.state !== 'connected' || this.#closed) return;
    const vm = w.session.vm;
    // Once per guest-agent instance: a reconnect to the same agent is the same guest boot.
    if (this.#signedIn.get(vm) === agent.instance) return;
    if (!conn.has('sign-in')) {
      this.#skip(w, agent.instance, `the guest agent ${agent.software} ${agent.version} cannot sign users in`);
      return;
    }
    const held = this.#held;
    if (!held) {
      this.#skip(w, agent.instance, 'no credentials are held: sign in with tandem login (or unlock) first');
      return;
    }
    this.#signedIn.set(vm, agent.instance);
    this.#usedBy.add(vm);
    void signInToGuest({
      connection: conn,
      workspace: w.session.workspace,
      user: held.user,
      password: Buffer.from(held.password),
      ...(held.domain ? { domain: held.domain } : {}),
      bus: this.#o.events,
      context: w.context,
      timeoutMs: this.#o.signInTimeoutMs ?? 120_000,
    }).then(
      (r) => this.#o.log?.(`guest sign-in: ${r.user} signed in to ${vm} (${r.method})`),
      (err: unknown) =>
        this.#o.log?.(
          `guest sign-in: ${held.user} not signed in to ${vm}: ${TandemError.is(err) ? err.code : 'error'} ${(err as Error).message}`,
        ),
    );
  }

  #skip(w: Watch, instance: string, reason: string): void {
    const vm = w.session.vm;
    if (this.#skipped.get(vm) === instance) return;
    this.#skipped.set(vm, instance);
    this.#publish('guest.sign-in-skipped', { vm, reason, ...(this.#held ? { user: this.#held.user } : {}) }, w.context);
  }

  #sessionEnded(workspace: string, w: Watch): void {
    const vm = w.session.vm;
    void this.#unwatch(workspace, w, { keepWatching: true });
    this.#signedIn.delete(vm);
    this.#skipped.delete(vm);
    if (this.#usedBy.delete(vm)) this.#wipe('session-ended');
  }

  async #unwatch(workspace: string, w: Watch, options: { keepWatching?: boolean } = {}): Promise<void> {
    if (!options.keepWatching) {
      w.off();
      if (this.#watches.get(workspace) === w) this.#watches.delete(workspace);
    }
    const conn = w.conn;
    w.conn = undefined;
    await conn?.close();
  }

  #wipe(reason: TandemEventMap['credentials.wiped']['reason']): void {
    const held = this.#held;
    if (!held) return;
    held.password.fill(0);
    this.#held = undefined;
    this.#usedBy.clear();
    this.#publish('credentials.wiped', { user: held.user, reason }, {});
  }

  #publish<K extends TandemEventType>(type: K, data: TandemEventMap[K], context: EventContext): void {
    this.#o.events.publish(type, data, context);
  }
}
