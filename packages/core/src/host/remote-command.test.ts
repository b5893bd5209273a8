import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import {
  encodePowerShellCommand,
  posixCommandLine,
  posixReportingCommandLine,
  POWERSHELL_OPTIONS,
  powershellLauncherScript,
  quotePosix,
  quoteWindowsArg,
  remoteCommandLine,
  windowsArguments,
  windowsCommandLine,
} from './remote-command.js';
import { hostileString, parseMsvcrtArguments } from './test-strings.js';

const scratch = mkdtempSync(join(tmpdir(), 'tandem-quote-'));
const canary = join(scratch, 'CANARY');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs `printf '%s\0' args...` through a real shell and splits what it printed. */
function throughShell(shell: string, args: readonly string[], env: Record<string, string> = {}): string[] {
  const line = posixCommandLine('printf', ['%s\\000', ...args], env);
  const out = execFileSync(shell, ['-c', line], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  const parts = out.split('\0');
  parts.pop();
  return parts;
}

const argsArb = fc.array(hostileString(canary), { maxLength: 6 });

describe('POSIX quoting', () => {
  for (const shell of ['/bin/sh', '/bin/bash']) {
    it(`round-trips any argument array through a real ${shell}`, () => {
      fc.assert(
        fc.property(argsArb, (args) => {
          // printf prints nothing for "%s\0" with no arguments beyond the format: one empty field.
          expect(throughShell(shell, args)).toEqual(args.length === 0 ? [''] : args);
        }),
        { numRuns: 250 },
      );
      expect(existsSync(canary)).toBe(false);
    });
  }

  it('round-trips arbitrary full-Unicode strings through /bin/sh', () => {
    const any = fc.string({ unit: 'binary', minLength: 1 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(any, (s) => {
        expect(throughShell('/bin/sh', [s])).toEqual([s]);
      }),
      { numRuns: 250 },
    );
  });

  it('passes environment assignments as data', () => {
    fc.assert(
      fc.property(hostileString(canary), (value) => {
        const line = posixCommandLine('sh', ['-c', 'printf "%s" "$TANDEM_V"'], { TANDEM_V: value });
        const out = execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        expect(out).toBe(value);
      }),
      { numRuns: 100 },
    );
    expect(existsSync(canary)).toBe(false);
  });

  it("the pid-reporting form reports the exec'd program's pid and keeps the argv exact", () => {
    fc.assert(
      fc.property(fc.array(hostileString(canary), { maxLength: 4 }), (args) => {
        const line = posixReportingCommandLine('MARK', 'sh', ['-c', 'printf "%s\\000" "$$" "$@"', 'sh', ...args], {
          TANDEM_V: 'v',
        });
        const r = spawnSync('/bin/sh', ['-c', line], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        const [pid, ...rest] = r.stdout.split('\0');
        rest.pop();
        expect(r.stderr).toBe(`MARK ${pid}\n`);
        expect(rest).toEqual(args);
      }),
      { numRuns: 100 },
    );
    expect(existsSync(canary)).toBe(false);
  });

  it('never produces an empty quoted string except for an empty argument', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1 }), (s) => {
        expect(quotePosix(s)).not.toContain("''");
      }),
    );
    expect(quotePosix('')).toBe("''");
    expect(quotePosix("x'; reboot")).toBe("'x'\\''; reboot'");
    expect(quotePosix('a\\b')).toBe("'a'\\\\'b'");
  });
});

