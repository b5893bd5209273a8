import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuestOperationError } from '@tandem/core/guest';
import type { ProgramRunner, RunResult } from './run.js';
import {
  POWERSHELL,
  SCRIPTS,
  applyRdpPolicy,
  discoverWindowsApps,
  parseWindowsApps,
  powerShellError,
  splitWindowsArgs,
  windowsSetup,
} from './windows.js';

// Recorded outputs in Windows PowerShell 5.1's exact format: CRLF line ends, ConvertTo-Json's
// four-space indent and two spaces after the colon, one object instead of an array of one, the
// scripts' TANDEM-ERROR line, and NormalView error text for a failure outside a try block.
const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'ps51', name), 'utf8');

interface Call {
  command: string;
  args: readonly string[];
  input: string;
}

function recorded(result: Partial<RunResult>): { run: ProgramRunner; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    run: async (command, args, options = {}) => {
      calls.push({ command, args, input: String(options.input ?? '') });
      return { exitCode: 0, stdout: '', stderr: '', truncated: false, ...result };
    },
  };
}

const decode = (encoded: string): string => Buffer.from(encoded, 'base64').toString('utf16le');
const signal = new AbortController().signal;

describe('Windows: PowerShell with values as data', () => {
  it('Rename-Computer gets a hostile name as JSON on stdin, never in the script', async () => {
    const { run, calls } = recorded({ stdout: fixture('rename-ok.stdout') });
    const name = "x'; Remove-Item C:\\ -Recurse; '";
    const r = await windowsSetup(run).computerName(name, signal);
    expect(r).toMatchObject({ rebootRequired: true });
    expect(r.message).toMatch(/renamed WIN-8F3K2LQ1/);
    const call = calls[0]!;
    expect(call.command).toBe(POWERSHELL);
    expect(call.args.slice(0, -1)).toEqual([
      '-NoLogo',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
    ]);
    expect(decode(call.args.at(-1)!)).toBe(SCRIPTS.rename);
    expect(decode(call.args.at(-1)!)).not.toContain('Remove-Item');
    expect(JSON.parse(call.input)).toEqual({ computerName: name });
  });

  it('renaming to the current name is not a failure', async () => {
    const { run } = recorded({ exitCode: 1, stderr: fixture('rename-same.stderr') });
    expect((await windowsSetup(run).computerName('ERP-K7Q2', signal)).message).toMatch(/already named ERP-K7Q2/);
  });

  it("Add-Computer's failure carries PowerShell's own message; the secret is only on stdin", async () => {
    const { run, calls } = recorded({ exitCode: 1, stderr: fixture('join-no-domain.stderr') });
    const err = await windowsSetup(run)
      .domainJoin(
        {
          instance: 'i',
          step: 'domain-join',
          domain: 'corp.example',
          ou: 'OU=VMs,DC=corp,DC=example',
          computerName: 'ERP-K7Q2',
          user: 'CORP\\joiner',
          secret: 'S3cret!',
        },
        signal,
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as GuestOperationError).guestMessage).toMatch(
      /The specified domain either does not exist or could not be contacted/,
    );
    expect((err as GuestOperationError).details).toMatchObject({
      guestCode: 'FailToJoinDomainFromWorkgroup,Microsoft.PowerShell.Commands.AddComputerCommand',
    });
    expect(calls[0]!.args.join(' ')).not.toContain('S3cret');
    expect(decode(calls[0]!.args.at(-1)!)).toBe(SCRIPTS.join);
    expect(JSON.parse(calls[0]!.input)).toMatchObject({
      ou: 'OU=VMs,DC=corp,DC=example',
      secret: 'S3cret!',
      user: 'CORP\\joiner',
    });
  });

  it('a successful join asks for a restart', async () => {
    const { run } = recorded({ stdout: fixture('join-ok.stdout') });
    const r = await windowsSetup(run).domainJoin(
      { instance: 'i', step: 'domain-join', domain: 'corp.example', computerName: 'ERP-K7Q2', secret: 'otp-123' },
      signal,
    );
    expect(r).toMatchObject({ rebootRequired: true });
  });

  it("reads PowerShell's NormalView error text when a failure escapes the script's try", () => {
    expect(powerShellError({ exitCode: 1, stdout: '', stderr: fixture('bad-input.stderr'), truncated: false })).toEqual(
      {
        message: 'Invalid JSON primitive: .',
        id: 'System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand',
      },
    );
  });
});

