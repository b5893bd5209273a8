import type { IncomingHttpHeaders } from 'node:http';
import { HostError, InvalidInputError, NotFoundError } from '../../errors.js';
import { isSafeRelativePath } from '../paths.js';
import { HttpTransport, type HttpAnswer, type HttpRequest, type HttpTransportOptions } from './http-client.js';
import { statusError } from './http-errors.js';
import { intoBuffer, type ReadOptions, type RepoStore, type StoreStats } from './types.js';

/** Options for {@link HttpStore}. */
export interface HttpStoreOptions extends HttpTransportOptions {
  /** Set false for a server that does not serve byte ranges: whole pack objects are read instead. */
  ranges?: boolean;
}

/**
 * A repository on any static HTTP(S) server or CDN: read-only, keep-alive connections, byte
 * ranges, retries that resume a range where a dropped connection left it.
 *
 * @example
 * ```ts
 * const store = new HttpStore('https://cdn.example.com/tandem/', { parallel: 8 });
 * ```
 */
export class HttpStore implements RepoStore {
  readonly location: string;
  readonly ranges: boolean;
  protected readonly base: URL;
  protected readonly transport: HttpTransport;

  constructor(baseUrl: string, options: HttpStoreOptions = {}) {
    let base: URL;
    try {
      base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    } catch (err) {
      throw new InvalidInputError(`${baseUrl} is not a URL; expected http://host/path/ or https://host/path/.`, {
        cause: err,
      });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new InvalidInputError(`${baseUrl} is not an http or https URL.`);
    }
    this.base = base;
    this.location = base.href;
    this.ranges = options.ranges ?? true;
    this.transport = new HttpTransport(options);
  }

  /** The URL of a repository path. */
  protected url(path: string): URL {
    if (!isSafeRelativePath(path))
      throw new InvalidInputError(`Repository path ${JSON.stringify(path)} leaves the repository.`);
    return new URL(path.split('/').map(encodeURIComponent).join('/'), this.base);
  }

  /** Adds authentication to a request (the S3 store signs it); the default adds nothing. */
  protected prepare(req: HttpRequest): HttpRequest {
    return req;
  }

  async get(path: string, options: ReadOptions = {}): Promise<Buffer | null> {
    const url = this.url(path);
    return this.transport.withRetries(async () => {
      const answer = await this.#send({
        method: 'GET',
        url,
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (answer.status === 404 || answer.status === 410) return null;
      if (answer.status !== 200) throw statusError(url, answer.status, answer.body);
      return answer.body;
    }, options.signal);
  }

  async getRange(path: string, offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    const url = this.url(path);
    const out = intoBuffer(options.into, length) ?? Buffer.allocUnsafe(length);
    let got = 0;
    await this.transport.withRetries(async () => {
      // After a dropped connection, ask only for what is still missing.
      const from = offset + got;
      const last = offset + length - 1;
      const answer = await this.#send({
        method: 'GET',
        url,
        headers: { range: `bytes=${from}-${last}` },
        ...(options.signal ? { signal: options.signal } : {}),
        accept: (status, headers) => checkRangeAnswer(url, status, headers, from, last),
        into: { buffer: out.subarray(got), received: (n) => (got += n) },
      });
      if (answer.status === 404)
        throw new NotFoundError(
          `${url.href} is missing from the repository; it is incomplete or still being published.`,
        );
      if (answer.status !== 206 && answer.status !== 200) throw statusError(url, answer.status, answer.body);
      if (got !== length)
        throw new HostError(`${url.href} ended after ${got} of ${length} bytes.`, {
          retryable: true,
          details: { url: url.href },
        });
    }, options.signal);
    return out;
  }

  async has(path: string): Promise<boolean> {
    const url = this.url(path);
    return this.transport.withRetries(async () => {
      const answer = await this.#send({ method: 'HEAD', url });
      if (answer.status === 404 || answer.status === 410) return false;
      if (answer.status >= 200 && answer.status < 300) return true;
      throw statusError(url, answer.status, answer.body);
    });
  }

  stats(): StoreStats {
    return { ...this.transport.counters };
  }

  close(): void {
    this.transport.close();
  }

  #send(req: HttpRequest): Promise<HttpAnswer> {
    return this.transport.send(this.prepare(req));
  }
}

function checkRangeAnswer(url: URL, status: number, headers: IncomingHttpHeaders, from: number, last: number): void {
  if (status === 200) {
    // A whole object is fine when the range was the whole object; otherwise the server ignores Range.
    const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : NaN;
    if (from === 0 && length === last + 1) return;
    throw new HostError(
      `${url.host} ignored the Range header for ${url.pathname} and started sending the whole object; enable byte ranges on the server (every common web server, CDN and S3 serves them), or pull with ranges turned off (--no-ranges) to read whole pack files.`,
      { details: { url: url.href, status } },
    );
  }
  if (status !== 206) return;
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(headers['content-range'] ?? ''));
  if (!match || Number(match[1]) !== from || Number(match[2]) !== last) {
    throw new HostError(
      `${url.host} answered bytes ${String(headers['content-range'])} for ${url.pathname}, not the ${from}-${last} asked for.`,
      {
        details: { url: url.href },
      },
    );
  }
}
