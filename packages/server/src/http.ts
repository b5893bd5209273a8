import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';
import {
  AssignmentsRequestSchema,
  CheckInRequestSchema,
  EnrollRequestSchema,
  EnvelopeRequestSchema,
  EventUploadRequestSchema,
  MAX_REQUEST_BYTES,
  ROUTES,
  SignInRequestSchema,
} from '@tandem/core/management';
import type { AdminApi } from './admin-http.js';
import { createConsoleRoutes, type ConsoleOptions } from './console-http.js';
import { ApiError, errorReply } from './errors.js';
import { authenticateDevice, readSignature } from './request-auth.js';
import type { ManagementService } from './service.js';

/** What {@link createManagementServer} takes. */
export interface ManagementServerOptions {
  readonly service: ManagementService;
  /** The admin API (`/v1/admin/...`, bearer token); omitted: no admin over HTTP. */
  readonly admin?: AdminApi | undefined;
  /** PEM key and certificate: HTTPS. Without them plain HTTP (tests and a TLS-terminating proxy only). */
  readonly tls?: { readonly key: string; readonly cert: string } | undefined;
  /** The largest body read, in bytes; default {@link MAX_REQUEST_BYTES}. */
  readonly maxBodyBytes?: number;
  /** The management console (`/console/`, `/v1/console/*`); the admin stream needs `admin`. */
  readonly console?: ConsoleOptions | undefined;
  /** Called with every failure that is the server's fault (5xx), for the log. */
  readonly onError?: (err: unknown, request: { method: string; path: string }) => void;
}

/** A running management server. */
export interface ManagementHttpServer {
  readonly server: Server;
  /** Listens; resolves with the base URL (`https://127.0.0.1:8443`). */
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) return Promise.reject(tooLarge(max));
  // Plain 'data'/'end' listeners rather than `for await`: the async iterator costs a promise
  // per chunk, on the hot path of every request.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', fail);
      req.off('close', onClose);
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        fail(tooLarge(max));
        // Unread: the connection is closed after the 413.
        req.pause();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      req.off('error', fail);
      req.off('close', onClose);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = (): void =>
      fail(
        new ApiError(
          400,
          'TANDEM_INVALID_INPUT',
          'malformed',
          'The client closed the connection before the request body ended.',
        ),
      );
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', fail);
    req.once('close', onClose);
  });
}

function tooLarge(max: number): ApiError {
  return new ApiError(
    413,
    'TANDEM_TOO_LARGE',
    'too-large',
    `The request is larger than ${max} bytes; send fewer events at a time.`,
  );
}

/** Parses a JSON body against a schema; 400 naming the first bad field. */
export function parseBody<S extends z.ZodType>(schema: S, body: Buffer): z.output<S> {
  let data: unknown;
  try {
    data = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'TANDEM_INVALID_INPUT', 'malformed', 'The request body is not valid JSON.');
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join('.') ?? '';
    throw new ApiError(
      400,
      'TANDEM_INVALID_INPUT',
      'malformed',
      `The request is not what this API takes: ${path === '' ? '(body)' : path}: ${issue?.message ?? 'invalid'}.`,
    );
  }
  return parsed.data;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * The management API over node:http (or node:https with `tls`): a handful of JSON routes,
 * each body size-limited and checked with zod, each failure a JSON `{code, message, retryable,
 * reason}` without a stack trace. Any number of these serve one store.
 *
 * @example
 * ```ts
 * const http = createManagementServer({ service, tls: { key, cert } });
 * const url = await http.listen(8443, '0.0.0.0');
 * ```
 */
export function createManagementServer(options: ManagementServerOptions): ManagementHttpServer {
  const { service } = options;
  const max = options.maxBodyBytes ?? MAX_REQUEST_BYTES;
  const consoleRoutes =
    options.console || options.admin
      ? createConsoleRoutes({
          console: options.console,
          admin: options.admin,
          store: service.store,
          onError: options.onError,
        })
      : undefined;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (consoleRoutes?.(req, res)) return;
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    handle(req, method, path).then(
      (reply) => send(res, 200, reply),
      (err: unknown) => {
        const { status, body } = errorReply(err);
        if (status >= 500) options.onError?.(err, { method, path });
        // An oversized body is not read to its end: close the connection after answering.
        if (status === 413) res.setHeader('connection', 'close');
        send(res, status, body);
      },
    );
  };

  async function handle(req: IncomingMessage, method: string, path: string): Promise<unknown> {
    if (path === ROUTES.health && method === 'GET') {
      return {
        ok: true,
        store: service.store.kind,
        directory: service.directory.kind,
        revision: await service.store.revision(),
      };
    }
    if (path.startsWith(`${ROUTES.health.replace('/health', '')}/admin/`)) {
      if (!options.admin)
        throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', 'The admin API is not enabled on this server.');
      const body = await readBody(req, max);
      return options.admin.handle(method, path, req.headers, body);
    }
    if (method !== 'POST')
      throw new ApiError(405, 'TANDEM_INVALID_INPUT', 'method', `${method} ${path} is not part of this API.`);
    const known = Object.values(ROUTES) as string[];
    if (!known.includes(path))
      throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', `${path} is not part of this API.`);
    const body = await readBody(req, max);
    const source = req.socket.remoteAddress ?? 'unknown';
    const request = { method, path, body };
    if (path === ROUTES.enroll) {
      const sig = readSignature(req.headers);
      const parsed = parseBody(EnrollRequestSchema, body);
      return service.enroll(parsed, sig, { ...request, source });
    }
    if (path === ROUTES.checkIn || path === ROUTES.events) {
      // The hot path: the signature checked against the device's (cached) key, the body parsed,
      // then the nonce, events and check-in in one grouped store write.
      const sig = readSignature(req.headers);
      const { device, time } = await service.verify(sig, request);
      if (path === ROUTES.checkIn)
        return service.checkInVerified(device, sig, time, parseBody(CheckInRequestSchema, body));
      return service.ingestVerified(device, sig, time, parseBody(EventUploadRequestSchema, body).events);
    }
    const device = await authenticateDevice(service.requestStore, service.clock, req.headers, request);
    switch (path) {
      case ROUTES.signIn:
        return service.signIn(device, parseBody(SignInRequestSchema, body), source);
      case ROUTES.envelope: {
        const b = parseBody(EnvelopeRequestSchema, body);
        return service.envelope(device, b.workspace, b.user);
      }
      case ROUTES.assignments:
        return service.assignments(device, parseBody(AssignmentsRequestSchema, body).user);
      default:
        throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', `${path} is not part of this API.`);
    }
  }

  const server: Server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler)
    : createHttpServer(handler);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 60_000;
  const scheme = options.tls ? 'https' : 'http';
  return {
    server,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve(`${scheme}://${h}:${a.port}`);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
