import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { SignInError } from './sign-in-error.js';
import { MemoryThrottleRecords, SignInThrottle } from './throttle.js';

const t0 = Date.parse('2026-03-01T08:00:00Z');
const refuse = (): Promise<never> => Promise.reject(new SignInError('bad-credentials'));

describe('SignInThrottle', () => {
  it('grows the delay for one account from one source, and a success clears it', async () => {
    const clock = new VirtualClock(t0);
    const th = new SignInThrottle(new MemoryThrottleRecords(), { clock });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) delays.push(await th.recordFailure('ana', '10.0.0.9'));
    expect(delays).toEqual([0, 0, 0, 1000, 2000, 4000, 8000]);
    await expect(th.check('ana', '10.0.0.9')).rejects.toMatchObject({
      reason: 'throttled',
      retryAfterMs: 8000,
      retryable: true,
    });
    await clock.advance(8000);
    await th.check('ana', '10.0.0.9');
    await th.recordSuccess('ana', '10.0.0.9');
    expect(await th.recordFailure('ana', '10.0.0.9')).toBe(0);
  });

  it('the pair delay is capped', async () => {
    const th = new SignInThrottle(new MemoryThrottleRecords(), { clock: new VirtualClock(t0) });
    let d = 0;
    for (let i = 0; i < 60; i++) d = await th.recordFailure('ana', '10.0.0.9');
    expect(d).toBe(15 * 60 * 1000);
  });

  it('an attacker guessing from one source does not lock the owner out from another', async () => {
    const clock = new VirtualClock(t0);
    const th = new SignInThrottle(new MemoryThrottleRecords(), { clock });
    for (let i = 0; i < 15; i++) await th.recordFailure('ana', 'attacker');
    await expect(th.check('ana', 'attacker')).rejects.toMatchObject({ reason: 'throttled' });
    expect(await th.waitMs('ana', 'owner-laptop')).toBe(0);
    // And another account from the attacker's source is slowed too (spraying).
    expect(await th.waitMs('bob', 'attacker')).toBeGreaterThan(0);
  });

  it('many sources guessing one account: the owner waits at most the soft ceiling', async () => {
    const clock = new VirtualClock(t0);
    const th = new SignInThrottle(new MemoryThrottleRecords(), { clock });
    for (let i = 0; i < 500; i++) await th.recordFailure('ana', `bot-${i}`);
    const wait = await th.waitMs('ana', 'owner-laptop');
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(30_000);
    await clock.advance(wait);
    expect(await th.waitMs('ana', 'owner-laptop')).toBe(0);
  });

  it('failures are forgotten after an hour without any', async () => {
    const clock = new VirtualClock(t0);
    const th = new SignInThrottle(new MemoryThrottleRecords(), { clock });
    for (let i = 0; i < 5; i++) await th.recordFailure('ana', 's');
    await clock.advance(3600_001 + 2000);
    expect(await th.recordFailure('ana', 's')).toBe(0);
  });

  it('attempt() counts refusals, not an unreachable directory, and names are case-folded', async () => {
    const clock = new VirtualClock(t0);
    const th = new SignInThrottle(new MemoryThrottleRecords(), { clock, policy: { pairFreeFailures: 1 } });
    const ctx = { source: 's' };
    await expect(
      th.attempt('Ana', ctx, () => Promise.reject(new SignInError('directory-unreachable'))),
    ).rejects.toThrow();
    expect(await th.waitMs('ana', 's')).toBe(0);
    await expect(th.attempt('Ana', ctx, refuse)).rejects.toMatchObject({ reason: 'bad-credentials' });
    await expect(th.attempt('ANA ', ctx, refuse)).rejects.toMatchObject({ reason: 'bad-credentials' });
    await expect(th.attempt('ana', ctx, () => Promise.resolve('ok'))).rejects.toMatchObject({ reason: 'throttled' });
    await clock.advance(1000);
    expect(await th.attempt('ana', ctx, () => Promise.resolve('ok'))).toBe('ok');
  });
});
