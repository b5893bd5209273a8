import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { compareVersions, parseVersionRange, versionInRange } from './versions.js';

const version = fc.array(fc.nat({ max: 30 }), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('.'));

describe('version ranges', () => {
  it('matches exact versions, comparisons, conjunctions and alternatives', () => {
    expect(versionInRange('3.2.0', '3.2.0')).toBe(true);
    expect(versionInRange('3.2.1', '3.2.0')).toBe(false);
    expect(versionInRange('3.10.0', '>=3.9.0 <4')).toBe(true);
    expect(versionInRange('4.0.0', '>=3.9.0 <4')).toBe(false);
    expect(versionInRange('1.0.0', '3.1.4 || <2')).toBe(true);
    expect(versionInRange('anything', '*')).toBe(true);
    expect(versionInRange('3', '3.0.0')).toBe(true);
  });

  it('refuses what is not a range, with a typed error', () => {
    for (const bad of ['', '||', '>=', '3.0 ||', 'a b;c', '>= 3']) {
      expect(() => parseVersionRange(bad)).toThrow(expect.objectContaining({ code: 'TANDEM_INVALID_INPUT' }));
    }
    expect(
      TandemError.is(
        (() => {
          try {
            parseVersionRange('<');
          } catch (e) {
            return e;
          }
        })(),
      ),
    ).toBe(true);
  });

  it('normalizes spacing', () => {
    expect(parseVersionRange('  >=3.0.0   <4 ||  * ')).toBe('>=3.0.0 <4 || *');
  });

  it('orders versions consistently (property)', () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        expect(Math.sign(compareVersions(a, b)) + Math.sign(compareVersions(b, a))).toBe(0);
        expect(versionInRange(a, `>=${a} <=${a}`)).toBe(true);
        expect(versionInRange(a, `>=${b}`) || versionInRange(a, `<${b}`)).toBe(true);
        expect(versionInRange(a, `>=${b}`) && versionInRange(a, `<${b}`)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
