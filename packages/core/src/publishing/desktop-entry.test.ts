import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { execLine, parseDesktopFile, parseExecLine, quoteExecArg, unescapeDesktopValue } from './desktop-entry.js';
import { hostileString } from './test-helpers.test-helper.js';

describe('desktop entry Exec quoting', () => {
  it('leaves plain words alone and quotes reserved characters by the spec', () => {
    expect(quoteExecArg('tandem')).toBe('tandem');
    expect(quoteExecArg('a b')).toBe('"a b"');
    expect(quoteExecArg('$(x)')).toBe('"\\$(x)"');
    expect(quoteExecArg('a"b')).toBe('"a\\"b"');
    expect(quoteExecArg('`x`')).toBe('"\\`x\\`"');
    expect(quoteExecArg('')).toBe('""');
    expect(quoteExecArg('%F')).toBe('%%F');
    // The string escaping comes on top: a backslash inside quotes is written as four.
    expect(execLine(['a\\b c'])).toBe('"a\\\\\\\\b c"');
  });

  it('refuses NUL', () => {
    expect(() => quoteExecArg('a\0b')).toThrow(/NUL/);
  });

  it('any argument (hostile or not) comes back as itself and never as a field code', () => {
    fc.assert(
      fc.property(
        fc.array(
          hostileString().filter((s) => !s.includes('\0')),
          { maxLength: 5 },
        ),
        (args) => {
          const line = execLine(['tandem', 'apps', 'launch', ...args], ['%F']);
          expect(line).not.toMatch(/[\n\r]/);
          const parsed = parseExecLine(line);
          expect(parsed).toEqual(['tandem', 'apps', 'launch', ...args, '%F']);
          // The only unescaped field code is the one Tandem put there.
          const codes =
            unescapeDesktopValue(line)
              .replace(/%%/g, '')
              .match(/%[a-zA-Z]/g) ?? [];
          expect(codes).toEqual(['%F']);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a parsed file keeps one group per header', () => {
    const g = parseDesktopFile('[Desktop Entry]\nName=A\n\n[Desktop Action x]\nName=B\n');
    expect(g.get('Desktop Entry')?.get('Name')).toBe('A');
    expect(g.get('Desktop Action x')?.get('Name')).toBe('B');
  });
});
