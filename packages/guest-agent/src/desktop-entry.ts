/** A parsed .desktop file's `[Desktop Entry]` group (the keys Tandem uses). */
export interface DesktopEntry {
  readonly type: string;
  readonly name: string;
  readonly exec: string;
  readonly icon?: string;
  readonly categories: string[];
  /** NoDisplay or Hidden: not offered in menus. */
  readonly hidden: boolean;
  readonly tryExec?: string;
}

/**
 * Parses a desktop entry (freedesktop Desktop Entry Specification 1.5): the `[Desktop Entry]`
 * group only, unlocalized keys, escapes `\s \n \t \r \\` decoded. Returns undefined when it is
 * not an entry Tandem can use (no group, no Name).
 */
export function parseDesktopEntry(text: string): DesktopEntry | undefined {
  const values = new Map<string, string>();
  let inGroup = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      inGroup = line === '[Desktop Entry]';
      continue;
    }
    if (!inGroup) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!values.has(key)) values.set(key, unescapeValue(line.slice(eq + 1).trim()));
  }
  const name = values.get('Name');
  if (!name) return undefined;
  const icon = values.get('Icon');
  const tryExec = values.get('TryExec');
  return {
    type: values.get('Type') ?? '',
    name,
    exec: values.get('Exec') ?? '',
    ...(icon ? { icon } : {}),
    ...(tryExec ? { tryExec } : {}),
    categories: (values.get('Categories') ?? '').split(';').filter((c) => c !== ''),
    hidden: values.get('NoDisplay') === 'true' || values.get('Hidden') === 'true',
  };
}

function unescapeValue(v: string): string {
  return v.replace(/\\([sntr\\;])/g, (_m, c: string) =>
    c === 's' ? ' ' : c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c === ';' ? '\\;' : '\\',
  );
}

/**
 * Splits an Exec value into program and arguments as the spec says (double quotes, with `\"`,
 * `` \` ``, `\$` and `\\` escaped inside them) and drops the field codes (`%f`, `%U`, ...);
 * `%%` is a percent sign.
 *
 * @example
 * ```ts
 * splitExec('"/opt/My App/run" --new %U'); // ['/opt/My App/run', '--new']
 * ```
 */
export function splitExec(exec: string): string[] {
  const args: string[] = [];
  let cur = '';
  let has = false;
  let quoted = false;
  for (let i = 0; i < exec.length; i++) {
    const c = exec[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < exec.length && '"`$\\'.includes(exec[i + 1]!)) {
        cur += exec[++i];
      } else if (c === '"') quoted = false;
      else cur += c;
      continue;
    }
    if (c === '"') {
      quoted = true;
      has = true;
    } else if (c === ' ' || c === '\t') {
      if (has) args.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) args.push(cur);
  const out: string[] = [];
  for (const a of args) {
    if (/^%[fFuUdDnNickvm]$/.test(a)) continue;
    const v = a.replace(/%([fFuUdDnNickvm%])/g, (_m, c: string) => (c === '%' ? '%' : ''));
    if (v !== '' || !a.startsWith('%')) out.push(v);
  }
  return out;
}
