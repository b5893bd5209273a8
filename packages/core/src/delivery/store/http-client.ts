import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { systemClock, type Clock } from '../../clock.js';
import { CancelledError, HostError, TandemError, TimeoutError } from '../../errors.js';
import type { StoreStats } from './types.js';
import { DirectGet, DirectGetUnsupported } from './direct-get.js';
import { droppedError, networkError, rangeOverflowError } from './http-errors.js';

/** Options of the HTTP transport shared by the HTTP and S3 stores. */
export interface HttpTransportOptions {
  /** Connections kept open per host, and so requests in flight; default 8. */
  parallel?: number;
  /** Attempts after the first for dropped connections, timeouts and 5xx answers; default 4. */
  retries?: number;
  /** First delay between attempts, doubled each time; default 250 ms. */
  retryDelayMs?: number;
  /** A request fails when its socket is idle this long; default 30 s. */
  timeoutMs?: number;
  /** Extra headers on every request (an API key for a CDN, ...). */
  headers?: Record<string, string>;
  /**
   * Read plain-HTTP range bodies straight into the caller's buffer over connections of our own
   * (default true); servers whose answers are not simple (chunked, HTTP/1.0) are then asked
   * through node:http. False always uses node:http.
   */
  directReads?: boolean;
  clock?: Clock;
}

/** One request's description. */
export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT';
  url: URL;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Error when the body is larger. */
  maxBytes?: number;
  signal?: AbortSignal;
  /** Looks at the status and headers first; throwing here drops the connection without reading the body. */
  accept?: (status: number, headers: IncomingHttpHeaders) => void;
  /** Receives a 2xx body as it arrives instead of collecting it. */
  onBody?: (chunk: Buffer) => void;
  /**
   * A GET's 2xx body goes into this buffer instead (a larger body is an error), and `received`
   * hears of every piece as it lands.
   */
  into?: { buffer: Buffer; received: (bytes: number) => void };
}

/** An answer; `body` is empty when `onBody` took it. */
export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * HTTP/1.1 with keep-alive connections, retries with exponential back-off, and traffic
 * counters. Connection drops, timeouts and 5xx answers are retryable HostErrors.
 */
export class HttpTransport {
  readonly #agents: { http: http.Agent; https: https.Agent };
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #clock: Clock;
  readonly #direct: DirectGet | undefined;
  /** Hosts whose answers direct reads cannot take. */
  readonly #notDirect = new Set<string>();
  readonly counters: StoreStats = { requests: 0, bytesReceived: 0, bytesSent: 0 };

