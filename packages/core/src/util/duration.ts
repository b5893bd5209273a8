import { InvalidInputError } from '../errors.js';

const ISO_DURATION = /^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** True when `text` is an ISO 8601 duration Tandem understands (weeks, days, hours, minutes, seconds). */
export function isDuration(text: string): boolean {
  return ISO_DURATION.test(text);
}

/**
 * Parses an ISO 8601 duration (`P14D`, `PT15M`, `P1DT12H`, `PT0.5S`) into milliseconds.
 * Years and months are refused: their length depends on the calendar.
 */
export function parseDuration(text: string): number {
  const m = ISO_DURATION.exec(text);
  if (!m) {
    throw new InvalidInputError(
      `"${text}" is not a duration: expected ISO 8601 like PT15M (15 minutes), P14D (14 days) or P1DT12H.`,
      { details: { value: text } },
    );
  }
  const [, w, d, h, min, s] = m;
  const n = (v: string | undefined): number => (v === undefined ? 0 : Number(v));
  return ((((n(w) * 7 + n(d)) * 24 + n(h)) * 60 + n(min)) * 60 + n(s)) * 1000;
}

/** Formats milliseconds as a short human duration (`2d 3h`, `15m`, `4.2s`). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const q = Math.floor(rest / size);
    rest -= q * size;
    if (q > 0) parts.push(`${q}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}
