import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { z } from 'zod';
import { TandemError } from '../errors.js';
import { GuestOperationError } from './errors.js';
import { MessageStream } from './message-stream.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  GUEST_EVENTS,
  METHODS,
  PROTOCOL_VERSIONS,
  negotiateProtocol,
  type GuestCapability,
  type GuestMethod,
  type Hello,
  type Message,
  type MethodResult,
  type RequestMessage,
  type WireError,
} from './protocol.js';

/** Handles one method in the guest. `params` are already validated; throw to answer with an error. */
export type AgentMethodHandler<M extends GuestMethod> = (
  params: Exclude<z.infer<(typeof METHODS)[M]['params']>, undefined> | undefined,
  context: { signal: AbortSignal },
) => Promise<MethodResult<M>>;

/** The methods an agent implements. A capability is advertised only when its methods are here. */
export type AgentHandlers = { [M in GuestMethod]?: AgentMethodHandler<M> };

type AnyHandler = (params: unknown, context: { signal: AbortSignal }) => Promise<unknown>;

interface AgentSession {
  readonly stream: MessageStream;
  helloed: boolean;
  readonly running: Map<number, AbortController>;
}

/** Options of {@link AgentEndpoint}. */
export interface AgentEndpointOptions {
  /** `@tandem/guest-agent` or your own agent's name. */
  readonly software: string;
  readonly version: string;
  readonly handlers: AgentHandlers;
  /** Capabilities that need no method (`url-to-host`: the agent sends events). */
  readonly eventCapabilities?: readonly GuestCapability[];
  readonly maxMessageBytes?: number;
  /** Something went wrong that the agent should log. */
  readonly onProblem?: (message: string) => void;
}

/**
 * The guest end of the protocol: answers the host's sync and hello, validates and dispatches
 * requests to the handlers, cancels them on request, and sends events once the host said hello.
 * Serve one stream at a time with {@link AgentEndpoint.serve}; when the host goes away, serve the
 * next one.
 *
 * @example
 * ```ts
 * const endpoint = new AgentEndpoint({ software: 'my-agent', version: '1.0.0', handlers: { info: async () => facts() } });
 * const { reason } = await endpoint.serve(socket); // when the stream closes
 * ```
 */
export class AgentEndpoint {
  /** A fresh id per agent process: the host sees a restart when it changes. */
  readonly instance = randomUUID();
  readonly capabilities: readonly GuestCapability[];
  readonly #options: AgentEndpointOptions;
  #current: AgentSession | undefined;

  constructor(options: AgentEndpointOptions) {
    this.#options = options;
    const caps = new Set<GuestCapability>(options.eventCapabilities ?? []);
    for (const [method, spec] of Object.entries(METHODS)) {
      if (spec.capability && options.handlers[method as GuestMethod]) caps.add(spec.capability);
    }
    this.capabilities = [...caps];
  }

  /** True while a host that said hello is on the channel. */
  get hostConnected(): boolean {
    return this.#current?.helloed === true && !this.#current.stream.closed;
  }