  constructor(options: HttpTransportOptions = {}) {
    const maxSockets = options.parallel ?? 8;
    this.#agents = {
      http: new http.Agent({ keepAlive: true, maxSockets }),
      https: new https.Agent({ keepAlive: true, maxSockets }),
    };
    this.#retries = options.retries ?? 4;
    this.#retryDelayMs = options.retryDelayMs ?? 250;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#headers = options.headers ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#direct = options.directReads === false ? undefined : new DirectGet({ timeoutMs: this.#timeoutMs });
  }

  /** One attempt. */
  async send(req: HttpRequest): Promise<HttpAnswer> {
    const { url, into } = req;
    if (into && req.method === 'GET' && url.protocol === 'http:' && this.#direct && !this.#notDirect.has(url.host)) {
      this.counters.requests++;
      try {
        const answer = await this.#direct.get({
          url,
          headers: { ...this.#headers, ...req.headers },
          into: into.buffer,
          received: (n) => {
            this.counters.bytesReceived += n;
            into.received(n);
          },
          ...(req.accept ? { accept: req.accept } : {}),
          ...(req.signal ? { signal: req.signal } : {}),
        });
        this.counters.bytesReceived += answer.body.length;
        return { status: answer.status, headers: answer.headers, body: answer.body };
      } catch (err) {
        // Nothing of the body was used: ask again the ordinary way, and from now on.
        if (!(err instanceof DirectGetUnsupported)) throw err;
        this.#notDirect.add(url.host);
        this.counters.requests--;
      }
    }
    if (into) {
      let at = 0;
      return this.#send({
        ...req,
        onBody: (chunk) => {
          if (at + chunk.length > into.buffer.length) throw rangeOverflowError(url);
          chunk.copy(into.buffer, at);
          at += chunk.length;
          into.received(chunk.length);
        },
      });
    }
    return this.#send(req);
  }

  #send(req: HttpRequest): Promise<HttpAnswer> {
    const { url } = req;
    const lib = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? this.#agents.https : this.#agents.http;
    this.counters.requests++;
    return new Promise<HttpAnswer>((resolvePromise, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      const headers: Record<string, string> = { ...this.#headers, ...req.headers };
      if (req.body) headers['content-length'] = String(req.body.length);
      const request = lib.request(
        url,
        { method: req.method, headers, agent, ...(req.signal ? { signal: req.signal } : {}) },
        (res) => {
          const status = res.statusCode ?? 0;
          try {
            req.accept?.(status, res.headers);
          } catch (err) {
            res.destroy();
            request.destroy();
            fail(err);
            return;
          }
          const ok = status >= 200 && status < 300;
          const parts: Buffer[] = [];
          let received = 0;
          const expected =
            req.method !== 'HEAD' && res.headers['content-length'] !== undefined
              ? Number(res.headers['content-length'])
              : undefined;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            this.counters.bytesReceived += chunk.length;
            if (req.maxBytes !== undefined && received > req.maxBytes) {
              res.destroy();
              fail(
                new HostError(
                  `${url.href} is larger than the ${req.maxBytes} bytes allowed for it; the repository is damaged or hostile.`,
                  { details: { url: url.href, tooLarge: true } },
                ),
              );
              return;
            }
            if (ok && req.onBody) {
              try {
                req.onBody(chunk);
              } catch (err) {
                res.destroy();
                fail(err);
              }
            } else if (ok || received <= 65536) parts.push(chunk);
          });
          res.on('end', () => {
            if (!res.complete || (expected !== undefined && received < expected)) {
              fail(droppedError(url, received, expected));
              return;
            }
            if (settled) return;
            settled = true;
            resolvePromise({ status, headers: res.headers, body: Buffer.concat(parts) });
          });
          res.on('error', (err) => fail(networkError(url, err, received, expected)));
          res.on('close', () => {
            if (!res.complete) fail(droppedError(url, received, expected));
          });
        },
      );
      request.setTimeout(this.#timeoutMs, () => {
        request.destroy(
          new TimeoutError(
            `${url.href} sent nothing for ${this.#timeoutMs} ms; the server or the network is stalled.`,
            { details: { url: url.href } },
          ),
        );
      });
      request.on('error', (err) => {
        if (req.signal?.aborted) fail(new CancelledError(`The request for ${url.href} was cancelled.`, { cause: err }));
        else fail(TandemError.is(err) ? err : networkError(url, err));
      });
      if (req.body) {
        this.counters.bytesSent += req.body.length;
        request.end(req.body);
      } else request.end();
    });
  }

  /** Runs `attempt` until it succeeds, fails with a non-retryable error, or the retries run out. */
  async withRetries<T>(attempt: (n: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt(n);
      } catch (err) {
        if (!TandemError.is(err)) throw err;
        const retryable = err.retryable && err.code !== 'TANDEM_CANCELLED';
        if (!retryable || n >= this.#retries || signal?.aborted) {
          if (retryable && n > 0) {
            throw new HostError(`${err.message} (gave up after ${n + 1} attempts)`, {
              cause: err,
              retryable: true,
              details: err.details,
            });
          }
          throw err;
        }
        await this.#clock.sleep(this.#retryDelayMs * 2 ** n, signal);
      }
    }
  }

  /** Closes idle connections. */
  close(): void {
    this.#direct?.close();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}
