import { createConnection, type Socket } from 'node:net';
import { TandemError, type AnyTandemEvent, type SnapshotInfo } from '@tandem/core';
import { AgentProtocolError, AgentUnavailableError } from './errors.js';
import type { AgentStatus, SessionSummary } from './host-agent.js';
import {
  AGENT_API_VERSION,
  LineDecoder,
  MAX_MESSAGE_BYTES,
  agentMessageSchema,
  encodeMessage,
  type AgentMethod,
  type AgentParams,
  type WireError,
} from './protocol.js';

/** An error the agent answered with, rebuilt as a {@link TandemError} with the same code. */
export class AgentReplyError extends TandemError {
  override readonly name = 'AgentReplyError';
  constructor(wire: WireError) {
    super(wire.message, {
      code: wire.code,
      fault: wire.fault,
      retryable: wire.retryable,
      ...(wire.details ? { details: wire.details } : {}),
    });
  }
}

/** What the agent answered to hello. */
export interface AgentHello {
  apiVersion: string;
  agentVersion: string;
  pid: number;
  uid: number;
}

/** Results of each method. */
export interface AgentResults {
  hello: AgentHello;
  status: AgentStatus;
  sessions: { sessions: SessionSummary[] };
  up: SessionSummary;
  down: { workspace: string; session: string; launchersRemoved: string[] };
  stop: SessionSummary;
  suspend: SessionSummary;
  resume: SessionSummary;
  end: SessionSummary & { action: string };
  lock: SessionSummary;
  unlock: SessionSummary;
  'credentials.hold': { held: true; user: string };
  'snapshot.create': SnapshotInfo;
  'snapshot.list': { snapshots: SnapshotInfo[] };
  'snapshot.revert': SessionSummary;
  'snapshot.delete': SessionSummary;
  activity: { at: string };
  'events.subscribe': { subscription: string; replayed: number };
  'events.unsubscribe': { unsubscribed: boolean };
  shutdown: { stopping: boolean };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * A typed client of the agent's socket, for the CLI and for integrators (a tray app). `connect`
 * says hello; every method returns the agent's result or throws the agent's error as a
 * TandemError with the agent's code.
 *
 * @example
 * ```ts
 * const client = await AgentClient.connect(agentSocketPath(stateDir, { defaultStateDir: true }));
 * const { sessions } = await client.call('sessions');
 * await client.subscribe({ since: new Date(0).toISOString() }, (e) => console.log(e.type));
 * await client.call('lock', { workspace: 'legacy-erp' });
 * client.close();
 * ```
 */
export class AgentClient {
  readonly socket: Socket;
  hello: AgentHello | undefined;
  #next = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Map<string, (e: AnyTandemEvent) => void>();
  #early = new Map<string, AnyTandemEvent[]>();
  #closed: Promise<void>;
  #error: TandemError | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    const decoder = new LineDecoder(MAX_MESSAGE_BYTES, () => {
      this.#fail(new AgentProtocolError('The agent sent a message longer than the limit.'));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const line of decoder.push(chunk)) this.#receive(line);
    });
    this.#closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.#fail(this.#error ?? new AgentUnavailableError('The agent closed the connection.'));
        resolve();
      });
    });
    socket.on('error', (err) => {
      this.#error ??= new AgentUnavailableError(`The agent's socket failed: ${err.message}`, { cause: err });
    });
  }

  /**
   * Connects and says hello. Throws {@link AgentUnavailableError} when no agent listens, or the
   * agent's error (a refused peer, a newer major version) when it refuses.
   */
  static async connect(
    socketPath: string,
    options: { client?: string; apiVersion?: string; timeoutMs?: number } = {},
  ): Promise<AgentClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new AgentUnavailableError(`The agent at ${socketPath} did not answer.`));
      }, options.timeoutMs ?? 10_000);
      s.once('connect', () => (clearTimeout(timer), resolve(s)));
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new AgentUnavailableError(`No agent listens on ${socketPath} (${err.code ?? err.message}).`, {
            cause: err,
            details: { socket: socketPath },
          }),
        );
      });
    });
    const client = new AgentClient(socket);
    try {
      client.hello = await client.call('hello', {
        apiVersion: options.apiVersion ?? AGENT_API_VERSION,
        ...(options.client ? { client: options.client } : {}),
      });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Sends a request and waits for its reply. */
  call<M extends AgentMethod>(
    method: M,
    ...params: undefined extends AgentParams<M> ? [AgentParams<M>?] : [AgentParams<M>]
  ): Promise<AgentResults[M]> {
    if (this.#error) return Promise.reject(this.#error);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(encodeMessage({ id, method, ...(params[0] !== undefined ? { params: params[0] } : {}) }));
    });
  }

  /** Subscribes to events (after the stored ones since `since`, when given); returns the subscription id. */
  async subscribe(params: AgentParams<'events.subscribe'>, listener: (event: AnyTandemEvent) => void): Promise<string> {
    const { subscription } = await this.call('events.subscribe', params);
    this.#listeners.set(subscription, listener);
    for (const e of this.#early.get(subscription) ?? []) listener(e);
    this.#early.delete(subscription);
    return subscription;
  }

  /** Resolves when the connection closes (the agent stopped, say). */
  closed(): Promise<void> {
    return this.#closed;
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  #receive(line: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return this.#fail(new AgentProtocolError('The agent sent a line that is not JSON.'));
    }
    const parsed = agentMessageSchema.safeParse(raw);
    if (!parsed.success)
      return this.#fail(new AgentProtocolError('The agent sent a message this client does not know.'));
    const m = parsed.data;
    if ('subscription' in m) {
      const e = m.event as unknown as AnyTandemEvent;
      const l = this.#listeners.get(m.subscription);
      if (l) l(e);
      else this.#early.set(m.subscription, [...(this.#early.get(m.subscription) ?? []), e]);
      return;
    }
    if (m.id === null || typeof m.id !== 'number') {
      // An error not tied to a request (a refused peer): everything pending fails with it.
      if ('error' in m) this.#fail(new AgentReplyError(m.error));
      return;
    }
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    if ('error' in m) p.reject(new AgentReplyError(m.error));
    else p.resolve(m.result);
  }

  #fail(err: TandemError): void {
    this.#error ??= err;
    for (const p of this.#pending.values()) p.reject(this.#error);
    this.#pending.clear();
  }
}
