import { parseDuration, type MaintenancePolicy } from '@tandem/core';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** One opening of a maintenance window, in ms since the epoch. */
export interface WindowOccurrence {
  readonly start: number;
  readonly end: number;
}

/**
 * The maintenance window that is open at `now`, or else the next one to open (within a week).
 * `at` is read in the host's local time or in UTC, as the policy says.
 *
 * @example
 * ```ts
 * currentOrNextWindow({ windows: [{ days: ['sun'], at: '03:00', duration: 'PT2H' }], timeZone: 'utc' }, Date.now());
 * ```
 */
export function currentOrNextWindow(policy: MaintenancePolicy, now: number): WindowOccurrence | undefined {
  const utc = policy.timeZone === 'utc';
  let best: WindowOccurrence | undefined;
  // From yesterday (a window may still be open) to a week ahead.
  for (let offset = -1; offset <= 7; offset++) {
    const day = new Date(now + offset * 86_400_000);
    for (const w of policy.windows) {
      const [h, m] = w.at.split(':').map(Number) as [number, number];
      const start = new Date(day);
      if (utc) start.setUTCHours(h, m, 0, 0);
      else start.setHours(h, m, 0, 0);
      const weekday = DAYS[utc ? start.getUTCDay() : start.getDay()]!;
      if (!w.days.includes(weekday)) continue;
      const end = start.getTime() + parseDuration(w.duration);
      if (end <= now) continue;
      if (!best || start.getTime() < best.start) best = { start: start.getTime(), end };
    }
  }
  return best;
}
