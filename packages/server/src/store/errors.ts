import { TandemError } from '@tandem/core';

/**
 * The store's database cannot be reached (PostgreSQL went away, a connection was terminated,
 * the pool is exhausted, SQLite stayed busy past its timeout). Nothing was half-written: the
 * method's transaction was rolled back, so retrying the same call is safe.
 *
 * @example
 * ```ts
 * try {
 *   await store.ingestEvents(batch);
 * } catch (err) {
 *   if (TandemError.is(err, 'TANDEM_STORE_UNAVAILABLE')) return reply.code(503).send(); // the endpoint retries
 *   throw err;
 * }
 * ```
 */
export class StoreUnavailableError extends TandemError {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { ...options, fault: 'host', retryable: true, code: 'TANDEM_STORE_UNAVAILABLE' });
  }
}