describe('Windows: Start Menu shortcuts and App Paths', () => {
  it('parses the apps list with PNG icons, arguments split as Windows does', async () => {
    const { run, calls } = recorded({ stdout: fixture('apps-many.stdout') });
    const apps = await discoverWindowsApps(run);
    expect(decode(calls[0]!.args.at(-1)!)).toBe(SCRIPTS.apps);
    expect(apps.map((a) => a.name)).toEqual(['Notepad++', 'ERP Client', 'excel']);
    expect(apps[1]).toMatchObject({
      id: 'Legacy ERP\\ERP Client.lnk',
      command: 'C:\\Program Files (x86)\\Legacy ERP\\erp.exe',
      args: ['/profile', 'Corp Finance', '/lang:de'],
    });
    expect(apps[1]!.icon).toBeUndefined();
    expect(Buffer.from(apps[0]!.icon!.data, 'base64').subarray(1, 4).toString()).toBe('PNG');
    expect(apps[2]!.source).toMatch(/^App Paths: HKEY_LOCAL_MACHINE/);
  });

  it('one shortcut: ConvertTo-Json prints an object, not an array of one', () => {
    expect(parseWindowsApps(fixture('apps-one.stdout'))).toMatchObject([{ name: 'Notepad++', args: ['-multiInst'] }]);
    expect(parseWindowsApps('')).toEqual([]);
  });

  it('splits arguments as CommandLineToArgvW', () => {
    expect(splitWindowsArgs('a "b c" d')).toEqual(['a', 'b c', 'd']);
    expect(splitWindowsArgs('"C:\\dir\\\\" x')).toEqual(['C:\\dir\\', 'x']);
    expect(splitWindowsArgs('say \\"hi\\"')).toEqual(['say', '"hi"']);
  });
});

describe('the Remote Desktop policies, through reg.exe', () => {
  const reg = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'reg', name), 'utf8');

  it('sets each value under the Terminal Services policy key, argv only', async () => {
    const { run, calls } = recorded({ stdout: reg('add-ok.stdout.txt') });
    const r = await applyRdpPolicy(run, [
      { name: 'fDisableClip', value: 1 },
      { name: 'fEnableSmartCard', value: 0 },
    ]);
    expect(r.applied).toEqual(['fDisableClip=1', 'fEnableSmartCard=0']);
    expect(calls.map((c) => [c.command, ...c.args])).toEqual([
      [
        'reg.exe',
        'add',
        'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services',
        '/v',
        'fDisableClip',
        '/t',
        'REG_DWORD',
        '/d',
        '1',
        '/f',
      ],
      [
        'reg.exe',
        'add',
        'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services',
        '/v',
        'fEnableSmartCard',
        '/t',
        'REG_DWORD',
        '/d',
        '0',
        '/f',
      ],
    ]);
    expect(calls.every((c) => c.input === '')).toBe(true);
  });

  it("reports reg.exe's own words when it fails, and stops there", async () => {
    const { run, calls } = recorded({ exitCode: 1, stderr: reg('add-access-denied.stderr.txt') });
    const err = await applyRdpPolicy(run, [
      { name: 'fDisableClip', value: 1 },
      { name: 'fDisableCdm', value: 1 },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as Error).message).toContain('fDisableClip: Access is denied.');
    expect(calls).toHaveLength(1);
  });

  it('refuses a value name outside the protocol list without running anything', async () => {
    const { run, calls } = recorded({});
    const err = await applyRdpPolicy(run, [
      { name: 'fDisableClip /f & reg delete HKLM' as 'fDisableClip', value: 1 },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect(calls).toEqual([]);
  });
});
