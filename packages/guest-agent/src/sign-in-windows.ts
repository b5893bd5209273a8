import type { SignInResult } from '@tandem/core/guest';
import type { ProgramRunner } from './run.js';
import { guestFailure } from './setup.js';
import type { SignInApplier } from './sign-in-linux.js';
import { encodeCommand, POWERSHELL, POWERSHELL_ARGS, powerShellError } from './windows.js';

/**
 * Windows: the credentials are checked with the documented Win32 call `LogonUserW`
 * (advapi32, LOGON32_LOGON_INTERACTIVE, the default provider), from PowerShell through P/Invoke.
 * The script is constant text; user, domain and password arrive as one JSON object on stdin,
 * never in the script or argv, and the token is closed at once. Starting the console session
 * itself is a credential provider's job (a COM DLL in LogonUI), which this agent does not ship:
 * the result says the credentials are valid and that no session was started.
 */
export const SIGN_IN_SCRIPT = `$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$in = [Console]::In.ReadToEnd() | ConvertFrom-Json
function Fail($id, $msg) {
  [Console]::Error.WriteLine('TANDEM-ERROR ' + (@{ FullyQualifiedErrorId = [string]$id; Message = [string]$msg } | ConvertTo-Json -Compress))
  exit 1
}
try {
  Add-Type -Namespace Tandem -Name Logon -MemberDefinition @'
[DllImport("advapi32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
public static extern bool LogonUserW(string user, string domain, string password, int type, int provider, out IntPtr token);
[DllImport("kernel32.dll", SetLastError = true)]
public static extern bool CloseHandle(IntPtr handle);
'@
  $domain = if ($in.domain) { [string]$in.domain } else { '.' }
  $token = [IntPtr]::Zero
  $ok = [Tandem.Logon]::LogonUserW([string]$in.user, $domain, [string]$in.password, 2, 0, [ref]$token)
  $code = [Runtime.InteropServices.Marshal]::GetLastWin32Error()
  $in.password = $null
  if (-not $ok) { Fail ('Win32Error' + $code) (New-Object ComponentModel.Win32Exception $code).Message }
  [void][Tandem.Logon]::CloseHandle($token)
  [pscustomobject]@{ User = [string]$in.user; Domain = $domain; LogonType = 2 } | ConvertTo-Json -Compress
} catch { Fail $_.FullyQualifiedErrorId $_.Exception.Message }
`;

/** Win32 errors that mean "these credentials are not accepted", not "the check failed". */
const REFUSED = new Set(['Win32Error1326', 'Win32Error1327', 'Win32Error1330', 'Win32Error1331', 'Win32Error1909']);

/** The Windows sign-in (see {@link SIGN_IN_SCRIPT}). */
export function windowsSignIn(run: ProgramRunner): SignInApplier {
  return {
    async signIn(user, domain, password, signal): Promise<SignInResult> {
      const json = Buffer.from(
        JSON.stringify({ user, domain: domain ?? null, password: password.toString('utf8') }),
        'utf8',
      );
      let r;
      try {
        r = await run(POWERSHELL, [...POWERSHELL_ARGS, encodeCommand(SIGN_IN_SCRIPT)], { input: json, signal });
      } finally {
        json.fill(0);
      }
      if (r.exitCode !== 0) {
        const e = powerShellError(r);
        throw guestFailure(
          REFUSED.has(e.id) ? 'Sign-in refused' : 'LogonUser failed',
          `${domain ? `${domain}\\` : ''}${user}: ${e.message}`,
          e.id || 'logon',
          !REFUSED.has(e.id),
        );
      }
      const o = JSON.parse(r.stdout.replace(/^\uFEFF/, '').trim()) as { User?: string; Domain?: string };
      return {
        user: o.User ?? user,
        method: 'LogonUser',
        message: `${o.Domain && o.Domain !== '.' ? `${o.Domain}\\` : ''}${o.User ?? user} verified by LogonUser; the console session needs a credential provider, which this agent does not ship, so none was started`,
      };
    },
  };
}
