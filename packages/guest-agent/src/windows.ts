import { MAX_ICON_BYTES, RDP_POLICY_VALUES, type GuestApp } from '@tandem/core/guest';
import type { ProgramRunner, RunResult } from './run.js';
import { guestFailure, type SetupApplier } from './setup.js';
import { applyWindowsNetwork } from './setup-network-windows.js';

/**
 * The Windows side: PowerShell scripts that are constant text and take every value as data,
 * one JSON object on stdin, never spliced into the script. A computer name like
 * `x'; Remove-Item C:\ -Recurse; '` is a string PowerShell hands to Rename-Computer, nothing more.
 */
export const POWERSHELL = 'powershell.exe';
export const POWERSHELL_ARGS = [
  '-NoLogo',
  '-NoProfile',
  '-NonInteractive',
  '-ExecutionPolicy',
  'Bypass',
  '-EncodedCommand',
];

const PRELUDE = `$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$in = [Console]::In.ReadToEnd() | ConvertFrom-Json
function Fail($e) {
  [Console]::Error.WriteLine('TANDEM-ERROR ' + (@{ FullyQualifiedErrorId = [string]$e.FullyQualifiedErrorId; Message = [string]$e.Exception.Message } | ConvertTo-Json -Compress))
  exit 1
}
`;

/** The scripts, by operation. */
export const SCRIPTS = {
  rename: `${PRELUDE}try {
  Rename-Computer -NewName $in.computerName -Force -PassThru | Select-Object HasSucceeded, OldComputerName, NewComputerName | ConvertTo-Json -Compress
} catch { Fail $_ }
`,
  join: `${PRELUDE}try {
  $secret = ConvertTo-SecureString -String $in.secret -AsPlainText -Force
  $p = @{ DomainName = $in.domain; Force = $true; PassThru = $true }
  if ($in.user) { $p.Credential = New-Object System.Management.Automation.PSCredential ($in.user, $secret) }
  else { $p.Credential = New-Object System.Management.Automation.PSCredential ('otp', $secret); $p.Options = 'UnsecuredJoin', 'PasswordPass' }
  if ($in.ou) { $p.OUPath = $in.ou }
  if ($in.computerName -ne $env:COMPUTERNAME) { $p.NewName = $in.computerName }
  Add-Computer @p | Select-Object HasSucceeded, ComputerName | ConvertTo-Json -Compress
} catch { Fail $_ }
`,
  apps: `${PRELUDE}try {
  Add-Type -AssemblyName System.Drawing
  $shell = New-Object -ComObject WScript.Shell
  $max = [int]$in.maxIconBytes
  function IconOf($path) {
    try {
      $icon = [System.Drawing.Icon]::ExtractAssociatedIcon($path)
      if ($null -eq $icon) { return $null }
      $ms = New-Object System.IO.MemoryStream
      $icon.ToBitmap().Save($ms, [System.Drawing.Imaging.ImageFormat]::Png)
      if ($ms.Length -gt $max) { return $null }
      return [Convert]::ToBase64String($ms.ToArray())
    } catch { return $null }
  }
  $out = @()
  foreach ($root in @("$env:ProgramData\\Microsoft\\Windows\\Start Menu\\Programs", "$env:APPDATA\\Microsoft\\Windows\\Start Menu\\Programs")) {
    if (-not (Test-Path -LiteralPath $root)) { continue }
    foreach ($f in Get-ChildItem -LiteralPath $root -Recurse -Filter *.lnk -ErrorAction SilentlyContinue) {
      $l = $shell.CreateShortcut($f.FullName)
      if (-not $l.TargetPath -or -not $l.TargetPath.EndsWith('.exe', 'OrdinalIgnoreCase')) { continue }
      $out += [pscustomobject]@{ Source = 'Start Menu'; Id = $f.FullName.Substring($root.Length + 1); Name = $f.BaseName; Path = $f.FullName; Target = $l.TargetPath; Arguments = $l.Arguments; Icon = (IconOf $l.TargetPath) }
    }
  }
  $ap = 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\App Paths'
  foreach ($k in Get-ChildItem -LiteralPath $ap -ErrorAction SilentlyContinue) {
    $t = (Get-ItemProperty -LiteralPath $k.PSPath -ErrorAction SilentlyContinue).'(default)'
    if (-not $t) { continue }
    $t = $t.Trim('"')
    $out += [pscustomobject]@{ Source = 'App Paths'; Id = 'App Paths\\' + $k.PSChildName; Name = [IO.Path]::GetFileNameWithoutExtension($k.PSChildName); Path = $k.Name; Target = $t; Arguments = ''; Icon = (IconOf $t) }
  }
  $out | ConvertTo-Json -Depth 3
} catch { Fail $_ }
`,
} as const;

