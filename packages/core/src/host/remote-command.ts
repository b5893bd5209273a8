/**
 * The one place where a program and its argument array become a command line for a remote
 * shell. An SSH server hands the client's command string to the account's shell, so every
 * argument must come out of that shell exactly as given, whatever it contains.
 *
 * - POSIX (sh, bash, dash, ksh, zsh): every character except `'` and `\` goes inside single
 *   quotes, where nothing is special; `'` and `\` are written outside quotes as `\'` and `\\`.
 *   No empty quoted string is ever produced (except for an empty argument), so the result is
 *   also read correctly by zsh with RC_QUOTES and by fish.
 * - Windows OpenSSH (default shell PowerShell or cmd): nothing is quoted for the shell at all.
 *   The command line consists of bare words from `[A-Za-z0-9+/=.:\\_-]`, which neither shell
 *   treats specially. Anything else runs through a PowerShell launcher sent with
 *   `-EncodedCommand` (base64 of UTF-16LE): the launcher's text is fixed and the program, its
 *   arguments and environment are base64 literals inside it, decoded at run time and given to
 *   `Process.Start` as a command line built with the Microsoft C runtime's quoting rules.
 */
import { InvalidInputError } from '../errors.js';
import type { CommandRequest, RemoteShell } from './types.js';
import { assertRequest } from './validate.js';

/** Quotes one word for a POSIX shell. */
export function quotePosix(word: string): string {
  if (word === '') return "''";
  let out = '';
  let run = '';
  for (const ch of word) {
    if (ch === "'" || ch === '\\') {
      if (run) out += `'${run}'`;
      run = '';
      out += `\\${ch}`;
    } else {
      run += ch;
    }
  }
  if (run) out += `'${run}'`;
  return out;
}

/** A POSIX command line: `NAME='value' ... 'program' 'arg' ...`. */
export function posixCommandLine(
  command: string,
  args: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): string {
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${quotePosix(value)}`);
  return [...assignments, quotePosix(command), ...args.map(quotePosix)].join(' ');
}

/**
 * A POSIX command line that first reports the shell's process id on stderr as
 * `<marker> <pid>`, then `exec`s the program (which keeps that pid), so the caller can end a
 * timed-out program with `kill` even where the SSH server ignores signal requests.
 */
export function posixReportingCommandLine(
  marker: string,
  command: string,
  args: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): string {
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${quotePosix(value)}`);
  const program = [...assignments, 'exec', quotePosix(command), ...args.map(quotePosix)].join(' ');
  return `printf '%s %s\\n' ${quotePosix(marker)} "$$" >&2; ${program}`;
}

/**
 * Quotes one argument by the rules the Microsoft C runtime (and CommandLineToArgvW) use to split
 * a command line: wrap in double quotes when needed, double the backslashes that precede a quote
 * or the closing quote, escape quotes with a backslash.
 */
export function quoteWindowsArg(arg: string): string {
  if (arg !== '' && !/[ \t\n\v"]/.test(arg)) return arg;
  let out = '"';
  let backslashes = 0;
  for (const ch of arg) {
    if (ch === '\\') {
      backslashes++;
      continue;
    }
    if (ch === '"') {
      out += '\\'.repeat(backslashes * 2 + 1) + '"';
    } else {
      out += '\\'.repeat(backslashes) + ch;
    }
    backslashes = 0;
  }
  return out + '\\'.repeat(backslashes * 2) + '"';
}

/** The argument part of a Windows command line (what `ProcessStartInfo.Arguments` takes). */
export function windowsArguments(args: readonly string[]): string {
  return args.map(quoteWindowsArg).join(' ');
}

/** The value of PowerShell's `-EncodedCommand`: the script as base64 of UTF-16LE. */
export function encodePowerShellCommand(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

/** Options every generated `powershell.exe`/`pwsh` invocation starts with. */
export const POWERSHELL_OPTIONS: readonly string[] = [
  '-NoLogo',
  '-NoProfile',
  '-NonInteractive',
  '-ExecutionPolicy',
  'Bypass',
  '-EncodedCommand',
];

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/**
 * The launcher script: fixed text plus base64 literals. Exported so tests can check that the
 * text outside the literals never varies.
 */
export function powershellLauncherScript(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): string {
  const lines = [
    "$ErrorActionPreference = 'Stop'",
    'function D([string]$b) { [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($b)) }',
    '$s = New-Object System.Diagnostics.ProcessStartInfo',
    `$s.FileName = D '${b64(command)}'`,
    `$s.Arguments = D '${b64(windowsArguments(args))}'`,
    '$s.UseShellExecute = $false',
    ...Object.entries(env).map(([k, v]) => `$s.EnvironmentVariables[(D '${b64(k)}')] = D '${b64(v)}'`),
    '$p = [System.Diagnostics.Process]::Start($s)',
    '$p.WaitForExit()',
    'exit $p.ExitCode',
  ];
  return lines.join('\n');
}

const BARE_PROGRAM = /^[A-Za-z0-9][A-Za-z0-9_.:\\-]*$/;
const BARE_ARG = /^-?[A-Za-z0-9][A-Za-z0-9+/=]*$/;
/** cmd.exe refuses command lines longer than 8191 characters; CreateProcess takes 32767. */
const MAX_LINE: Record<Exclude<RemoteShell, 'posix'>, number> = { cmd: 8191, powershell: 32_767 };

/**
 * A command line for Windows OpenSSH whose default shell is PowerShell or cmd. Bare words go
 * as they are; anything else goes through the `-EncodedCommand` launcher.
 */
export function windowsCommandLine(
  shell: Exclude<RemoteShell, 'posix'>,
  command: string,
  args: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): string {
  let line: string;
  if (Object.keys(env).length === 0 && BARE_PROGRAM.test(command) && args.every((a) => BARE_ARG.test(a))) {
    line = [command, ...args].join(' ');
  } else {
    const encoded = encodePowerShellCommand(powershellLauncherScript(command, args, env));
    line = ['powershell.exe', ...POWERSHELL_OPTIONS, encoded].join(' ');
  }
  if (line.length > MAX_LINE[shell]) {
    throw new InvalidInputError(
      `The command for ${command} is ${line.length} characters long once encoded for ${shell}, over the limit of ${MAX_LINE[shell]}. Pass large values on stdin instead.`,
      { details: { command, length: line.length, limit: MAX_LINE[shell] } },
    );
  }
  return line;
}

/**
 * The command line an SSH client sends for `request`, quoted for the remote account's shell.
 *
 * @example
 * ```ts
 * remoteCommandLine('posix', { command: 'VBoxManage', args: ['showvminfo', "x'; reboot"] });
 * // => 'VBoxManage' 'showvminfo' 'x'\''; reboot'
 * ```
 */
export function remoteCommandLine(shell: RemoteShell, request: CommandRequest): string {
  assertRequest(request);
  const args = request.args ?? [];
  const env = request.env ?? {};
  return shell === 'posix'
    ? posixCommandLine(request.command, args, env)
    : windowsCommandLine(shell, request.command, args, env);
}
