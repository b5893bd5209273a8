import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../errors.js';
import { DirectoryStore } from './directory.js';
import { HttpStore, type HttpStoreOptions } from './http.js';
import { S3Store } from './s3.js';
import type { RepoStore } from './types.js';

/** Options for {@link openStore}. */
export interface OpenStoreOptions extends HttpStoreOptions {
  /** Environment to read S3 settings from; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * Opens a repository by its address:
 * - `http://...` or `https://...`: any static web server or CDN (read-only);
 * - `s3://bucket/prefix`: an S3-compatible bucket; the endpoint comes from `AWS_ENDPOINT_URL_S3`
 *   or `AWS_ENDPOINT_URL` (default AWS), the region from `AWS_REGION`, the credentials from
 *   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (anonymous without them);
 * - `file://...` or a path: a local directory.
 *
 * @example
 * ```ts
 * const store = openStore('https://cdn.example.com/tandem/');
 * ```
 */
export function openStore(address: string, options: OpenStoreOptions = {}): RepoStore {
  if (/^https?:\/\//i.test(address)) return new HttpStore(address, options);
  if (/^s3:\/\//i.test(address)) {
    const env = options.env ?? process.env;
    const match = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(address);
    if (!match) throw new InvalidInputError(`${address} is not an S3 address; expected s3://bucket/prefix.`);
    const region = env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
    const endpoint = env['AWS_ENDPOINT_URL_S3'] ?? env['AWS_ENDPOINT_URL'] ?? `https://s3.${region}.amazonaws.com`;
    const accessKeyId = env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
    const sessionToken = env['AWS_SESSION_TOKEN'];
    return new S3Store({
      ...options,
      endpoint,
      region,
      bucket: match[1]!,
      prefix: match[2] ?? '',
      ...(accessKeyId && secretAccessKey
        ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
        : {}),
    });
  }
  if (/^file:\/\//i.test(address)) return new DirectoryStore(fileURLToPath(address));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) {
    throw new InvalidInputError(
      `Unsupported repository address ${address}; expected http(s)://, s3://, file:// or a directory path.`,
    );
  }
  return new DirectoryStore(address);
}
