import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { GuestChannelOps } from '../adapter/types.js';
import { systemClock, type Clock } from '../clock.js';
import { CancelledError, InvalidStateError, TandemError, UnsupportedCapabilityError } from '../errors.js';
import type { EventContext } from '../events/bus.js';
import type { TandemEventMap, TandemEventType } from '../events/types.js';
import type { UrlDecision } from '../policy/web-redirection.js';
import { AgentUnreachableError, CapabilityMissingError, GuestOperationError, GuestProtocolError } from './errors.js';
import { MessageStream } from './message-stream.js';
import { runFirstTimeSetup, type FirstTimeSetupOptions, type FirstTimeSetupResult } from './setup.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  GUEST_EVENTS,
  METHODS,
  PROTOCOL_VERSIONS,
  type RDP_POLICY_VALUES,
  isGuestCapability,
  negotiateProtocol,
  type ExecResult,
  type GuestApp,
  type GuestCapability,
  type GuestInfo,
  type GuestMethod,
  type Hello,
  type Message,
  type MethodParams,
  type MethodResult,
  type SetupStatus,
  type SetupStepParams,
  type SetupStepResult,
  type SignInParams,
  type SignInResult,
} from './protocol.js';

/** Where events go: an EventBus, or anything with its `publish`. */
export interface GuestEventPublisher {
  publish<K extends TandemEventType>(type: K, data: TandemEventMap[K], context?: EventContext): unknown;
}

/** Decides where a URL opens: a `SubjectPolicy` from the policy engine fits. */
export interface UrlPolicy {
  decideUrl(url: string, options: { from: 'host' | 'guest' }): UrlDecision;
}

/** Options of {@link GuestConnection}. */
export interface GuestConnectionOptions {
  /** The adapter whose guest channel reaches the VM. */
  readonly adapter: { readonly name: string; readonly guestChannel?: GuestChannelOps };
  readonly vm: string;
  /** Where `guest.*` events go. */
  readonly bus?: GuestEventPublisher;
  /** The workspace and session the events belong to. */
  readonly context?: EventContext;
  /** Time for timeouts, pings and backoff; the mock's VirtualClock drives them in tests. */
  readonly clock?: Clock;
  /** Decides URLs the guest asks the host to open (`url-to-host`); without it they are refused. */
  readonly policy?: UrlPolicy;
  /** Called with a URL the guest asked to open and policy sent to the host: open it there. */
  readonly onUrlToHost?: (url: string, decision: UrlDecision) => void;
  /** How long one handshake attempt waits for the agent's hello (default 5 s). */
  readonly helloTimeoutMs?: number;
  /** Default timeout of a request (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** How often a connected agent is pinged (default 10 s), and how long a ping may take (default 5 s). */
  readonly pingIntervalMs?: number;
  readonly pingTimeoutMs?: number;
  /** Backoff between reconnection attempts (default 250 ms doubling to 5 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly maxMessageBytes?: number;
  /** This host's software name and version, sent in its hello. */
  readonly software?: { readonly name: string; readonly version: string };
}

/** Options of one request. */
export interface GuestRequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The agent as its hello described it. */
export interface AgentDescription {
  readonly software: string;
  readonly version: string;
  readonly protocol: number;
  /** The capabilities this host knows and the agent advertised. */
  readonly capabilities: readonly GuestCapability[];
  /** Capabilities the agent advertised that this host does not know; they are ignored. */
  readonly ignored: readonly string[];
  readonly instance: string;
}

/** Where a {@link GuestConnection} is. */
export type GuestConnectionState = 'idle' | 'connecting' | 'connected' | 'closed';

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
}

interface Waiter {
  readonly resolve: () => void;
}

/**
 * The host end of the guest-agent protocol for one VM. Opens the adapter's guest channel, says
 * hello, keeps the agent pinged, and reconnects with backoff when the guest reboots, the agent
 * restarts or the channel drops. Publishes `guest.*` events.
 *
 * @example
 * ```ts
 * const conn = new GuestConnection({ adapter, vm: 'legacy-erp', bus: events });
 * await conn.open({ timeoutMs: 60_000 });
 * const info = await conn.info();
 * console.log(info.hostname, info.os.kernel);
 * await conn.close();
 * ```
 */