describe('Windows quoting', () => {
  it('round-trips any argument array through the Microsoft C runtime rules', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(hostileString(canary), fc.string({ unit: 'binary' })), { maxLength: 8 }),
        (args) => {
          const clean = args.filter((a) => !a.includes('\0'));
          expect(parseMsvcrtArguments(windowsArguments(clean))).toEqual(clean);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('quotes exactly as documented', () => {
    expect(quoteWindowsArg('plain')).toBe('plain');
    expect(quoteWindowsArg('')).toBe('""');
    expect(quoteWindowsArg('a b')).toBe('"a b"');
    expect(quoteWindowsArg('a"b')).toBe('"a\\"b"');
    expect(quoteWindowsArg('C:\\dir\\')).toBe('C:\\dir\\');
    expect(quoteWindowsArg('C:\\my dir\\')).toBe('"C:\\my dir\\\\"');
    expect(quoteWindowsArg('a\\"b c')).toBe('"a\\\\\\"b c"');
  });

  it('encodes -EncodedCommand as base64 of UTF-16LE', () => {
    expect(encodePowerShellCommand('$a')).toBe('JABhAA==');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(Buffer.from(encodePowerShellCommand(s), 'base64').toString('utf16le')).toBe(s);
      }),
    );
  });

  /** Decodes a launcher command line back into the script and its literals. */
  function decodeLauncher(line: string): { script: string; literals: string[]; template: string } {
    const words = line.split(' ');
    expect(words.slice(0, -1)).toEqual(['powershell.exe', ...POWERSHELL_OPTIONS]);
    const script = Buffer.from(words.at(-1)!, 'base64').toString('utf16le');
    const literals: string[] = [];
    const template = script.replace(/D '([A-Za-z0-9+/=]*)'/g, (_m, b64: string) => {
      literals.push(Buffer.from(b64, 'base64').toString('utf8'));
      return "D '…'";
    });
    return { script, literals, template };
  }

  for (const shell of ['powershell', 'cmd'] as const) {
    it(`sends only shell-inert characters to a ${shell} default shell, and the launcher carries the exact argv`, () => {
      const fixed = decodeLauncher(windowsCommandLine(shell, 'x y', [])).template;
      fc.assert(
        fc.property(hostileString(canary), fc.array(hostileString(canary), { maxLength: 5 }), (command, args) => {
          const line = windowsCommandLine(shell, command || 'VBoxManage.exe', args);
          // Neither cmd nor PowerShell gives any of these characters a meaning.
          expect(line).toMatch(/^[A-Za-z0-9+/=.:\\_ -]+$/);
          if (!line.startsWith('powershell.exe ')) return;
          const { literals, template } = decodeLauncher(line);
          // The script text outside the base64 literals never varies with the data.
          expect(template).toBe(fixed);
          expect(literals[0]).toBe(command || 'VBoxManage.exe');
          expect(parseMsvcrtArguments(literals[1]!)).toEqual(args);
        }),
        { numRuns: 1000 },
      );
    });
  }

  it('sends bare words as they are, so a Hyper-V call needs no second PowerShell', () => {
    const encoded = encodePowerShellCommand("$ErrorActionPreference = 'Stop'");
    const line = windowsCommandLine('powershell', 'pwsh', [...POWERSHELL_OPTIONS, encoded]);
    expect(line).toBe(`pwsh -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${encoded}`);
    expect(encoded.startsWith('JA')).toBe(true);
  });

  it('carries environment variables as literals too', () => {
    const line = windowsCommandLine('cmd', 'VBoxManage', ['list', 'vms'], { VBOX_USER_HOME: 'C:\\vbox "home"' });
    const { literals } = decodeLauncher(line);
    expect(literals).toEqual(['VBoxManage', 'list vms', 'VBOX_USER_HOME', 'C:\\vbox "home"']);
  });

  it('refuses a command line longer than cmd.exe accepts, naming the limit', () => {
    const long = 'x '.repeat(2000);
    let err: unknown;
    try {
      windowsCommandLine('cmd', 'VBoxManage', [long]);
    } catch (e) {
      err = e;
    }
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((err as TandemError).details['limit']).toBe(8191);
    expect(windowsCommandLine('powershell', 'VBoxManage', [long]).length).toBeLessThan(32_767);
  });

  it('the launcher script has the documented shape', () => {
    const script = powershellLauncherScript('VBoxManage', ['a b']);
    expect(script.split('\n')[0]).toBe("$ErrorActionPreference = 'Stop'");
    expect(script).toContain('$s.UseShellExecute = $false');
    expect(script).toContain('exit $p.ExitCode');
  });
});

describe('remoteCommandLine', () => {
  it('rejects NUL bytes with InvalidInputError before anything is built', () => {
    for (const shell of ['posix', 'powershell', 'cmd'] as const) {
      expect(() => remoteCommandLine(shell, { command: 'VBoxManage', args: ['a\0b'] })).toThrowError(/NUL byte/);
    }
  });
});
