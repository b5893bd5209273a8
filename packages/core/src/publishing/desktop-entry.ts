import { InvalidInputError } from '../errors.js';

/**
 * Writing freedesktop Desktop Entry files (Desktop Entry Specification 1.4): value escaping,
 * the Exec line's quoting, and reading both back (for tests and `tandem apps list`).
 */

/** Escapes a `string`/`localestring` value: `\` `\n` `\t` `\r` and a leading space.
 *
 * @example
 * ```ts
 * escapeDesktopValue('C:\\dir'); // 'C:\\\\dir'
 * ```
 */
export function escapeDesktopValue(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t')
    .replace(/\r/g, '\\r')
    .replace(/^ /, '\\s');
}

/** Undoes {@link escapeDesktopValue}. */
export function unescapeDesktopValue(value: string): string {
  return value.replace(/\\([\\ntrs])/g, (_m, c: string) =>
    c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c === 's' ? ' ' : '\\',
  );
}

// The spec's reserved characters: an argument holding one is quoted.
const RESERVED = /[ \t\n"'\\><~|&;$*?#()`=]/;

/**
 * One Exec argument, quoted by the spec's rules when it needs it (`"`, `` ` ``, `$` and `\`
 * escaped inside the quotes) and `%` doubled so that no value can become a field code. NUL
 * cannot be written and is refused.
 *
 * @example
 * ```ts
 * quoteExecArg('my file'); // '"my file"'
 * ```
 */
export function quoteExecArg(arg: string): string {
  if (arg.includes('\0')) {
    throw new InvalidInputError('A launcher argument contains NUL, which a desktop entry cannot hold.', {
      details: { arg },
    });
  }
  const pct = arg.replace(/%/g, '%%');
  if (pct !== '' && !RESERVED.test(pct)) return pct;
  return `"${pct.replace(/["`$\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The value of an Exec key: the program and arguments quoted, then `fieldCodes` (such as `%F`)
 * appended as they are, then the whole escaped as a string value.
 *
 * @example
 * ```ts
 * execLine(['tandem', 'apps', 'launch', 'erp'], ['%F']); // 'tandem apps launch erp %F'
 * ```
 */
export function execLine(argv: readonly string[], fieldCodes: readonly string[] = []): string {
  return escapeDesktopValue([...argv.map(quoteExecArg), ...fieldCodes].join(' '));
}

/**
 * Splits an Exec value (as it stands in the file) into arguments the way a launcher does: the
 * string escapes first, then the quoting; `%%` is a `%`, and a field code stays a separate
 * `%X` argument.
 *
 * @example
 * ```ts
 * parseExecLine('tandem apps launch "my app" %F'); // ['tandem', 'apps', 'launch', 'my app', '%F']
 * ```
 */
export function parseExecLine(raw: string): string[] {
  const s = unescapeDesktopValue(raw);
  const out: string[] = [];
  let cur = '';
  let inArg = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ') {
      if (inArg) out.push(cur);
      cur = '';
      inArg = false;
      i++;
    } else if (c === '"') {
      inArg = true;
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length && /["`$\\]/.test(s[i + 1]!)) i++;
        cur += s[i];
        i++;
      }
      if (i >= s.length) throw new InvalidInputError(`Unterminated quote in Exec value: ${raw}`);
      i++;
    } else {
      inArg = true;
      cur += c;
      i++;
    }
  }
  if (inArg) out.push(cur);
  return out.map((a) => (/^%[a-zA-Z]$/.test(a) ? a : a.replace(/%%/g, '%')));
}

/** One group of a desktop entry file: `[name]` and its keys in order. */
export interface DesktopGroup {
  readonly name: string;
  readonly entries: ReadonlyArray<readonly [string, string]>;
}

/** Writes groups as a desktop entry file. Values must already be escaped. */
export function formatDesktopFile(groups: readonly DesktopGroup[]): string {
  return groups
    .map((g) => [`[${g.name}]`, ...g.entries.map(([k, v]) => `${k}=${v}`)].join('\n'))
    .join('\n\n')
    .concat('\n');
}

/** Reads a desktop entry file into groups of raw (still escaped) values.
 *
 * @example
 * ```ts
 * parseDesktopFile(text).get('Desktop Entry')?.get('Exec');
 * ```
 */
export function parseDesktopFile(text: string): Map<string, Map<string, string>> {
  const groups = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const g = /^\[([^\]]+)\]$/.exec(line);
    if (g) {
      current = new Map();
      groups.set(g[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current.set(line.slice(0, eq).trim(), line.slice(eq + 1));
  }
  return groups;
}
