import {
  AuthError,
  ConflictError,
  HostError,
  HypervisorError,
  InvalidStateError,
  NotFoundError,
  type CommandResult,
  type TandemError,
} from '@tandem/core';

/** The `VBoxManage: error:` lines of a run, split into message, result code and context. */
export interface VBoxErrorReport {
  /** The error lines without their prefix, in order. */
  readonly lines: readonly string[];
  /** The first line: what VirtualBox says went wrong. */
  readonly message: string;
  /** `VBOX_E_OBJECT_NOT_FOUND`, `E_ACCESSDENIED`, ... when VirtualBox printed one. */
  readonly code?: string;
}

const PREFIX = /^VBoxManage(?:\.exe)?: error: ?(.*)$/;

/** Collects the `VBoxManage: error:` lines from a run's output (both streams). */
export function parseErrorLines(output: string): VBoxErrorReport | null {
  const lines = output
    .split(/\r?\n/)
    .map((l) => PREFIX.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
  if (lines.length === 0) return null;
  const code = /(?:Details: code|Code) ([A-Z][A-Z0-9_]+) \(0x[0-9a-fA-F]+\)/.exec(lines.join('\n'))?.[1];
  return { lines, message: lines[0] ?? '', ...(code ? { code } : {}) };
}

/**
 * The typed error for a failed VBoxManage run: not found, invalid state, session locked, access
 * denied, conflict, or HypervisorError for anything else. The raw output rides along in
 * `details.output`; the message says what to do.
 */
export function mapVBoxError(result: CommandResult, what: string, report: VBoxErrorReport | null): TandemError {
  const output = `${result.stdout}${result.stderr}`;
  const details = {
    command: result.command,
    args: result.args,
    exitCode: result.exitCode,
    output,
    vboxCode: report?.code,
  };
  const message = report?.message ?? `VBoxManage exited with code ${result.exitCode}`;
  const all = report?.lines.join('\n') ?? output;
  const code = report?.code ?? '';

  if (
    code === 'VBOX_E_OBJECT_NOT_FOUND' ||
    /Could not find a registered machine|Could not find a snapshot/i.test(all)
  ) {
    return new NotFoundError(`${what}: VirtualBox says "${message}". Check the name, or list what exists.`, {
      details,
    });
  }
  if (/already locked for a session|is already locked|being unlocked/i.test(all)) {
    return new ConflictError(
      `${what}: the VM is locked by another VirtualBox session ("${message}"). Close the other VirtualBox window or command using it and retry.`,
      { details },
    );
  }
  if (/VERR_ACCESS_DENIED|E_ACCESSDENIED|Permission denied|access denied/i.test(all)) {
    return new AuthError(
      `${what}: access denied ("${message}"). Run as the user that owns the VMs and their files, or fix the file permissions.`,
      { details },
    );
  }
  if (code === 'VBOX_E_PASSWORD_INCORRECT') {
    return new AuthError(
      `${what}: VirtualBox rejected the disk encryption key ("${message}"). Check the key for this disk.`,
      { details },
    );
  }
  if (
    code === 'VBOX_E_INVALID_VM_STATE' ||
    code === 'VBOX_E_INVALID_OBJECT_STATE' ||
    /not currently running|invalid machine state|machine state:/i.test(all)
  ) {
    const state = /machine state: (\w+)/i.exec(all)?.[1]?.toLowerCase() ?? 'unknown';
    return new InvalidStateError(`${what}: the VM is not in a state that allows it ("${message}").`, state, {
      details,
    });
  }
  const leftover = /Machine settings file '(.*)' already exists/.exec(all);
  if (leftover) {
    return new ConflictError(
      `${what}: VirtualBox found the settings file of an earlier VM at ${leftover[1]} (a VM unregistered without --delete leaves its folder behind). Register it again (VBoxManage registervm) and destroy it with Tandem, or move that folder away.`,
      { details: { ...details, settingsFile: leftover[1] } },
    );
  }
  if (/already exists/i.test(all)) {
    return new ConflictError(
      `${what}: something with that name already exists ("${message}"). Pick another name or remove the old one.`,
      {
        details,
      },
    );
  }
  if (/Failed to create the VirtualBox object|COM server is not running/i.test(all)) {
    return new HostError(
      `${what}: VirtualBox's service (VBoxSVC) is not reachable ("${message}"). Check that VirtualBox is installed for this user and that VBOX_USER_HOME is writable.`,
      { details, retryable: true },
    );
  }
  return new HypervisorError(
    `${what}: VirtualBox failed ("${message}"). See details.output for VBoxManage's full output.`,
    { details },
  );
}
