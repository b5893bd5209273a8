import { TandemError } from '@tandem/core';

type Options = { cause?: unknown; details?: Record<string, unknown> };

/** Unlocking is refused for now after failed attempts; `details.retryInMs` says for how long. */
export class UnlockThrottledError extends TandemError {
  override readonly name = 'UnlockThrottledError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'user', retryable: true, ...options, code: 'TANDEM_UNLOCK_THROTTLED' });
  }
}

/** The VM belongs to another host user's session and this user did not confirm taking it over. */
export class TakeoverRefusedError extends TandemError {
  override readonly name = 'TakeoverRefusedError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_TAKEOVER_REFUSED' });
  }
}
