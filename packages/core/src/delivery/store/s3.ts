import { createHash } from 'node:crypto';
import { systemClock, type Clock } from '../../clock.js';
import { InvalidInputError } from '../../errors.js';
import { HttpStore, type HttpStoreOptions } from './http.js';
import type { HttpRequest } from './http-client.js';
import { statusError } from './http-errors.js';
import { EMPTY_SHA256, signV4, type S3Credentials } from './sigv4.js';

/** Options for {@link S3Store}. */
export interface S3StoreOptions extends HttpStoreOptions {
  /** The S3 endpoint, such as `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`. */
  endpoint: string;
  bucket: string;
  /** Key prefix of the repository inside the bucket (`tandem/`); default none. */
  prefix?: string;
  /** Default `us-east-1`. */
  region?: string;
  /** Without credentials, requests are anonymous (a public-read bucket). */
  credentials?: S3Credentials;
  clock?: Clock;
}

/**
 * A repository in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, ...), addressed
 * path-style (`endpoint/bucket/key`) and signed with AWS Signature Version 4. Reads and writes;
 * reads use byte ranges.
 *
 * @example
 * ```ts
 * const store = new S3Store({ endpoint: 'http://127.0.0.1:9000', bucket: 'tandem', credentials: { accessKeyId, secretAccessKey } });
 * ```
 */
export class S3Store extends HttpStore {
  readonly #region: string;
  readonly #credentials: S3Credentials | undefined;
  readonly #clock: Clock;

  constructor(options: S3StoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new InvalidInputError(
        `${JSON.stringify(options.bucket)} is not an S3 bucket name (3-63 lower-case letters, digits, dots and dashes).`,
      );
    }
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    const endpoint = options.endpoint.replace(/\/+$/, '');
    super(`${endpoint}/${options.bucket}/${prefix ? `${prefix}/` : ''}`, options);
    this.#region = options.region ?? 'us-east-1';
    this.#credentials = options.credentials;
    this.#clock = options.clock ?? systemClock;
  }

  protected override prepare(req: HttpRequest): HttpRequest {
    if (!this.#credentials) return req;
    const payloadSha256 = req.body ? createHash('sha256').update(req.body).digest('hex') : EMPTY_SHA256;
    const headers = signV4({
      method: req.method,
      url: req.url,
      headers: { host: req.url.host, ...req.headers },
      payloadSha256,
      region: this.#region,
      now: this.#clock.now(),
      credentials: this.#credentials,
    });
    delete headers['host'];
    return { ...req, headers };
  }

  async put(path: string, data: Uint8Array): Promise<void> {
    const url = this.url(path);
    await this.transport.withRetries(async () => {
      const answer = await this.transport.send(
        this.prepare({ method: 'PUT', url, body: data, headers: { 'content-type': 'application/octet-stream' } }),
      );
      if (answer.status !== 200 && answer.status !== 201 && answer.status !== 204)
        throw statusError(url, answer.status, answer.body);
    });
  }
}
