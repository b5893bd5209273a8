import { TandemError } from '@tandem/core';
import { z } from 'zod';
import { AgentProtocolError } from './errors.js';

/** The agent API's version: a client with a newer major is refused at hello; minors only add. */
export const AGENT_API_VERSION = '1.1';
/** The longest line (one message) the agent reads or a client accepts, in bytes. */
export const MAX_MESSAGE_BYTES = 1 << 20;

const workspace = z.string().min(1).max(200).optional();
const empty = z.object({}).strict().optional();

/** The parameters of each method, validated on arrival. */
export const methodParams = {
  hello: z.object({ apiVersion: z.string().regex(/^\d+\.\d+$/), client: z.string().max(200).optional() }).strict(),
  status: empty,
  sessions: empty,
  up: z
    .object({
      file: z.string().min(1).max(4096),
      adapter: z.string().min(1).max(200).optional(),
      adapterOptions: z.record(z.string(), z.string()).optional(),
      layers: z.array(z.string().min(1).max(4096)).max(64).optional(),
      start: z.boolean().optional(),
      takeOver: z.boolean().optional(),
    })
    .strict(),
  down: z.object({ workspace }).strict(),
  stop: z
    .object({ workspace, force: z.boolean().optional(), timeoutMs: z.number().int().min(0).max(86_400_000).optional() })
    .strict(),
  suspend: z.object({ workspace, mode: z.enum(['pause', 'save']).optional() }).strict(),
  resume: z.object({ workspace, takeOver: z.boolean().optional() }).strict(),
  end: z.object({ workspace, timeoutMs: z.number().int().min(0).max(86_400_000).optional() }).strict(),
  lock: z.object({ workspace, reason: z.string().max(500).optional() }).strict(),
  unlock: z.object({ workspace, password: z.string().max(4096).optional() }).strict(),
  /** Since 1.1: the credentials the user signed in with, held in memory for single sign-on into guests. */
  'credentials.hold': z
    .object({
      user: z.string().min(1).max(256),
      password: z.string().min(1).max(4096),
      domain: z.string().min(1).max(256).optional(),
      source: z.string().min(1).max(100).optional(),
    })
    .strict(),
  'snapshot.create': z
    .object({ workspace, name: z.string().min(1).max(200), description: z.string().max(2000).optional() })
    .strict(),
  'snapshot.list': z.object({ workspace }).strict(),
  'snapshot.revert': z.object({ workspace, snapshot: z.string().min(1).max(200) }).strict(),
  'snapshot.delete': z
    .object({ workspace, snapshot: z.string().min(1).max(200), children: z.boolean().optional() })
    .strict(),
  activity: z
    .object({
      workspace,
      source: z.string().min(1).max(100),
      idle: z.boolean().optional(),
      at: z.iso.datetime({ offset: true }).optional(),
    })
    .strict(),
  'events.subscribe': z
    .object({
      since: z.iso.datetime({ offset: true }).optional(),
      afterId: z.string().min(1).max(100).optional(),
      types: z.array(z.string().min(1).max(100)).max(100).optional(),
      workspace,
    })
    .strict(),
  'events.unsubscribe': z.object({ subscription: z.string().min(1).max(100) }).strict(),
  shutdown: empty,
} as const;

/** A method of the agent API. */
export type AgentMethod = keyof typeof methodParams;
/** The parameters of `M`, as a client sends them. */
export type AgentParams<M extends AgentMethod> = z.input<(typeof methodParams)[M]>;

/** The methods, in the order docs/host-agent.md lists them. */
export const AGENT_METHODS = Object.keys(methodParams) as AgentMethod[];

const requestId = z.union([z.string().min(1).max(100), z.number().int().safe()]);

/** A request as it arrives: an id, a known method, parameters checked per method afterwards. */
export const requestSchema = z
  .object({
    id: requestId,
    method: z.enum(AGENT_METHODS as [AgentMethod, ...AgentMethod[]]),
    params: z.unknown().optional(),
  })
  .strict();

/** An error on the wire: what {@link TandemError} says, without the stack or the cause. */
export const wireErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  fault: z.enum(['user', 'policy', 'adapter', 'host']),
  retryable: z.boolean(),
  details: z.record(z.string(), z.unknown()).optional(),
});
/** An error on the wire. */
export type WireError = z.infer<typeof wireErrorSchema>;

