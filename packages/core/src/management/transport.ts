import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { z } from 'zod';
import { ManagementError } from './errors.js';
import { ErrorReplySchema } from './wire.js';

/** The default time limit of one request to a management server, in ms. */
export const DEFAULT_MANAGEMENT_TIMEOUT_MS = 30_000;

/** Options of {@link ManagementTransport}. */
export interface ManagementTransportOptions {
  /** `https://tandem.corp.example:8443` (http:// only for tests on loopback). */
  readonly baseUrl: string | URL;
  /** PEM of the CA (or the self-signed certificate) to trust instead of the system's. */
  readonly ca?: string | undefined;
  /** A request's time limit in ms; default {@link DEFAULT_MANAGEMENT_TIMEOUT_MS}. */
  readonly timeoutMs?: number | undefined;
  /**
   * How the user of this transport passes a CA, for the message of an untrusted certificate:
   * `tandem login --ca FILE` (the default), `--ca FILE`...
   */
  readonly caHint?: string | undefined;
}

/** One request: the path below the base URL's, the body and the caller's own headers (its authorization). */
export interface TransportRequest {
  readonly method: string;
  /** The path below the base URL's path: `/v1/endpoint/check-in`. */
  readonly path: string;
  readonly body: Buffer;
  readonly headers?: OutgoingHttpHeaders;
  readonly signal?: AbortSignal | undefined;
}

/** The raw answer of the server. */
export interface TransportReply {
  readonly status: number;
  readonly text: string;
}

/**
 * The one HTTP(S) transport to a management server, shared by the endpoint's
 * {@link ManagementClient} (device-signed requests) and the CLI's admin calls (a bearer token):
 * each caller adds its own authorization headers. It applies the time limit, trusts the given CA
 * and turns every failure to get an answer into a {@link ManagementError}: an untrusted
 * certificate (`TANDEM_AUTH`, reason `untrusted-certificate`, saying how to pass the CA), a
 * cancellation (`TANDEM_CANCELLED`), no answer in time or no connection (`TANDEM_UNREACHABLE`,
 * retryable). {@link readManagementReply} reads the answer against a schema.
 *
 * @example
 * ```ts
 * const transport = new ManagementTransport({ baseUrl: 'https://tandem.corp.example:8443', ca, caHint: '--ca FILE' });
 * const body = Buffer.from(JSON.stringify({ workspace: 'erp' }));
 * const reply = await transport.send({ method: 'POST', path: '/v1/admin/explain', body, headers: { authorization: `Bearer ${token}` } });
 * const data = readManagementReply(reply);
 * ```
 */
export class ManagementTransport {
  readonly baseUrl: URL;
  readonly timeoutMs: number;
  readonly #ca: string | undefined;
  readonly #caHint: string;

