import { formatDuration, type UsageDecision } from '@tandem/core';

/** A usage limit the session runs towards. */
export interface UsageLimit {
  readonly check: 'expiry' | 'offline' | 'lease';
  /** When it is reached, ISO 8601. */
  readonly limitAt: string;
  /** Milliseconds left (0: reached). */
  readonly remainingMs: number;
  /** For people: what the limit is and when. */
  readonly message: string;
  /** A short title for a notification. */
  readonly title: string;
}

/**
 * The limits in force now, soonest first: the workspace's expiry and the offline limit (from the
 * usage decision) and the offline lease of the disk key (the envelope's `notAfter`).
 *
 * @example
 * ```ts
 * usageLimits(session.policy.decide(), '2026-05-01T00:00:00Z', clock.now());
 * ```
 */
export function usageLimits(
  decision: Pick<UsageDecision, 'expiresInMs' | 'offlineRemainingMs'>,
  leaseNotAfter: string | undefined,
  now: number,
): UsageLimit[] {
  const out: UsageLimit[] = [];
  const add = (check: UsageLimit['check'], remaining: number, what: string, title: string): void => {
    const remainingMs = Math.max(0, remaining);
    const limitAt = new Date(now + remaining).toISOString();
    const message =
      remainingMs === 0
        ? `${what} was reached at ${limitAt}`
        : `${what} is reached at ${limitAt}, in ${formatDuration(remainingMs)}`;
    out.push({ check, limitAt, remainingMs, message, title });
  };
  if (decision.expiresInMs !== null)
    add('expiry', decision.expiresInMs, 'the workspace expiry', 'the workspace expires');
  if (decision.offlineRemainingMs !== null)
    add('offline', decision.offlineRemainingMs, 'the offline time limit', 'connect to the network');
  if (leaseNotAfter !== undefined) {
    const end = Date.parse(leaseNotAfter);
    if (Number.isFinite(end)) add('lease', end - now, 'the offline lease of the disk key', 'the offline lease ends');
  }
  return out.sort((a, b) => a.remainingMs - b.remainingMs);
}
