import { HostError, TandemError } from '../../errors.js';

// The errors of HTTP reads, shared by node:http requests (http-client.ts) and direct reads
// (direct-get.ts), so both report the same faults in the same words.

/** A connection that dropped after `received` bytes of a body; retryable. */
export function droppedError(url: URL, received: number, expected: number | undefined, cause?: unknown): HostError {
  return new HostError(
    `The connection to ${url.host} dropped after ${received}${expected !== undefined ? ` of ${expected}` : ''} bytes of ${url.pathname}; it will be retried, and a later pull resumes where this one stopped.`,
    {
      ...(cause !== undefined ? { cause } : {}),
      retryable: true,
      details: { url: url.href, received, ...(expected !== undefined ? { expected } : {}) },
    },
  );
}

/** A host that cannot be reached, or a connection error (a drop once bytes have come); retryable. */
export function networkError(url: URL, err: unknown, received?: number, expected?: number): HostError {
  if (TandemError.is(err)) return err as HostError;
  const code = (err as NodeJS.ErrnoException).code;
  if (received !== undefined && received > 0) return droppedError(url, received, expected);
  return new HostError(
    `Cannot reach ${url.host} for ${url.pathname}: ${(err as Error).message}; check the repository URL and the network.`,
    {
      cause: err,
      retryable: true,
      details: { url: url.href, ...(code ? { errno: code } : {}) },
    },
  );
}

/** The HostError for an unexpected HTTP status; 5xx and 429 are retryable. */
export function statusError(url: URL, status: number, body: Buffer): HostError {
  const text = body.toString('utf8', 0, Math.min(body.length, 300)).trim();
  const retryable = status >= 500 || status === 429;
  return new HostError(
    `${url.host} answered ${status} for ${url.pathname}${retryable ? ' (a server-side problem)' : ''}; ${status === 403 || status === 401 ? 'check the credentials and the bucket policy' : 'check the repository URL and the server'}.`,
    { retryable, details: { url: url.href, status, ...(text ? { body: text } : {}) } },
  );
}

/** A body longer than the range asked for (refused, before or as it is read). */
export function rangeOverflowError(url: URL): HostError {
  return new HostError(`${url.href} sent more bytes than the range asked for.`, { details: { url: url.href } });
}