/** `-EncodedCommand` takes the script as base64 of UTF-16LE. */
export function encodeCommand(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

/** Runs one script with `values` as JSON on stdin. */
export function runScript(
  run: ProgramRunner,
  op: keyof typeof SCRIPTS,
  values: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<RunResult> {
  return run(POWERSHELL, [...POWERSHELL_ARGS, encodeCommand(SCRIPTS[op])], {
    input: JSON.stringify(values),
    maxBytes: 32 * 1024 * 1024,
    ...(signal ? { signal } : {}),
  });
}

/**
 * PowerShell's words for a failure: the script's own `TANDEM-ERROR {json}` line, else the first
 * line of its NormalView error text with the `Cmdlet : ` prefix taken off.
 */
export function powerShellError(r: RunResult): { message: string; id: string } {
  const text = r.stderr.replace(/\r\n/g, '\n');
  const line = text.split('\n').find((l) => l.startsWith('TANDEM-ERROR '));
  if (line) {
    try {
      const o = JSON.parse(line.slice('TANDEM-ERROR '.length)) as {
        Message?: unknown;
        FullyQualifiedErrorId?: unknown;
      };
      return {
        message: typeof o.Message === 'string' ? o.Message : '',
        id: typeof o.FullyQualifiedErrorId === 'string' ? o.FullyQualifiedErrorId : '',
      };
    } catch {
      // fall through to the text
    }
  }
  const first =
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? `PowerShell exited with ${r.exitCode}`;
  const id = /\+ FullyQualifiedErrorId : ([^\n]+)/.exec(text)?.[1]?.trim() ?? '';
  return { message: first.replace(/^[\w-]+\s?:\s+/, ''), id };
}

/** PowerShell 5.1's ConvertTo-Json prints one object, not an array of one: both mean a list. */
function asList(value: unknown): unknown[] {
  if (value === null || value === undefined || value === '') return [];
  return Array.isArray(value) ? value : [value];
}

/** Parses the apps script's output (PowerShell 5.1 or 7 ConvertTo-Json). */
export function parseWindowsApps(stdout: string): GuestApp[] {
  const text = stdout.replace(/^\uFEFF/, '').trim();
  if (text === '') return [];
  const apps: GuestApp[] = [];
  const seen = new Set<string>();
  for (const item of asList(JSON.parse(text))) {
    if (typeof item !== 'object' || item === null) continue;
    const o = item as Record<string, unknown>;
    const str = (k: string): string => (typeof o[k] === 'string' ? o[k] : '');
    const id = str('Id');
    const name = str('Name');
    const target = str('Target');
    if (!id || !name || !target || seen.has(id.toLowerCase())) continue;
    seen.add(id.toLowerCase());
    const icon = str('Icon');
    const iconOk =
      icon !== '' && Buffer.from(icon, 'base64').length <= MAX_ICON_BYTES && icon.startsWith('iVBORw0KGgo');
    apps.push({
      id: id.slice(0, 512),
      name: name.slice(0, 256),
      command: target.slice(0, 4096),
      args: splitWindowsArgs(str('Arguments')),
      source: `${str('Source')}: ${str('Path')}`.slice(0, 1024),
      ...(iconOk ? { icon: { mediaType: 'image/png' as const, data: icon } } : {}),
    });
  }
  return apps;
}

/** Splits a shortcut's Arguments as CommandLineToArgvW does (quotes, backslashes before quotes). */
export function splitWindowsArgs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      let n = 0;
      while (text[i] === '\\') {
        n++;
        i++;
      }
      if (text[i] === '"') {
        cur += '\\'.repeat(Math.floor(n / 2));
        if (n % 2 === 1) cur += '"';
        else {
          quoted = !quoted;
        }
        has = true;
      } else {
        cur += '\\'.repeat(n);
        i--;
        has = true;
      }
      continue;
    }
    if (c === '"') {
      quoted = !quoted;
      has = true;
    } else if ((c === ' ' || c === '\t') && !quoted) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out.slice(0, 64);
}

/** Start Menu shortcuts and App Paths, through PowerShell. */
export async function discoverWindowsApps(run: ProgramRunner): Promise<GuestApp[]> {
  const r = await runScript(run, 'apps', { maxIconBytes: MAX_ICON_BYTES });
  if (r.exitCode !== 0) {
    const e = powerShellError(r);
    throw guestFailure('App discovery failed', e.message, e.id || 'powershell');
  }
  return parseWindowsApps(r.stdout);
}

