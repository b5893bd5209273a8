import { TandemError, type ErrorFault } from '@tandem/core';

/**
 * A refusal the API answers with a given HTTP status: `code` is the stable Tandem code,
 * `reason` the finer one (`replayed`, `revoked`, `not-assigned`...).
 *
 * @example
 * ```ts
 * throw new ApiError(403, 'TANDEM_AUTH', 'revoked', 'This device was revoked; enroll it again.');
 * ```
 */
export class ApiError extends TandemError {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly reason: string;

  constructor(
    status: number,
    code: string,
    reason: string,
    message: string,
    options: { retryable?: boolean; fault?: ErrorFault; cause?: unknown } = {},
  ) {
    super(message, {
      code,
      fault: options.fault ?? (status >= 500 ? 'host' : 'user'),
      retryable: options.retryable ?? false,
      cause: options.cause,
      details: { reason },
    });
    this.status = status;
    this.reason = reason;
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  TANDEM_INVALID_INPUT: 400,
  TANDEM_AUTH: 401,
  TANDEM_POLICY_DENIED: 403,
  TANDEM_NOT_FOUND: 404,
  TANDEM_CONFLICT: 409,
  TANDEM_TOO_LARGE: 413,
  TANDEM_LEASE: 403,
  TANDEM_TIMEOUT: 503,
  TANDEM_CANCELLED: 499,
};

/** The HTTP status and JSON body for any error; never a stack trace, never an internal message. */
export function errorReply(err: unknown): {
  status: number;
  body: { code: string; message: string; retryable: boolean; reason?: string };
} {
  if (err instanceof ApiError)
    return {
      status: err.status,
      body: { code: err.code, message: err.message, retryable: err.retryable, reason: err.reason },
    };
  if (TandemError.is(err)) {
    const reason = typeof err.details['reason'] === 'string' ? err.details['reason'] : undefined;
    let status = STATUS_BY_CODE[err.code] ?? (err.retryable ? 503 : 500);
    if (err.code === 'TANDEM_AUTH' && reason === 'throttled') status = 429;
    if (err.code === 'TANDEM_AUTH' && reason === 'directory-unreachable') status = 503;
    // A retryable failure of ours (the database, the directory) is 503: the endpoint retries.
    if (err.retryable && status === 500) status = 503;
    const message =
      status >= 500 && !err.retryable
        ? 'The management server failed to answer this request; it was logged. Try again later.'
        : err.message;
    return {
      status,
      body: { code: err.code, message, retryable: err.retryable, ...(reason !== undefined ? { reason } : {}) },
    };
  }
  return {
    status: 500,
    body: {
      code: 'TANDEM_INTERNAL',
      message: 'The management server failed to answer this request; it was logged. Try again later.',
      retryable: true,
    },
  };
}