export class GuestConnection {
  readonly vm: string;
  readonly #o: GuestConnectionOptions;
  readonly #clock: Clock;
  readonly #life = new AbortController();
  #state: GuestConnectionState = 'idle';
  #agent: AgentDescription | undefined;
  #everConnected = false;
  #hellos = 0;

  /** How many hellos the agent has sent on this connection (one per connect and reconnect). */
  get hellos(): number {
    return this.#hellos;
  }
  #lastProblem = 'not tried yet';
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #waiters = new Set<Waiter>();
  #loop: Promise<void> | undefined;
  #current: MessageStream | undefined;

  constructor(options: GuestConnectionOptions) {
    this.#o = options;
    this.vm = options.vm;
    this.#clock = options.clock ?? systemClock;
  }

  /** `idle` before open, `connecting` while no agent has answered, `connected`, `closed`. */
  get state(): GuestConnectionState {
    return this.#state;
  }

  /** The connected agent, as its hello described it. */
  get agent(): AgentDescription | undefined {
    return this.#state === 'connected' ? this.#agent : undefined;
  }

  /** True when the connected agent advertised `capability`. */
  has(capability: GuestCapability): boolean {
    return this.agent?.capabilities.includes(capability) === true;
  }

  /**
   * Starts connecting and resolves once the agent said hello (the connection keeps reconnecting
   * afterwards). Rejects with AgentUnreachableError after `timeoutMs` (default 60 s), and
   * UnsupportedCapabilityError when the adapter has no guest channel.
   */
  async open(options: GuestRequestOptions = {}): Promise<AgentDescription> {
    if (this.#state === 'closed')
      throw new InvalidStateError('This guest connection is closed; make a new one.', 'closed');
    const ops = this.#o.adapter.guestChannel;
    if (!ops) {
      throw new UnsupportedCapabilityError(
        `The ${this.#o.adapter.name} adapter has no guest channel, so Tandem cannot reach an agent in VM "${this.vm}".`,
      );
    }
    if (!this.#loop) {
      this.#state = 'connecting';
      this.#loop = this.#run(ops);
    }
    try {
      await this.#whenConnected(options.timeoutMs ?? 60_000, options.signal);
    } catch (err) {
      if (!this.#everConnected) await this.close();
      throw err;
    }
    return this.#agent!;
  }

  /** Stops reconnecting, fails what is pending and closes the channel. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#life.abort();
    this.#current?.close('the host closed the connection');
    this.#failPending(new AgentUnreachableError('The guest connection was closed.', { retryable: false }));
    for (const w of this.#waiters) w.resolve();
    await this.#loop?.catch(() => undefined);
  }

  /** The guest's OS, hostname, addresses, uptime and agent version. */
  async info(options?: GuestRequestOptions): Promise<GuestInfo> {
    return this.request('info', undefined, options);
  }

  /** The applications the guest offers, with PNG icons. */
  async apps(options?: GuestRequestOptions): Promise<GuestApp[]> {
    return (await this.request('apps', undefined, options)).apps;
  }

  /** What the guest has recorded of first-time setup. */
  async setupStatus(options?: GuestRequestOptions): Promise<SetupStatus> {
    return this.request('setup.status', undefined, options);
  }

  /**
   * Runs the workspace's first-time setup through this connection: {@link runFirstTimeSetup}
   * with `connection` set to this one (once per VM instance, recorded on both ends, resumable).
   */
  async setup(options: Omit<FirstTimeSetupOptions, 'connection'>): Promise<FirstTimeSetupResult> {
    return runFirstTimeSetup({ ...options, connection: this });
  }

  /** Runs one first-time-setup step in the guest (see runFirstTimeSetup for the whole flow). */
  async setupStep(params: SetupStepParams, options?: GuestRequestOptions): Promise<SetupStepResult> {
    return this.request('setup.step', params, { timeoutMs: 10 * 60_000, ...options });
  }

  /** Opens a URL in the guest's browser. */
  async openUrl(url: string, options?: GuestRequestOptions): Promise<void> {
    await this.request('open-url', { url }, options);
  }

  /** Runs an allow-listed maintenance command; the guest decides what is allowed. */
  /**
   * Sets Remote Desktop policy values in a Windows guest (`windowsGuestPolicy()` in
   * `@tandem/core/publishing` computes them from the data-transfer policy), so that an RDP client
   * of the user's own cannot open what Tandem's client keeps shut. Needs `rdp-policy`.
   */
  async applyRdpPolicy(
    values: readonly { name: (typeof RDP_POLICY_VALUES)[number]; value: 0 | 1 }[],
    options?: GuestRequestOptions,
  ): Promise<string[]> {
    return (await this.request('rdp-policy.apply', { values: values.map((v) => ({ ...v })) }, options)).applied;
  }

  /**
   * Hands the user's credentials to the agent, which signs the user in to the guest (single
   * sign-on; `signInToGuest` checks the workspace asks for it and publishes
   * the outcome). Needs `sign-in`.
   */
  async signIn(params: SignInParams, options?: GuestRequestOptions): Promise<SignInResult> {
    return this.request('sign-in', params, { timeoutMs: 5 * 60_000, ...options });
  }

  async exec(command: string, args: readonly string[] = [], options?: GuestRequestOptions): Promise<ExecResult> {
    return this.request('exec', { command, args: [...args] }, options);
  }

  /**
   * Sends one request and validates the reply. Waits (up to the timeout) for a connection;
   * rejects with CapabilityMissingError when the agent did not advertise the method's capability,
   * AgentUnreachableError when no agent answers, GuestOperationError with the guest's own message
   * when the agent failed, TimeoutError never: a timeout is AgentUnreachableError (retryable).
   */
  async request<M extends GuestMethod>(
    method: M,
    params: MethodParams<M>,
    options: GuestRequestOptions = {},
  ): Promise<MethodResult<M>> {
    const spec = METHODS[method];
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs ?? 30_000;
    if (this.#state === 'idle') await this.open({ ...options, timeoutMs });
    await this.#whenConnected(timeoutMs, options.signal);
    const cap = spec.capability as GuestCapability | undefined;
    if (cap && !this.has(cap)) {
      throw new CapabilityMissingError(
        `The agent in VM "${this.vm}" (${this.#agent?.software} ${this.#agent?.version}) does not offer "${cap}"; install an agent that does.`,
        cap,
      );
    }
    const raw = await this.#call(method, params, timeoutMs, options.signal);
    const parsed = spec.result.safeParse(raw);
    if (!parsed.success) {
      throw new GuestProtocolError(
        `The agent's answer to ${method} is not valid: ${parsed.error.issues[0]?.message ?? ''}`,
        {
          details: { method },
        },
      );
    }
    return parsed.data as MethodResult<M>;
  }

  // ---- internals ----

  #publish<K extends TandemEventType>(type: K, data: TandemEventMap[K]): void {
    try {
      this.#o.bus?.publish(type, data, this.#o.context ?? {});
    } catch {
      // A sink's failure is not the guest connection's.
    }
  }

  #whenConnected(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state === 'closed') {
      return Promise.reject(new AgentUnreachableError('The guest connection is closed.', { retryable: false }));
    }
    return new Promise<void>((resolve, reject) => {
      const stop = new AbortController();
      const waiter: Waiter = {
        resolve: () => {
          stop.abort();
          this.#waiters.delete(waiter);
          if (this.#state === 'connected') resolve();
          else reject(new AgentUnreachableError('The guest connection was closed.', { retryable: false }));
        },
      };
      this.#waiters.add(waiter);
      const onAbort = (): void => {
        stop.abort();
        this.#waiters.delete(waiter);
        reject(new CancelledError('Waiting for the guest agent was cancelled.'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#clock.sleep(timeoutMs, stop.signal).then(
        () => {
          this.#waiters.delete(waiter);
          signal?.removeEventListener('abort', onAbort);
          reject(
            new AgentUnreachableError(
              `No guest agent answered in VM "${this.vm}" within ${timeoutMs} ms (${this.#lastProblem}). Is the agent installed and running, and does the VM have a guest channel?`,
              { details: { vm: this.vm, lastProblem: this.#lastProblem } },
            ),
          );
        },
        () => signal?.removeEventListener('abort', onAbort),
      );
    });
  }

  #call(method: string, params: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(new CancelledError(`The ${method} request was cancelled.`));
    const stream = this.#current;
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const stop = new AbortController();
      const finish = (): void => {
        stop.abort();
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      const onAbort = (): void => {
        finish();
        stream?.send({ type: 'cancel', id });
        reject(new CancelledError(`The ${method} request was cancelled.`));
      };
      this.#pending.set(id, {
        method,
        resolve: (v) => (finish(), resolve(v)),
        reject: (e) => (finish(), reject(e)),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#clock.sleep(timeoutMs, stop.signal).then(
        () => {
          finish();
          stream?.send({ type: 'cancel', id });
          reject(
            new AgentUnreachableError(`The agent in VM "${this.vm}" did not answer ${method} within ${timeoutMs} ms.`, {
              details: { vm: this.vm, method, timeoutMs },
            }),
          );
        },
        () => undefined,
      );
      const sent = stream?.send({ type: 'request', id, method, ...(params === undefined ? {} : { params }) }) ?? false;
      if (!sent) {
        this.#pending.get(id)?.reject(new AgentUnreachableError(`The channel to VM "${this.vm}" is closed.`));
      }
    });
  }

  #failPending(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) p.reject(err);
  }

  #backoffMs(attempt: number): number {
    const { initialMs, maxMs } = this.#o.backoff ?? { initialMs: 250, maxMs: 5000 };
    return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  }

