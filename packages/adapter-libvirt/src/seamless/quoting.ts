/**
 * Quoting for the command lines that leave the host as text: a Windows program's parameters
 * (RemoteApp `cmd`), a POSIX command for Xpra's `--start-child`, and FreeRDP 3's comma lists.
 */

/**
 * Joins arguments into one Windows command line that CommandLineToArgvW (and the Microsoft C
 * runtime) splits back into exactly these arguments.
 */
export function windowsCommandLine(args: readonly string[]): string {
  return args.map(quoteWindowsArg).join(' ');
}

/** Quotes one argument by the Windows rules: backslashes double only before a quote. */
export function quoteWindowsArg(arg: string): string {
  if (arg !== '' && !/[ \t\n\v"]/.test(arg)) return arg;
  let out = '"';
  let slashes = 0;
  for (const ch of arg) {
    if (ch === '\\') {
      slashes++;
      continue;
    }
    if (ch === '"') {
      out += '\\'.repeat(slashes * 2 + 1) + '"';
    } else {
      out += '\\'.repeat(slashes) + ch;
    }
    slashes = 0;
  }
  return out + '\\'.repeat(slashes * 2) + '"';
}

/** Quotes one word for a POSIX shell or Python's shlex.split (Xpra): `'...'`, `'` as `'\''`. */
export function quotePosix(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Joins a command and its arguments into one POSIX command line. */
export function posixCommandLine(argv: readonly string[]): string {
  return argv.map(quotePosix).join(' ');
}

/**
 * Escapes a value inside FreeRDP 3's comma-separated option lists (`/app:program:...,cmd:...`):
 * WinPR treats `\` as the escape character and `,` and `"` as syntax.
 */
export function escapeFreeRdpListValue(value: string): string {
  return value.replace(/[\\,"]/g, (c) => `\\${c}`);
}