/** First-time setup on Windows: Rename-Computer and Add-Computer -OUPath, values as data. */
export function windowsSetup(run: ProgramRunner): SetupApplier {
  return {
    async computerName(name, signal) {
      const r = await runScript(run, 'rename', { computerName: name }, signal);
      if (r.exitCode !== 0) {
        const e = powerShellError(r);
        // Renaming to the current name is not a failure: the step's goal holds.
        if (e.id.startsWith('NewNameIsOldName'))
          return { message: `the computer is already named ${name}`, rebootRequired: false };
        throw guestFailure('Rename-Computer failed', e.message, e.id || 'rename');
      }
      const o = JSON.parse(r.stdout.replace(/^\uFEFF/, '').trim()) as {
        HasSucceeded?: boolean;
        OldComputerName?: string;
      };
      if (o.HasSucceeded !== true)
        throw guestFailure('Rename-Computer failed', `Rename-Computer did not succeed (${r.stdout.trim()})`, 'rename');
      return {
        message: `renamed ${o.OldComputerName ?? ''} to ${name}; takes effect after a restart`,
        rebootRequired: true,
      };
    },
    async network(params, signal) {
      if (params.mode !== 'none' && params.settings) {
        return { message: await applyWindowsNetwork(params.settings, run, signal), rebootRequired: false };
      }
      return {
        message: `network mode ${params.mode}: Windows keeps its adapter settings (DHCP)`,
        rebootRequired: false,
      };
    },
    async domainJoin(params, signal) {
      const r = await runScript(
        run,
        'join',
        {
          domain: params.domain,
          ou: params.ou ?? null,
          computerName: params.computerName,
          user: params.user ?? null,
          secret: params.secret,
        },
        signal,
      );
      if (r.exitCode !== 0) {
        const e = powerShellError(r);
        throw guestFailure('Add-Computer failed', e.message, e.id || 'join');
      }
      const o = JSON.parse(r.stdout.replace(/^\uFEFF/, '').trim()) as { HasSucceeded?: boolean };
      if (o.HasSucceeded !== true)
        throw guestFailure('Add-Computer failed', `Add-Computer did not succeed (${r.stdout.trim()})`, 'join');
      return {
        message: `joined ${params.domain}${params.ou ? ` in ${params.ou}` : ''}; takes effect after a restart`,
        rebootRequired: true,
      };
    },
  };
}

/** The key of the Remote Desktop Services policies (fixed: the host names values, never keys). */
export const TS_POLICY_KEY = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services';

/** reg.exe's own words for a failure: its `ERROR: ...` line. */
export function regError(r: RunResult): string {
  const text = `${r.stderr}\n${r.stdout}`.replace(/\r\n/g, '\n');
  return (
    text
      .split('\n')
      .find((l) => l.startsWith('ERROR:'))
      ?.replace(/^ERROR:\s*/, '')
      .trim() ?? `reg.exe exited with ${r.exitCode}`
  );
}

/**
 * Sets the Remote Desktop policy values with `reg.exe add` (one call per value, argv only: the
 * names come from the protocol's closed list and the values are 0 or 1), so that Remote Desktop
 * in the guest enforces the data-transfer policy also for an RDP client that is not Tandem's.
 * Policies are read by Remote Desktop at each new connection.
 */
export async function applyRdpPolicy(
  run: ProgramRunner,
  values: readonly { name: (typeof RDP_POLICY_VALUES)[number]; value: 0 | 1 }[],
  signal?: AbortSignal,
): Promise<{ applied: string[] }> {
  const applied: string[] = [];
  for (const v of values) {
    if (!(RDP_POLICY_VALUES as readonly string[]).includes(v.name) || (v.value !== 0 && v.value !== 1)) {
      throw guestFailure(
        'Setting the Remote Desktop policy failed',
        `${String(v.name)} is not a policy value`,
        'rdp-policy',
      );
    }
    const r = await run(
      'reg.exe',
      ['add', TS_POLICY_KEY, '/v', v.name, '/t', 'REG_DWORD', '/d', String(v.value), '/f'],
      signal ? { signal } : {},
    );
    if (r.exitCode !== 0) {
      throw guestFailure('Setting the Remote Desktop policy failed', `${v.name}: ${regError(r)}`, 'rdp-policy');
    }
    applied.push(`${v.name}=${v.value}`);
  }
  return { applied };
}