  async #run(ops: GuestChannelOps): Promise<void> {
    let attempt = 0;
    while (!this.#life.signal.aborted) {
      let stream: Duplex;
      try {
        stream = await ops.open(this.vm, { signal: this.#life.signal });
      } catch (err) {
        if (this.#life.signal.aborted) break;
        const message = err instanceof Error ? err.message : String(err);
        if (message !== this.#lastProblem) {
          this.#publish('guest.error', { vm: this.vm, code: TandemError.is(err) ? err.code : 'TANDEM_HOST', message });
        }
        this.#lastProblem = message;
        // A VM without a guest channel will not grow one: stop instead of retrying forever.
        if (TandemError.is(err, 'TANDEM_INVALID_INPUT') || TandemError.is(err, 'TANDEM_UNSUPPORTED')) {
          await this.#giveUp();
          break;
        }
        await this.#sleep(this.#backoffMs(attempt++));
        continue;
      }
      const helloed = await this.#serve(stream);
      if (helloed) attempt = 0;
      if (this.#life.signal.aborted) break;
      await this.#sleep(this.#backoffMs(attempt++));
    }
  }

  async #giveUp(): Promise<void> {
    this.#state = 'closed';
    for (const w of this.#waiters) w.resolve();
  }

  async #sleep(ms: number): Promise<void> {
    await this.#clock.sleep(ms, this.#life.signal).catch(() => undefined);
  }

  /** Serves one opened stream until it closes or the agent goes silent. True when an agent said hello. */
  async #serve(stream: Duplex): Promise<boolean> {
    const done = new AbortController();
    let closeReason = 'the channel closed';
    let nonce = '';
    let synced = false;
    let helloed = false;
    let connected = false;
    let handshakeAt = 0;

    const send = (m: Message): boolean => ms.send(m);
    const handshake = (): void => {
      nonce = randomUUID();
      synced = false;
      handshakeAt = this.#clock.now();
      send({ type: 'sync', id: nonce });
      send(this.#hello());
    };
    const disconnect = (reason: string): void => {
      if (!connected) return;
      connected = false;
      if (this.#state === 'connected') this.#state = 'connecting';
      this.#lastProblem = reason;
      this.#failPending(
        new AgentUnreachableError(`Lost the agent in VM "${this.vm}": ${reason}.`, { details: { reason } }),
      );
      this.#publish('guest.disconnected', { vm: this.vm, reason });
    };
    const onHello = (m: Hello): void => {
      if (m.role !== 'agent') return;
      if (connected && this.#agent?.instance === m.instance) return;
      if (connected) {
        // Another instance: the agent restarted. Whatever the old one was doing is lost.
        disconnect('the agent restarted');
        handshake();
        return;
      }
      if (!synced) {
        // An agent that just started announces itself: answer at once instead of waiting.
        if (this.#clock.now() - handshakeAt > 0) handshake();
        return;
      }
      const protocol = m.protocol ?? negotiateProtocol(PROTOCOL_VERSIONS, m.protocols);
      if (protocol === undefined || !PROTOCOL_VERSIONS.includes(protocol)) {
        this.#lastProblem = `the agent speaks protocol versions ${m.protocols.join(', ')}, this host ${PROTOCOL_VERSIONS.join(', ')}`;
        this.#publish('guest.error', { vm: this.vm, code: 'TANDEM_GUEST_PROTOCOL', message: this.#lastProblem });
        return;
      }
      const known = m.capabilities.filter(isGuestCapability);
      const ignored = m.capabilities.filter((c) => !isGuestCapability(c));
      this.#agent = {
        software: m.software,
        version: m.version,
        protocol,
        capabilities: known,
        ignored,
        instance: m.instance,
      };
      connected = true;
      helloed = true;
      const reconnect = this.#everConnected;
      this.#everConnected = true;
      this.#hellos += 1;
      this.#state = 'connected';
      this.#publish('guest.connected', {
        vm: this.vm,
        agent: m.software,
        agentVersion: m.version,
        protocol,
        reconnect,
      });
      this.#publish('guest.capabilities', { vm: this.vm, capabilities: [...known], ignored });
      for (const w of [...this.#waiters]) w.resolve();
    };
    const onMessage = (m: Message): void => {
      if (m.type === 'sync-ack') {
        if (m.id === nonce) synced = true;
        return;
      }
      if (m.type === 'hello') {
        onHello(m);
        return;
      }
      if (m.type === 'sync') {
        send({ type: 'sync-ack', id: m.id });
        return;
      }
      // Until the sync is acknowledged, everything is a leftover of an earlier conversation.
      if (!synced) return;
      switch (m.type) {
        case 'reply': {
          const p = this.#pending.get(m.id);
          if (!p) return; // a late answer to a request that timed out: dropped
          if ('error' in m) {
            const e = m.error;
            if (e.code === 'hello-first') {
              // The agent does not know this host: it restarted and its hello was lost.
              p.reject(new AgentUnreachableError(`The agent in VM "${this.vm}" restarted.`));
              if (connected) {
                disconnect('the agent restarted');
                handshake();
              }
              return;
            }
            if (e.code === 'capability-missing') {
              p.reject(new CapabilityMissingError(`The agent in VM "${this.vm}": ${e.message}`, p.method));
            } else {
              p.reject(
                new GuestOperationError(`The agent in VM "${this.vm}" could not ${p.method}: ${e.message}`, e.message, {
                  retryable: e.retryable,
                  details: { vm: this.vm, method: p.method, guestCode: e.code, guestMessage: e.message },
                }),
              );
            }
          } else p.resolve(m.result);
          return;
        }
        case 'event':
          this.#onEvent(m.name, m.data);
          return;
        case 'protocol-error': {
          const p = m.id === undefined ? undefined : this.#pending.get(m.id);
          const err = new GuestProtocolError(`The agent in VM "${this.vm}" rejected a message: ${m.message}`, {
            details: { vm: this.vm, code: m.code },
          });
          if (p) p.reject(err);
          else this.#publish('guest.error', { vm: this.vm, code: err.code, message: err.message });
          return;
        }
        default:
          send({ type: 'protocol-error', code: 'unexpected', message: `a ${m.type} message from the agent` });
      }
    };

    const ms: MessageStream = new MessageStream(stream, {
      maxMessageBytes: this.#o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      onMessage,
      onProblem: (p) => {
        if (p.problem === 'stray' && !synced) return; // boot noise before the agent runs
        const message = `dropped input from the agent: ${p.detail}`;
        const pending = p.id === undefined ? undefined : this.#pending.get(p.id);
        if (pending) pending.reject(new GuestProtocolError(`The agent in VM "${this.vm}" sent ${message}`));
        this.#publish('guest.error', { vm: this.vm, code: 'TANDEM_GUEST_PROTOCOL', message });
      },
      onClose: (reason) => {
        closeReason = reason;
        done.abort();
      },
    });
    this.#current = ms;
    handshake();

    const helloTimeout = this.#o.helloTimeoutMs ?? 5000;
    const pingInterval = this.#o.pingIntervalMs ?? 10_000;
    const pingTimeout = this.#o.pingTimeoutMs ?? 5000;
    const stopAll = AbortSignal.any([done.signal, this.#life.signal]);
    try {
      while (!stopAll.aborted) {
        if (!connected) {
          // Wait for the hello; the agent may be booting. Give up on this stream after the timeout.
          await this.#clock.sleep(helloTimeout, stopAll).catch(() => undefined);
          if (stopAll.aborted) break;
          if (!connected) {
            closeReason = `no hello from the agent within ${helloTimeout} ms`;
            break;
          }
          continue;
        }
        await this.#clock.sleep(pingInterval, stopAll).catch(() => undefined);
        if (stopAll.aborted || !connected) continue;
        try {
          await this.#call('ping', undefined, pingTimeout, stopAll);
        } catch (err) {
          if (stopAll.aborted) break;
          if (TandemError.is(err, 'TANDEM_AGENT_UNREACHABLE') && connected) {
            closeReason = `the agent did not answer a ping within ${pingTimeout} ms`;
            break;
          }
        }
      }
    } finally {
      this.#lastProblem = closeReason;
      disconnect(closeReason);
      if (this.#current === ms) this.#current = undefined;
      ms.close(closeReason);
    }
    return helloed;
  }

  #hello(): Hello {
    return {
      type: 'hello',
      role: 'host',
      software: this.#o.software?.name ?? '@tandem/core',
      version: this.#o.software?.version ?? '0.1.0',
      protocols: [...PROTOCOL_VERSIONS],
      capabilities: [],
      instance: randomUUID(),
    };
  }

  #onEvent(name: string, data: unknown): void {
    if (!Object.hasOwn(GUEST_EVENTS, name)) {
      this.#publish('guest.error', {
        vm: this.vm,
        code: 'TANDEM_GUEST_PROTOCOL',
        message: `an unknown event "${name}"`,
      });
      return;
    }
    const spec = GUEST_EVENTS[name as keyof typeof GUEST_EVENTS];
    if (!this.has(spec.capability)) {
      this.#publish('guest.error', {
        vm: this.vm,
        code: 'TANDEM_GUEST_PROTOCOL',
        message: `a "${name}" event from an agent that did not advertise "${spec.capability}"`,
      });
      return;
    }
    const parsed = spec.data.safeParse(data);
    if (!parsed.success) {
      this.#publish('guest.error', {
        vm: this.vm,
        code: 'TANDEM_GUEST_PROTOCOL',
        message: `an invalid "${name}" event`,
      });
      return;
    }
    this.#urlToHost(parsed.data.url);
  }

  #urlToHost(url: string): void {
    const policy = this.#o.policy;
    if (!policy) {
      this.#publish('guest.url-to-host', {
        vm: this.vm,
        url,
        target: 'guest',
        redirect: false,
        reason: 'no policy was given to the guest connection, so no URL from the guest opens on the host',
      });
      return;
    }
    let decision: UrlDecision;
    try {
      decision = policy.decideUrl(url, { from: 'guest' });
    } catch (err) {
      this.#publish('guest.url-to-host', {
        vm: this.vm,
        url,
        target: 'guest',
        redirect: false,
        reason: `not opened on the host: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    this.#publish('guest.url-to-host', {
      vm: this.vm,
      url,
      target: decision.target,
      redirect: decision.redirect,
      reason: decision.reason,
      layer: decision.layer,
      ...(decision.rule ? { rule: decision.rule.label } : {}),
    });
    if (decision.redirect && decision.target === 'host') {
      try {
        this.#o.onUrlToHost?.(url, decision);
      } catch {
        // the handler's own failure
      }
    }
  }
}