/** Anything the agent sends: a reply (result or error) to a request, or a pushed event. */
export const agentMessageSchema = z.union([
  z.object({ id: requestId, result: z.unknown() }).strict(),
  z.object({ id: requestId.nullable(), error: wireErrorSchema }).strict(),
  z.object({ subscription: z.string(), event: z.record(z.string(), z.unknown()) }).strict(),
]);
/** A message from the agent. */
export type AgentMessage = z.infer<typeof agentMessageSchema>;

/** A request after validation. */
export interface AgentRequest {
  id: string | number;
  method: AgentMethod;
  params: unknown;
}

/** The wire form of any error: a TandemError keeps its code; anything else is an internal error. */
export function toWireError(err: unknown): WireError {
  if (TandemError.is(err)) {
    const details = err.details && Object.keys(err.details).length > 0 ? jsonSafe(err.details) : undefined;
    return {
      code: err.code,
      message: err.message,
      fault: err.fault,
      retryable: err.retryable,
      ...(details ? { details } : {}),
    };
  }
  return {
    code: 'TANDEM_AGENT_INTERNAL',
    message: `The agent failed: ${(err as Error)?.message ?? String(err)}`,
    fault: 'host',
    retryable: false,
  };
}

function jsonSafe(details: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * Parses and validates one request line. Throws {@link AgentProtocolError} (with the request's id
 * in `details.id` when one could be read) for anything that is not a valid request.
 */
export function decodeRequest(line: string): AgentRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new AgentProtocolError('The message is not JSON: send one JSON object per line.');
  }
  const id = idOf(raw);
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new AgentProtocolError(`The message is not a valid request: ${z.prettifyError(parsed.error)}`, {
      details: { id },
    });
  }
  const { method } = parsed.data;
  const params = methodParams[method].safeParse(parsed.data.params);
  if (!params.success) {
    throw new AgentProtocolError(`Bad parameters for ${method}: ${z.prettifyError(params.error)}`, {
      details: { id },
    });
  }
  return { id: parsed.data.id, method, params: params.data ?? {} };
}

function idOf(raw: unknown): string | number | null {
  if (raw === null || typeof raw !== 'object') return null;
  const id = (raw as { id?: unknown }).id;
  const ok = requestId.safeParse(id);
  return ok.success ? ok.data : null;
}

/**
 * Splits a byte stream into lines of at most `maxBytes`. A longer line is reported once through
 * `onOversize` and skipped up to its newline, so one bad client message never grows the buffer
 * without bound nor desynchronises the stream.
 *
 * @example
 * ```ts
 * const lines = new LineDecoder(MAX_MESSAGE_BYTES, () => reply({ id: null, error }));
 * socket.on('data', (chunk) => lines.push(chunk).forEach(handle));
 * ```
 */
export class LineDecoder {
  #parts: Buffer[] = [];
  #size = 0;
  #skipping = false;

  constructor(
    readonly maxBytes: number,
    readonly onOversize: () => void,
  ) {}

  /** Feeds a chunk; returns the complete lines it finished, without their newlines. */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      if (this.#skipping) this.#skipping = false;
      else if (this.#size + piece.length > this.maxBytes) this.onOversize();
      else {
        const line = Buffer.concat([...this.#parts, piece]).toString('utf8');
        if (line.trim().length > 0) out.push(line);
      }
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0 && !this.#skipping) {
      if (this.#size + rest.length > this.maxBytes) {
        this.#parts = [];
        this.#size = 0;
        this.#skipping = true;
        this.onOversize();
      } else {
        this.#parts.push(Buffer.from(rest));
        this.#size += rest.length;
      }
    }
    return out;
  }
}

/** One message as a line. */
export function encodeMessage(message: unknown): string {
  return JSON.stringify(message) + '\n';
}

/** True when a client speaking `theirs` may talk to an agent speaking `ours` (same or older major). */
export function compatibleVersion(theirs: string, ours: string = AGENT_API_VERSION): boolean {
  return Number(theirs.split('.')[0]) <= Number(ours.split('.')[0]);
}
