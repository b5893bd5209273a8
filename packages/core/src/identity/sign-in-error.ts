import { AuthError, type ErrorFault } from '../errors.js';
import type { SignInRefusal } from './directory.js';

/** What a {@link SignInError} carries besides its message. */
export interface SignInErrorOptions {
  readonly cause?: unknown;
  /** For `throttled`: how long until the next attempt is checked. */
  readonly retryAfterMs?: number | undefined;
  /** For `locked`: until when, where the directory says. */
  readonly lockedUntil?: string | undefined;
  readonly details?: Record<string, unknown>;
}

const RETRYABLE: ReadonlySet<SignInRefusal> = new Set(['throttled', 'directory-unreachable']);

/**
 * A refused sign-in: an {@link AuthError} (code `TANDEM_AUTH`) whose `reason` says why, one of
 * the stable {@link SignInRefusal} strings (also in `details.reason`). `throttled` and
 * `directory-unreachable` are retryable; `directory-unreachable` is the host's fault, every
 * other reason the user's.
 *
 * A wrong password and an unknown user both give `bad-credentials` with the same message: the
 * answer never tells whether an account exists.
 *
 * @example
 * ```ts
 * try {
 *   await directory.authenticate('ana', password, { source: '192.0.2.7' });
 * } catch (err) {
 *   if (SignInError.isRefusal(err, 'password-expired')) console.error('Change your password first.');
 * }
 * ```
 */
export class SignInError extends AuthError {
  readonly reason: SignInRefusal;
  readonly retryAfterMs: number | undefined;

  constructor(reason: SignInRefusal, message: string = defaultMessage(reason), options: SignInErrorOptions = {}) {
    const fault: ErrorFault = reason === 'directory-unreachable' ? 'host' : 'user';
    super(message, {
      fault,
      retryable: RETRYABLE.has(reason),
      cause: options.cause,
      details: {
        ...options.details,
        reason,
        ...(options.retryAfterMs === undefined ? {} : { retryAfterMs: options.retryAfterMs }),
        ...(options.lockedUntil === undefined ? {} : { lockedUntil: options.lockedUntil }),
      },
    });
    this.reason = reason;
    this.retryAfterMs = options.retryAfterMs;
    // AuthError's `name` is typed as the literal 'AuthError'; the instance still says what it is.
    Object.defineProperty(this, 'name', {
      value: 'SignInError',
      enumerable: false,
      configurable: true,
      writable: false,
    });
  }

  /** True when `err` is a sign-in refusal (from any copy of the package), with `reason` if given. */
  static isRefusal(err: unknown, reason?: SignInRefusal): err is SignInError {
    if (!AuthError.is(err, 'TANDEM_AUTH')) return false;
    const r = (err as { details?: { reason?: unknown } }).details?.reason;
    if (typeof r !== 'string') return false;
    return reason === undefined || r === reason;
  }
}

/** The one message for a wrong password and for an unknown user. */
export const BAD_CREDENTIALS_MESSAGE = 'The user name or password is incorrect. Check them and try again.';

function defaultMessage(reason: SignInRefusal): string {
  switch (reason) {
    case 'bad-credentials':
      return BAD_CREDENTIALS_MESSAGE;
    case 'disabled':
      return 'This account is disabled. Ask your administrator to enable it.';
    case 'locked':
      return 'This account is locked after too many failed sign-ins. Wait, or ask your administrator to unlock it.';
    case 'expired':
      return 'This account has expired. Ask your administrator to extend it.';
    case 'password-expired':
      return 'Your password has expired. Change it, then sign in again.';
    case 'must-change-password':
      return 'Your password must be changed before you sign in. Change it, then sign in again.';
    case 'throttled':
      return 'Too many failed sign-ins. Wait a moment and try again.';
    case 'directory-unreachable':
      return 'The directory server cannot be reached. Try again later; work offline meanwhile where your lease allows.';
    case 'offline-expired':
      return 'You have been offline too long to sign in with the credentials kept on this device. Connect and sign in online.';
  }
}
