/**
 * Tandem's error hierarchy. Every error thrown by Tandem is a {@link TandemError}
 * with a stable string `code`, a `fault` that says whose problem it is, and
 * whether retrying can help.
 */

/** Who has to act on an error. */
export type ErrorFault = 'user' | 'policy' | 'adapter' | 'host';

/** The stable error codes. Adapters and later modules may add codes of their own. */
export type ErrorCode =
  | 'TANDEM_NOT_FOUND'
  | 'TANDEM_INVALID_STATE'
  | 'TANDEM_UNSUPPORTED'
  | 'TANDEM_POLICY_DENIED'
  | 'TANDEM_INTEGRITY'
  | 'TANDEM_AUTH'
  | 'TANDEM_HYPERVISOR'
  | 'TANDEM_INVALID_INPUT'
  | 'TANDEM_CONFLICT'
  | 'TANDEM_TIMEOUT'
  | 'TANDEM_CANCELLED'
  | 'TANDEM_HOST'
  | 'TANDEM_NO_ADAPTER'
  | 'TANDEM_LEASE'
  | 'TANDEM_CLOCK_ROLLBACK'
  | 'TANDEM_KEY_UNAVAILABLE'
  | (string & {});

/** Options common to every {@link TandemError}. */
export interface TandemErrorOptions {
  code: ErrorCode;
  fault: ErrorFault;
  retryable?: boolean;
  cause?: unknown;
  /** Structured diagnostics: a hypervisor's raw output, the file and path of bad input, ... */
  details?: Record<string, unknown>;
}

const BRAND = Symbol.for('@tandem/core.TandemError');

/**
 * The base of every error Tandem throws.
 *
 * @example
 * ```ts
 * try {
 *   await session.resume();
 * } catch (err) {
 *   if (TandemError.is(err, 'TANDEM_INVALID_STATE')) console.error(err.message);
 * }
 * ```
 */
export class TandemError extends Error {
  override readonly name: string = 'TandemError';
  readonly code: ErrorCode;
  readonly fault: ErrorFault;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(message: string, options: TandemErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.fault = options.fault;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /**
   * True when `err` is a TandemError, from this copy of the package or any other
   * (two versions of @tandem/core in one process still recognise each other's errors).
   * With `code`, also checks the code.
   */
  static is(err: unknown, code?: ErrorCode): err is TandemError {
    if (typeof err !== 'object' || err === null) return false;
    if ((err as Record<symbol, unknown>)[BRAND] !== true) return false;
    return code === undefined || (err as TandemError).code === code;
  }

  /** A plain object for logs and `--json` output. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      fault: this.fault,
      retryable: this.retryable,
      message: this.message,
      details: this.details,
    };
  }
}

type SubclassOptions = Omit<TandemErrorOptions, 'code' | 'fault'> & { fault?: ErrorFault };

/** A VM, snapshot, workspace, session or file that does not exist. */
export class NotFoundError extends TandemError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_NOT_FOUND' });
  }
}

/** An operation that is not legal in the current state; `details.current` names the state. */
export class InvalidStateError extends TandemError {
  override readonly name = 'InvalidStateError';
  readonly current: string;
  constructor(message: string, current: string, options: SubclassOptions = {}) {
    super(message, {
      fault: 'user',
      ...options,
      code: 'TANDEM_INVALID_STATE',
      details: { current, ...options.details },
    });
    this.current = current;
  }
}

/** The adapter does not offer a capability the caller needs. */
export class UnsupportedCapabilityError extends TandemError {
  override readonly name = 'UnsupportedCapabilityError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'adapter', ...options, code: 'TANDEM_UNSUPPORTED' });
  }
}

/** Policy forbids the operation; `details.decision` carries the explained decision. */
export class PolicyDeniedError extends TandemError {
  override readonly name = 'PolicyDeniedError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'policy', ...options, code: 'TANDEM_POLICY_DENIED' });
  }
}

/** Data failed verification: a digest, a signature, a MAC. */
export class IntegrityError extends TandemError {
  override readonly name = 'IntegrityError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'host', ...options, code: 'TANDEM_INTEGRITY' });
  }
}

/** Authentication or authorization failed. */
export class AuthError extends TandemError {
  override readonly name = 'AuthError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_AUTH' });
  }
}

/** The hypervisor refused or failed; `details.output` keeps its raw output. */
export class HypervisorError extends TandemError {
  override readonly name = 'HypervisorError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'adapter', ...options, code: 'TANDEM_HYPERVISOR' });
  }
}

/** Bad input: `details` names the file, the path inside it and what was expected. */
export class InvalidInputError extends TandemError {
  override readonly name = 'InvalidInputError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_INVALID_INPUT' });
  }
}

/** Something else holds the resource (another session drives the VM, a lock is taken). */
export class ConflictError extends TandemError {
  override readonly name = 'ConflictError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'user', retryable: true, ...options, code: 'TANDEM_CONFLICT' });
  }
}

/** An operation did not finish in time. */
export class TimeoutError extends TandemError {
  override readonly name = 'TimeoutError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'host', retryable: true, ...options, code: 'TANDEM_TIMEOUT' });
  }
}

/** An operation was cancelled through its AbortSignal. */
export class CancelledError extends TandemError {
  override readonly name = 'CancelledError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_CANCELLED' });
  }
}

/** The host failed: a process could not start, a connection dropped, a disk is full. */
export class HostError extends TandemError {
  override readonly name = 'HostError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'host', ...options, code: 'TANDEM_HOST' });
  }
}

/** No adapter fits this host; `details.reasons` lists why each candidate did not. */
export class NoAdapterError extends TandemError {
  override readonly name = 'NoAdapterError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'host', ...options, code: 'TANDEM_NO_ADAPTER' });
  }
}

/**
 * An offline lease does not cover the present: `details.reason` is `expired` or `not-yet-valid`,
 * `details.notBefore` and `details.notAfter` say when it does.
 */
export class LeaseError extends TandemError {
  override readonly name = 'LeaseError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'policy', ...options, code: 'TANDEM_LEASE' });
  }
}

/**
 * The clock reads earlier than the latest time this device has trusted (from envelopes, signed
 * repository metadata or its own clock): it was set back, and leases are not judged by it.
 */
export class ClockRollbackError extends TandemError {
  override readonly name = 'ClockRollbackError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'host', ...options, code: 'TANDEM_CLOCK_ROLLBACK' });
  }
}

/** An encrypted workspace's key is not available here: no envelope, or none for this device. */
export class KeyUnavailableError extends TandemError {
  override readonly name = 'KeyUnavailableError';
  constructor(message: string, options: SubclassOptions = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_KEY_UNAVAILABLE' });
  }
}
