import { TandemError, type ErrorFault } from '../errors.js';

/**
 * An error the management server answered with, or could not be reached for. `code` is the
 * server's stable code (`TANDEM_AUTH`, `TANDEM_INVALID_INPUT`, `TANDEM_TOO_LARGE`,
 * `TANDEM_UNREACHABLE`...), `reason` its finer reason (`bad-credentials`, `replayed`,
 * `revoked`, `not-assigned`...), `status` the HTTP status (0 when nothing answered).
 *
 * @example
 * ```ts
 * try {
 *   await client.enroll({ user: 'ana', password, hostName: 'pc-1' });
 * } catch (err) {
 *   if (err instanceof ManagementError && err.reason === 'bad-credentials') console.error(err.message);
 * }
 * ```
 */
export class ManagementError extends TandemError {
  override readonly name = 'ManagementError';
  readonly status: number;
  readonly reason: string | undefined;

  constructor(
    message: string,
    options: {
      code: string;
      status: number;
      reason?: string | undefined;
      retryable?: boolean;
      cause?: unknown;
      fault?: ErrorFault;
    },
  ) {
    super(message, {
      code: options.code,
      fault: options.fault ?? (options.status >= 500 || options.status === 0 ? 'host' : 'user'),
      retryable: options.retryable ?? false,
      cause: options.cause,
      details: { status: options.status, ...(options.reason !== undefined ? { reason: options.reason } : {}) },
    });
    this.status = options.status;
    this.reason = options.reason;
  }
}