  /**
   * Serves one stream until it closes; resolves with the reason and whether a host said hello.
   * Sends a hello at once, so a host that is already waiting learns that the agent (re)started.
   */
  serve(stream: Duplex): Promise<{ reason: string; hostSaidHello: boolean }> {
    return new Promise((resolve) => {
      const running = new Map<number, AbortController>();
      const ms: MessageStream = new MessageStream(stream, {
        maxMessageBytes: this.#options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        onMessage: (m) => this.#onMessage(session, m),
        onProblem: (p) => {
          this.#options.onProblem?.(`dropped input from the host: ${p.detail}`);
          if (p.problem === 'stray') return;
          const code = p.problem === 'oversized' ? 'oversized' : p.problem === 'truncated' ? 'truncated' : 'malformed';
          if (p.problem === 'malformed' && p.id !== undefined) {
            this.#send(session, {
              type: 'reply',
              id: p.id,
              error: { code: 'malformed', message: p.detail, retryable: false },
            });
          } else {
            this.#send(session, { type: 'protocol-error', code, message: p.detail });
          }
        },
        onClose: (reason) => {
          for (const c of running.values()) c.abort();
          running.clear();
          if (this.#current === session) this.#current = undefined;
          resolve({ reason, hostSaidHello: session.helloed });
        },
      });
      const session: AgentSession = { stream: ms, helloed: false, running };
      this.#current = session;
      this.#send(session, this.#hello());
    });
  }

  /**
   * Sends an event to the host. False when no host is connected (the caller says so to whoever
   * asked) or when the event's capability is not advertised.
   */
  sendEvent<E extends keyof typeof GUEST_EVENTS>(name: E, data: z.infer<(typeof GUEST_EVENTS)[E]['data']>): boolean {
    const session = this.#current;
    if (!session?.helloed || !this.capabilities.includes(GUEST_EVENTS[name].capability)) return false;
    return this.#send(session, { type: 'event', name, data });
  }

  /** Closes the current stream, if any. */
  close(): void {
    this.#current?.stream.close('the agent stopped');
  }

  #hello(protocol?: number): Hello {
    return {
      type: 'hello',
      role: 'agent',
      software: this.#options.software,
      version: this.#options.version,
      protocols: [...PROTOCOL_VERSIONS],
      capabilities: [...this.capabilities],
      instance: this.instance,
      ...(protocol === undefined ? {} : { protocol }),
    };
  }

  #send(session: AgentSession, message: Message): boolean {
    try {
      return session.stream.send(message);
    } catch (err) {
      // Too large: answer the request with an error instead, which is always small.
      this.#options.onProblem?.(err instanceof Error ? err.message : String(err));
      if (message.type === 'reply') {
        return session.stream.send({
          type: 'reply',
          id: message.id,
          error: { code: 'oversized', message: 'The answer is larger than the message limit.', retryable: false },
        });
      }
      return false;
    }
  }

  #onMessage(session: AgentSession, m: Message): void {
    switch (m.type) {
      case 'sync':
        this.#send(session, { type: 'sync-ack', id: m.id });
        return;
      case 'hello': {
        if (m.role !== 'host') {
          this.#send(session, { type: 'protocol-error', code: 'unexpected', message: 'a hello from another agent' });
          return;
        }
        const protocol = negotiateProtocol(PROTOCOL_VERSIONS, m.protocols);
        if (protocol === undefined) {
          this.#send(session, {
            type: 'protocol-error',
            code: 'version',
            message: `this agent speaks protocol versions ${PROTOCOL_VERSIONS.join(', ')}, the host ${m.protocols.join(', ')}`,
          });
          return;
        }
        session.helloed = true;
        this.#send(session, this.#hello(protocol));
        return;
      }
      case 'request':
        this.#request(session, m);
        return;
      case 'cancel':
        session.running.get(m.id)?.abort();
        return;
      case 'sync-ack':
      case 'protocol-error':
        return;
      default:
        this.#send(session, {
          type: 'protocol-error',
          code: 'unexpected',
          message: `a ${m.type} message from the host`,
        });
    }
  }

  #request(session: AgentSession, m: RequestMessage): void {
    const fail = (error: WireError): void => void this.#send(session, { type: 'reply', id: m.id, error });
    if (!session.helloed) {
      fail({ code: 'hello-first', message: 'Say hello before sending requests.', retryable: true });
      return;
    }
    if (!Object.hasOwn(METHODS, m.method)) {
      fail({ code: 'unknown-method', message: `This agent has no method "${m.method}".`, retryable: false });
      return;
    }
    const method = m.method as GuestMethod;
    const spec = METHODS[method];
    const handler = this.#options.handlers[method] as AnyHandler | undefined;
    if (!handler) {
      fail({
        code: 'capability-missing',
        message: `This agent does not offer "${spec.capability ?? method}".`,
        retryable: false,
      });
      return;
    }
    const params = spec.params.safeParse(m.params);
    if (!params.success) {
      const issue = params.error.issues[0];
      fail({
        code: 'invalid-params',
        message: `Invalid params for ${method}${issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`,
        retryable: false,
      });
      return;
    }
    if (session.running.has(m.id)) {
      fail({ code: 'duplicate-id', message: `Request ${m.id} is already running.`, retryable: false });
      return;
    }
    const controller = new AbortController();
    session.running.set(m.id, controller);
    void (async () => {
      try {
        const result = await handler(params.data, { signal: controller.signal });
        if (!controller.signal.aborted) this.#send(session, { type: 'reply', id: m.id, result });
      } catch (err) {
        if (!controller.signal.aborted) fail(toWireError(err));
      } finally {
        session.running.delete(m.id);
      }
    })();
  }
}

/** The wire form of an error a handler threw: a TandemError keeps its code and retryability. */
export function toWireError(err: unknown): WireError {
  if (err instanceof GuestOperationError) {
    const guestCode = typeof err.details.guestCode === 'string' ? err.details.guestCode : 'failed';
    return { code: guestCode.slice(0, 64), message: err.guestMessage.slice(0, 4096), retryable: err.retryable };
  }
  if (TandemError.is(err)) {
    const guestCode = typeof err.details.guestCode === 'string' ? err.details.guestCode : err.code;
    return { code: guestCode.slice(0, 64), message: err.message.slice(0, 4096), retryable: err.retryable };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'failed', message: message.slice(0, 4096), retryable: false };
}
