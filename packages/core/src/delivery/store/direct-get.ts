import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { CancelledError, HostError, TandemError, TimeoutError } from '../../errors.js';
import { droppedError, networkError, rangeOverflowError } from './http-errors.js';

/**
 * Plain-HTTP GETs whose body the kernel reads straight into the caller's buffer.
 *
 * node:http hands a response over in freshly allocated 64 KiB pieces, which then have to be
 * copied and collected; for the ranges of a pull (hundreds of MiB) that costs more CPU than
 * verifying them. Here each keep-alive connection reads with a caller-supplied buffer
 * (`net.Socket`'s `onread`): the status line and headers into a small scratch buffer, the body
 * right where it belongs. Only the common, simple shape of answer is handled: HTTP/1.1 with a
 * Content-Length. Anything else (chunked or close-delimited bodies, 1xx answers, HTTP/1.0)
 * throws {@link DirectGetUnsupported}, and the caller asks again through node:http.
 */
export class DirectGet {
  readonly #idle = new Map<string, Connection[]>();
  readonly #timeoutMs: number;
  #closed = false;

  constructor(options: { timeoutMs: number }) {
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * GETs `url` and reads a 2xx body into `into` (which must be large enough: a larger body is
   * refused before it is read); `received` is told of every piece that lands. Other answers'
   * bodies (up to 64 KiB) are returned in `body` for messages. `accept` sees the status and
   * headers first; throwing there drops the connection.
   */
  get(request: DirectRequest): Promise<DirectAnswer> {
    if (this.#closed) return Promise.reject(new HostError('The HTTP client is closed.'));
    const key = `${request.url.hostname}:${request.url.port || '80'}`;
    const idle = this.#idle.get(key);
    const conn = idle?.pop() ?? new Connection(request.url, this.#timeoutMs);
    return conn.get(request).then(
      (answer) => {
        if (conn.reusable && !this.#closed) {
          const list = this.#idle.get(key) ?? [];
          list.push(conn);
          this.#idle.set(key, list);
          conn.onIdleClose = () => {
            const at = list.indexOf(conn);
            if (at >= 0) list.splice(at, 1);
          };
        } else conn.destroy();
        return answer;
      },
      (err: unknown) => {
        conn.destroy();
        throw err;
      },
    );
  }

  /** Closes idle connections; requests in flight finish. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list.splice(0)) c.destroy();
  }
}

/** One request for {@link DirectGet.get}. */
export interface DirectRequest {
  url: URL;
  headers: Record<string, string>;
  into: Buffer;
  received: (bytes: number) => void;
  accept?: (status: number, headers: IncomingHttpHeaders) => void;
  signal?: AbortSignal;
}

/** What {@link DirectGet.get} returns. */
export interface DirectAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body of a non-2xx answer (2xx bodies went into the caller's buffer). */
  body: Buffer;
  /** Body bytes read into the caller's buffer. */
  bodyLength: number;
}

/** The answer has a shape {@link DirectGet} does not read; nothing of its body was used. */
export class DirectGetUnsupported extends Error {}

const SCRATCH = 64 * 1024;
const MAX_HEAD = 64 * 1024;
const MAX_ERROR_BODY = 64 * 1024;

interface Pending {
  request: DirectRequest;
  resolve: (answer: DirectAnswer) => void;
  reject: (err: unknown) => void;
  /** Bytes of the status line and headers seen so far. */
  head: Buffer[];
  headLength: number;
  status: number;
  headers: IncomingHttpHeaders;
  /** Body bytes still to come; -1 while the head is read. */
  remaining: number;
  /** Where the next body byte goes in `request.into`, or in `errorBody` for a non-2xx answer. */
  at: number;
  toCaller: boolean;
  errorBody: Buffer[];
  cleanup: () => void;
}

class Connection {
  readonly #socket: net.Socket;
  readonly #scratch = Buffer.allocUnsafe(SCRATCH);
  readonly #url: URL;
  #pending: Pending | undefined;
  #connected = false;
  #dead = false;
  /** Reused after a complete answer that did not ask to close. */
  reusable = false;
  onIdleClose: (() => void) | undefined;

  constructor(url: URL, timeoutMs: number) {
    this.#url = url;
    this.#socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      noDelay: true,
      onread: {
        // The head goes into scratch; a 2xx body straight into the caller's buffer.
        buffer: () => this.#target(),
        callback: (n: number, buf: Uint8Array) => {
          this.#data(n, buf);
          return !this.#dead;
        },
      },
    });
    this.#socket.on('connect', () => (this.#connected = true));
    this.#socket.setTimeout(timeoutMs, () =>
      this.#fail(
        new TimeoutError(`${this.#url.href} sent nothing for ${timeoutMs} ms; the server or the network is stalled.`, {
          details: { url: this.#url.href },
        }),
      ),
    );
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => {
      this.#dead = true;
      this.onIdleClose?.();
      this.#fail(new Error('socket closed'));
    });
  }

