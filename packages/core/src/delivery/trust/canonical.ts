import { InvalidInputError } from '../../errors.js';

/**
 * Canonical JSON as TUF signs it (OLPC style): object keys sorted by code point, no
 * whitespace, integers only. The same value always gives the same bytes.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new InvalidInputError(`Canonical JSON holds integers only, not ${value}.`);
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new InvalidInputError(`Canonical JSON cannot hold a ${typeof value}.`);
}
