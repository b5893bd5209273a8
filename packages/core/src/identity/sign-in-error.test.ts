import { describe, expect, it } from 'vitest';
import { AuthError, TandemError } from '../errors.js';
import { BAD_CREDENTIALS_MESSAGE, SignInError } from './sign-in-error.js';

describe('SignInError', () => {
  it('is an AuthError with a stable reason, in details too', () => {
    const e = new SignInError('locked', undefined, { lockedUntil: '2026-03-01T08:10:00.000Z' });
    expect(e).toBeInstanceOf(AuthError);
    expect(e.name).toBe('SignInError');
    expect(e.code).toBe('TANDEM_AUTH');
    expect(e.fault).toBe('user');
    expect(e.retryable).toBe(false);
    expect(e.toJSON()).toMatchObject({
      name: 'SignInError',
      details: { reason: 'locked', lockedUntil: '2026-03-01T08:10:00.000Z' },
    });
    expect(TandemError.is(e, 'TANDEM_AUTH')).toBe(true);
  });

  it('throttled and directory-unreachable are retryable; unreachable is the host fault', () => {
    const t = new SignInError('throttled', undefined, { retryAfterMs: 4000 });
    expect(t).toMatchObject({ retryable: true, retryAfterMs: 4000, details: { retryAfterMs: 4000 } });
    expect(new SignInError('directory-unreachable')).toMatchObject({ retryable: true, fault: 'host' });
  });

  it('isRefusal recognises one by its reason, also from another copy of the package', () => {
    const e = new SignInError('bad-credentials');
    expect(e.message).toBe(BAD_CREDENTIALS_MESSAGE);
    expect(SignInError.isRefusal(e)).toBe(true);
    expect(SignInError.isRefusal(e, 'bad-credentials')).toBe(true);
    expect(SignInError.isRefusal(e, 'locked')).toBe(false);
    expect(SignInError.isRefusal(new AuthError('other'))).toBe(false);
    expect(SignInError.isRefusal(new Error('x'))).toBe(false);
    // What an error from a second copy of @tandem/core looks like: the brand and the details.
    const foreign = new AuthError('x', { details: { reason: 'disabled' } });
    expect(SignInError.isRefusal(foreign, 'disabled')).toBe(true);
  });
});
