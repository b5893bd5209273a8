/**
 * Test helpers for the host module (not exported from the package): hostile strings and a
 * reference parser for Windows command lines.
 */
import fc from 'fast-check';

/**
 * Fragments that break naive quoting: quotes, command substitution, separators, redirection,
 * newlines, PowerShell and cmd metacharacters, wildcards, leading dashes and non-ASCII text.
 * Fragments that would run a command all touch `canary`, so a test can prove none ran.
 */
export function hostileFragments(canary: string): string[] {
  return [
    "'",
    '"',
    '`',
    '\\',
    '$',
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `; touch ${canary}`,
    `& touch ${canary}`,
    `&& touch ${canary}`,
    `| touch ${canary}`,
    `\ntouch ${canary}\n`,
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `x'; Remove-Item C:\\ -Recurse; '`,
    '$env:PATH',
    '@(1)',
    '--%',
    '%PATH%',
    '!x!',
    '^',
    '<',
    '>',
    '(',
    ')',
    '{',
    '}',
    '[a]',
    '*',
    '?',
    '~',
    '#',
    '=',
    ',',
    ' ',
    '\t',
    '\r\n',
    '-',
    '--',
    '-rf',
    '--name=x',
    'é',
    '名前',
    '🙂',
    '\u202e',
    '\u00a0',
    'ﬁ',
  ];
}

/** Strings built from hostile fragments and arbitrary text (never a NUL byte). */
export function hostileString(canary: string, options: { minLength?: number } = {}): fc.Arbitrary<string> {
  const fragment = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...hostileFragments(canary)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 6 }) },
  );
  return fc
    .array(fragment, { minLength: options.minLength ?? 0, maxLength: 6 })
    .map((parts) => parts.join(''))
    .filter((s) => !s.includes('\0') && s.length >= (options.minLength ?? 0));
}

/**
 * Splits the argument part of a Windows command line by the Microsoft C runtime's rules
 * (documented in "Parsing C++ command-line arguments"). It throws on a quote right after a
 * closing quote, where runtime versions disagree, so a round trip through it proves the
 * encoder never relies on that case.
 */
export function parseMsvcrtArguments(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= n) break;
    let arg = '';
    let quoted = false;
    let started = false;
    while (i < n) {
      const ch = line[i]!;
      if (!quoted && (ch === ' ' || ch === '\t')) break;
      if (ch === '\\') {
        let count = 0;
        while (line[i] === '\\') {
          count++;
          i++;
        }
        if (line[i] === '"') {
          arg += '\\'.repeat(Math.floor(count / 2));
          if (count % 2 === 1) {
            arg += '"';
            i++;
          }
        } else {
          arg += '\\'.repeat(count);
        }
        started = true;
        continue;
      }
      if (ch === '"') {
        if (quoted && line[i + 1] === '"') throw new Error(`ambiguous "" inside quotes at ${i}`);
        quoted = !quoted;
        started = true;
        i++;
        continue;
      }
      arg += ch;
      started = true;
      i++;
    }
    if (started) args.push(arg);
  }
  return args;
}