  constructor(options: ManagementTransportOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch (cause) {
      throw new ManagementError(
        `${String(options.baseUrl)} is not a URL of a management server: expected https://host:8443.`,
        { code: 'TANDEM_INVALID_INPUT', status: 0, cause },
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new ManagementError(
        `${String(options.baseUrl)} is not an http(s) URL of a management server: expected https://host:8443.`,
        { code: 'TANDEM_INVALID_INPUT', status: 0 },
      );
    const timeoutMs = options.timeoutMs ?? DEFAULT_MANAGEMENT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ManagementError(`The time limit ${timeoutMs} ms is not a positive number of milliseconds.`, {
        code: 'TANDEM_INVALID_INPUT',
        status: 0,
      });
    this.baseUrl = url;
    this.timeoutMs = timeoutMs;
    this.#ca = options.ca;
    this.#caHint = options.caHint ?? 'tandem login --ca FILE';
  }

  /** The full path of `path` on the server (below the base URL's own path). */
  pathOf(path: string): string {
    return this.baseUrl.pathname.replace(/\/$/, '') + path;
  }

  /** Sends one request and resolves with the server's status and body, whatever the status. */
  send(request: TransportRequest): Promise<TransportReply> {
    const https = this.baseUrl.protocol === 'https:';
    const make = https ? httpsRequest : httpRequest;
    const { signal } = request;
    return new Promise((resolve, reject) => {
      const req = make(
        {
          protocol: this.baseUrl.protocol,
          hostname: this.baseUrl.hostname.replace(/^\[|\]$/g, ''),
          port: this.baseUrl.port || (https ? 443 : 80),
          method: request.method,
          path: this.pathOf(request.path),
          headers: {
            'content-type': 'application/json',
            'content-length': String(request.body.length),
            ...request.headers,
          },
          timeout: this.timeoutMs,
          ...(https && this.#ca !== undefined ? { ca: this.#ca } : {}),
          ...(signal !== undefined ? { signal } : {}),
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (cause) => reject(this.#unreachable(cause)));
        },
      );
      req.on('timeout', () => {
        const err = Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' });
        req.destroy(err);
      });
      req.on('error', (cause) => reject(this.#unreachable(cause)));
      req.end(request.body);
    });
  }

  #unreachable(cause: unknown): ManagementError {
    const url = this.baseUrl;
    const code = (cause as { code?: string }).code ?? '';
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code))
      return new ManagementError(
        `The management server at ${url.origin} presented a certificate this device does not trust (${code}). Pass its CA (${this.#caHint}).`,
        { code: 'TANDEM_AUTH', status: 0, reason: 'untrusted-certificate', cause },
      );
    if ((cause as Error).name === 'AbortError')
      return new ManagementError('The request to the management server was cancelled.', {
        code: 'TANDEM_CANCELLED',
        status: 0,
        cause,
      });
    if (code === 'ETIMEDOUT')
      return new ManagementError(
        `The management server at ${url.origin} did not answer within ${this.timeoutMs} ms; work continues offline within the lease.`,
        { code: 'TANDEM_UNREACHABLE', status: 0, reason: 'timeout', retryable: true, cause },
      );
    return new ManagementError(
      `The management server at ${url.origin} cannot be reached (${code || (cause as Error).message}); work continues offline within the lease.`,
      { code: 'TANDEM_UNREACHABLE', status: 0, retryable: true, cause },
    );
  }
}

/**
 * Reads a management server's answer: its JSON (checked against `schema` when given) when the
 * status is below 400, else the server's error ({@link ErrorReplySchema}) as a {@link ManagementError}
 * with its code, reason and status. An answer that is not JSON or does not match is a
 * `TANDEM_PROTOCOL` error.
 *
 * @example
 * ```ts
 * const reply = await transport.send({ method: 'POST', path: ROUTES.checkIn, body });
 * const checkIn = readManagementReply(reply, CheckInReplySchema);
 * ```
 */
export function readManagementReply<S extends z.ZodType = z.ZodUnknown>(
  reply: TransportReply,
  schema?: S,
): z.output<S> {
  const { status, text } = reply;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new ManagementError(`The management server answered HTTP ${status} with something that is not JSON.`, {
      code: 'TANDEM_PROTOCOL',
      status,
      retryable: status >= 500,
      cause,
    });
  }
  if (status >= 400) {
    const e = ErrorReplySchema.safeParse(data);
    if (!e.success)
      throw new ManagementError(`The management server answered HTTP ${status}.`, {
        code: 'TANDEM_PROTOCOL',
        status,
        retryable: status >= 500,
      });
    throw new ManagementError(e.data.message, {
      code: e.data.code,
      status,
      reason: e.data.reason,
      retryable: e.data.retryable || status === 503 || status === 429,
    });
  }
  if (schema === undefined) return data as z.output<S>;
  const parsed = schema.safeParse(data);
  if (!parsed.success)
    throw new ManagementError(
      `The management server's reply does not match this client's protocol (${parsed.error.issues[0]?.path.join('.') ?? ''}); update one of them.`,
      { code: 'TANDEM_PROTOCOL', status },
    );
  return parsed.data;
}
