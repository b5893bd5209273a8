import { InvalidInputError } from '../errors.js';

/**
 * The versions of an image an envelope covers, as text: `*` (every version), an exact version
 * (`3.2.0`), comparisons joined by spaces, all of which must hold (`>=3.0.0 <4.0.0`), and
 * alternatives joined by `||` (`3.1.4 || >=3.2.0 <4`). Versions compare by their dot-separated
 * parts, numerically where both parts are numbers (so `3.10.0` follows `3.9.0`), else as text;
 * a version with fewer parts is padded with zeros (`4` is `4.0.0`).
 */
export type VersionRange = string;

type Op = '=' | '>=' | '>' | '<=' | '<';
type Comparator = { op: Op; version: string };
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$/;

/**
 * Checks a version range and returns it normalized (single spaces); throws InvalidInputError
 * naming what is wrong.
 *
 * @example
 * ```ts
 * parseVersionRange('>=3.0.0  <4'); // '>=3.0.0 <4'
 * ```
 */
export function parseVersionRange(range: string): VersionRange {
  return compile(range)
    .map((all) =>
      all.length === 0 ? '*' : all.map((c) => (c.op === '=' ? c.version : `${c.op}${c.version}`)).join(' '),
    )
    .join(' || ');
}

/** True when `version` is in `range`. */
export function versionInRange(version: string, range: VersionRange): boolean {
  return compile(range).some((all) => all.every((c) => holds(compareVersions(version, c.version), c.op)));
}

/** Orders two versions: negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    if (x === y) continue;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny) && nx !== ny) return nx - ny;
    if (!Number.isNaN(nx) && Number.isNaN(ny)) return 1; // 3.0.0 is after 3.0.rc1
    if (Number.isNaN(nx) && !Number.isNaN(ny)) return -1;
    return x < y ? -1 : 1;
  }
  return 0;
}

function holds(cmp: number, op: Op): boolean {
  switch (op) {
    case '=':
      return cmp === 0;
    case '>=':
      return cmp >= 0;
    case '>':
      return cmp > 0;
    case '<=':
      return cmp <= 0;
    case '<':
      return cmp < 0;
  }
}

/** Alternatives of conjunctions; `*` is an empty conjunction (always true). */
function compile(range: string): Comparator[][] {
  const bad = (what: string): InvalidInputError =>
    new InvalidInputError(
      `Version range ${JSON.stringify(range)} is not valid: ${what}. Expected for example "*", "3.2.0" or ">=3.0.0 <4.0.0".`,
      { details: { range, expected: 'version range' } },
    );
  if (typeof range !== 'string' || range.length > 1024) throw bad('too long');
  const alternatives = range.split('||').map((a) => a.trim());
  return alternatives.map((alt) => {
    if (alt === '') throw bad('an empty alternative');
    if (alt === '*') return [];
    return alt.split(/\s+/).map((part) => {
      const m = /^(>=|<=|>|<|=)?(.*)$/.exec(part)!;
      const version = m[2]!;
      if (!VERSION.test(version)) throw bad(`${JSON.stringify(part)} is not a version or a comparison`);
      return { op: (m[1] ?? '=') as Op, version };
    });
  });
}