  get(request: DirectRequest): Promise<DirectAnswer> {
    return new Promise<DirectAnswer>((resolve, reject) => {
      if (this.#dead) {
        reject(new Error('socket closed'));
        return;
      }
      this.onIdleClose = undefined;
      this.reusable = false;
      const onAbort = (): void => this.#fail(new CancelledError(`The request for ${request.url.href} was cancelled.`));
      request.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending = {
        request,
        resolve,
        reject,
        head: [],
        headLength: 0,
        status: 0,
        headers: {},
        remaining: -1,
        at: 0,
        toCaller: false,
        errorBody: [],
        cleanup: () => request.signal?.removeEventListener('abort', onAbort),
      };
      if (request.signal?.aborted) {
        onAbort();
        return;
      }
      const { url } = request;
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
      for (const [k, v] of Object.entries(request.headers)) {
        if (k.toLowerCase() === 'host') continue;
        if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) {
          this.#fail(new HostError(`Header ${k} of the request for ${url.href} holds a line break.`));
          return;
        }
        lines.push(`${k}: ${v}`);
      }
      this.#socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    });
  }

  destroy(): void {
    this.#dead = true;
    this.#socket.destroy();
  }

  #target(): Uint8Array {
    const p = this.#pending;
    // A 2xx body is read in place, never beyond its end (so never into the next answer).
    if (p && p.toCaller && p.remaining > 0) return p.request.into.subarray(p.at, p.at + p.remaining);
    return this.#scratch;
  }

  #data(n: number, buf: Uint8Array): void {
    const p = this.#pending;
    if (!p) {
      // Bytes nobody asked for: the connection is out of step.
      this.destroy();
      return;
    }
    if (p.toCaller && p.remaining > 0 && buf.buffer === p.request.into.buffer) {
      this.#body(p, n);
      return;
    }
    let piece = Buffer.from(buf.buffer, buf.byteOffset, n);
    if (p.remaining < 0) {
      piece = this.#head(p, piece) ?? Buffer.alloc(0);
      if (p.remaining < 0 || this.#dead) return;
      if (p.remaining === 0 && !this.reusable) {
        // An empty body, or an error answer taken without its body: nothing more is read.
        this.#finish(p);
        return;
      }
    }
    if (piece.length === 0) {
      if (p.remaining === 0) this.#finish(p);
      return;
    }
    if (piece.length > p.remaining) {
      this.#fail(new DirectGetUnsupported('more bytes than Content-Length'));
      return;
    }
    if (p.toCaller) {
      piece.copy(p.request.into, p.at);
      this.#body(p, piece.length);
    } else {
      if (p.at < MAX_ERROR_BODY) p.errorBody.push(Buffer.from(piece));
      p.at += piece.length;
      p.remaining -= piece.length;
      if (p.remaining === 0) this.#finish(p);
    }
  }

  #body(p: Pending, n: number): void {
    p.at += n;
    p.remaining -= n;
    try {
      p.request.received(n);
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (p.remaining === 0) this.#finish(p);
  }

  /** Reads the status line and headers; returns the body bytes that came with them. */
  #head(p: Pending, piece: Buffer): Buffer | undefined {
    p.head.push(Buffer.from(piece));
    p.headLength += piece.length;
    const all = p.head.length === 1 ? p.head[0]! : Buffer.concat(p.head);
    const end = all.indexOf('\r\n\r\n', 0, 'latin1');
    if (end < 0) {
      if (p.headLength > MAX_HEAD) this.#fail(new DirectGetUnsupported('headers too long'));
      return undefined;
    }
    const lines = all.toString('latin1', 0, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (!m) {
      this.#fail(new DirectGetUnsupported(`status line ${JSON.stringify(lines[0])}`));
      return undefined;
    }
    const status = Number(m[1]);
    // No prototype: a header named `constructor` or `__proto__` is a header like any other.
    const headers = Object.create(null) as Record<string, string>;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const length = headers['content-length'];
    const plain = headers['transfer-encoding'] === undefined && length !== undefined && /^\d+$/.test(length);
    if (status < 200 || (!plain && status < 300)) {
      this.#fail(new DirectGetUnsupported(`an answer without a plain Content-Length (${status})`));
      return undefined;
    }
    p.status = status;
    p.headers = headers;
    // An error answer in another framing is taken without its body (it only feeds a message).
    p.remaining = plain ? Number(length) : 0;
    p.toCaller = status >= 200 && status < 300;
    this.reusable = plain && !/\bclose\b/i.test(headers['connection'] ?? '');
    try {
      p.request.accept?.(status, headers);
    } catch (err) {
      this.reusable = false;
      this.#fail(err);
      return undefined;
    }
    if (p.toCaller && p.remaining > p.request.into.length) {
      this.#fail(rangeOverflowError(p.request.url));
      return undefined;
    }
    return all.subarray(end + 4);
  }

  #finish(p: Pending): void {
    this.#pending = undefined;
    p.cleanup();
    p.resolve({
      status: p.status,
      headers: p.headers,
      body: p.toCaller ? Buffer.alloc(0) : Buffer.concat(p.errorBody),
      bodyLength: p.toCaller ? p.at : 0,
    });
  }

  #fail(err: unknown): void {
    const p = this.#pending;
    this.#pending = undefined;
    this.reusable = false;
    if (!this.#dead) this.destroy();
    if (!p) return;
    p.cleanup();
    if (err instanceof DirectGetUnsupported || TandemError.is(err)) p.reject(err);
    else p.reject(dropped(p, this.#connected, err));
  }
}

function dropped(p: Pending, connected: boolean, err: unknown): HostError {
  const url = p.request.url;
  if (p.remaining >= 0 && p.toCaller) return droppedError(url, p.at, p.at + p.remaining, err);
  if (!connected) return networkError(url, err);
  return new HostError(
    `The connection to ${url.host} dropped before ${url.pathname} was answered; it will be retried.`,
    {
      cause: err,
      retryable: true,
      details: {
        url: url.href,
        ...((err as NodeJS.ErrnoException).code ? { errno: (err as NodeJS.ErrnoException).code } : {}),
      },
    },
  );
}
