import {
  AuthError,
  ConflictError,
  HostError,
  HypervisorError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  POWERSHELL_OPTIONS,
  encodePowerShellCommand,
  type CommandResult,
  type CommandRunner,
  type TandemError,
} from '@tandem/core';
import { mapHyperVState, parseJson, parsePsErrorText, parseTandemError, type PsErrorRecord } from './parse.js';
import { encodeScriptInput, scriptFor, type HyperVOp } from './scripts.js';

/** What to do about missing rights, in every AuthError the adapter throws. */
export const PRIVILEGE_FIX =
  "Run PowerShell elevated (Run as administrator), or add the account to the local Hyper-V Administrators group (Add-LocalGroupMember -Group 'Hyper-V Administrators' -Member <account>) and sign out and in again.";

/** What to do when the Hyper-V module is missing. */
export const MODULE_FIX =
  'Install the Hyper-V PowerShell module: Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-Management-PowerShell (Windows 10/11) or Install-WindowsFeature Hyper-V-PowerShell (Windows Server).';

/**
 * PowerShell on one host. Each call runs `<powershell> -NoLogo -NoProfile -NonInteractive
 * -ExecutionPolicy Bypass -EncodedCommand <script>` with the values on stdin.
 */
export class PowerShellCli {
  constructor(
    readonly runner: CommandRunner,
    readonly path: string,
    readonly env: Readonly<Record<string, string>>,
    readonly timeoutMs: number,
  ) {}

  /** The argument array for an operation's script. */
  static args(op: HyperVOp): string[] {
    return [...POWERSHELL_OPTIONS, encodePowerShellCommand(scriptFor(op))];
  }

  /** Runs an operation and returns its raw result. */
  exec(
    op: HyperVOp,
    values: Record<string, string | number | boolean | undefined>,
    timeoutMs?: number,
  ): Promise<CommandResult> {
    return this.runner.run({
      command: this.path,
      args: PowerShellCli.args(op),
      input: encodeScriptInput(values),
      env: this.env,
      timeoutMs: timeoutMs ?? this.timeoutMs,
    });
  }

  /** Runs an operation and returns its parsed JSON, or throws the typed error. */
  async call(
    op: HyperVOp,
    values: Record<string, string | number | boolean | undefined>,
    what: string,
    timeoutMs?: number,
  ): Promise<unknown> {
    const r = await this.exec(op, values, timeoutMs);
    if (r.exitCode !== 0) throw mapPsError(r, what, values['name']);
    try {
      return parseJson(r.stdout);
    } catch (err) {
      throw new HypervisorError(`${what}: PowerShell printed something that is not JSON. See details.output.`, {
        cause: err,
        details: { output: r.stdout + r.stderr, op },
      });
    }
  }
}

/** The record behind a failed run: the script's own TANDEM-ERROR line, or PowerShell's error text. */
export function errorRecord(r: CommandResult): PsErrorRecord | null {
  return parseTandemError(r.stderr) ?? parsePsErrorText(r.stderr);
}

/** Maps a failed PowerShell run to a typed error; the raw output rides along. */
export function mapPsError(r: CommandResult, what: string, vm?: string | number | boolean): TandemError {
  const rec = errorRecord(r);
  const details = {
    exitCode: r.exitCode,
    output: r.stdout + r.stderr,
    record: rec,
    ...(vm !== undefined ? { vm } : {}),
  };
  const id = rec?.fullyQualifiedErrorId ?? '';
  const message = rec?.message ?? (r.stderr.trim() || `PowerShell exited with code ${r.exitCode}`);
  const all = `${id} ${rec?.category ?? ''} ${message}`;
  if (id === 'Tandem.VMNotFound' || /unable to find a virtual machine/i.test(message)) {
    return new NotFoundError(`${what}: Hyper-V has no VM named "${String(vm)}". Check the name with Get-VM.`, {
      details,
    });
  }
  if (id === 'Tandem.SnapshotNotFound') {
    return new NotFoundError(`${what}: the checkpoint does not exist. List the VM's checkpoints to see what exists.`, {
      details,
    });
  }
  if (id === 'Tandem.VMExists') {
    return new ConflictError(
      `${what}: Hyper-V already has a VM named "${String(vm)}". Destroy it first or pick another name.`,
      { details },
    );
  }
  if (id === 'Tandem.VMAmbiguous') {
    return new ConflictError(`${what}: Hyper-V has several VMs named "${String(vm)}"; rename all but one.`, {
      details,
    });
  }
  if (id === 'Tandem.InvalidState') {
    const current = mapHyperVState(rec?.state);
    return new InvalidStateError(`${what}: the VM is ${current}, which does not allow this.`, current, { details });
  }
  if (id === 'Tandem.MacChange') {
    return new InvalidInputError(
      `${what}: Hyper-V cannot change the MAC address of a running VM. Leave network.macAddress out to keep the current one, or stop the VM and redefine it.`,
      { details: { ...details, what: 'network.macAddress' } },
    );
  }
  const missingSwitch = /unable to find a virtual switch with name "(.*)"/i.exec(message);
  if (missingSwitch) {
    return new NotFoundError(
      `${what}: Hyper-V has no virtual switch named "${missingSwitch[1]}". Check network.bridge against Get-VMSwitch, or create the switch (New-VMSwitch).`,
      { details: { ...details, switch: missingSwitch[1] } },
    );
  }
  if (id === 'Tandem.ShutdownTimeout') {
    return new TimeoutError(`${what}: the guest did not shut down in time.`, {
      details: { ...details, state: mapHyperVState(rec?.state) },
    });
  }
  if (id === 'Tandem.MergeTimeout') {
    return new TimeoutError(
      `${what}: Hyper-V is still merging the VM's checkpoints into its disks, so the VM was not removed. Wait until Get-VM shows no merge in progress, then retry.`,
      { details: { ...details, state: mapHyperVState(rec?.state) }, retryable: true },
    );
  }
  if (/PermissionDenied|UnauthorizedAccess|required permission|Access is denied/i.test(all)) {
    return new AuthError(`${what}: not enough privilege for Hyper-V ("${message}"). ${PRIVILEGE_FIX}`, {
      details: { ...details, fix: PRIVILEGE_FIX },
    });
  }
  if (/CommandNotFoundException|is not recognized as the name of a cmdlet/i.test(all)) {
    return new HostError(`${what}: the Hyper-V PowerShell module is missing ("${message}"). ${MODULE_FIX}`, {
      details: { ...details, fix: MODULE_FIX },
    });
  }
  if (/^InvalidState,|current state/i.test(id + ' ' + message)) {
    return new InvalidStateError(
      `${what}: Hyper-V says the VM is not in a state that allows this ("${message}").`,
      'unknown',
      { details },
    );
  }
  return new HypervisorError(
    `${what}: Hyper-V failed ("${message}"). See details.output for PowerShell's full output.`,
    { details },
  );
}
