import { TandemError } from '@tandem/core';

/**
 * The `tandem` command's exit codes. Documented in docs/cli.md; scripts may rely on them.
 */
export const ExitCode = {
  ok: 0,
  /** An unexpected failure (a bug: please report it). */
  internal: 1,
  /** Bad command line usage. */
  usage: 2,
  /** Bad input: a workspace file, a policy test table, an argument value. */
  invalidInput: 3,
  /** The VM, session, snapshot or file does not exist. */
  notFound: 4,
  /** Not legal in the current state, or another session holds the VM. */
  invalidState: 5,
  /** The adapter lacks the capability, or no adapter is usable. */
  unsupported: 6,
  /** The hypervisor or the host failed. */
  hypervisor: 7,
  /** Policy denied the operation. */
  policyDenied: 8,
  /** Integrity or authentication failure (tampered data, bad signature, bad credentials). */
  integrity: 9,
  /** A policy test table or a check had failing expectations. */
  checkFailed: 10,
  /** A timeout or a cancellation. */
  timeout: 11,
} as const;

/** Maps an error to the exit code scripts see. */
export function exitCodeFor(err: unknown): number {
  if (!TandemError.is(err)) return ExitCode.internal;
  switch (err.code) {
    case 'TANDEM_INVALID_INPUT':
      return ExitCode.invalidInput;
    case 'TANDEM_NOT_FOUND':
    case 'TANDEM_KEY_UNAVAILABLE':
      return ExitCode.notFound;
    case 'TANDEM_INVALID_STATE':
    case 'TANDEM_CONFLICT':
      return ExitCode.invalidState;
    case 'TANDEM_UNSUPPORTED':
    case 'TANDEM_NO_ADAPTER':
      return ExitCode.unsupported;
    case 'TANDEM_HYPERVISOR':
    case 'TANDEM_HOST':
      return ExitCode.hypervisor;
    case 'TANDEM_POLICY_DENIED':
    case 'TANDEM_LEASE':
      return ExitCode.policyDenied;
    case 'TANDEM_INTEGRITY':
    case 'TANDEM_AUTH':
    case 'TANDEM_CLOCK_ROLLBACK':
      return ExitCode.integrity;
    case 'TANDEM_CHECK_FAILED':
      return ExitCode.checkFailed;
    case 'TANDEM_TIMEOUT':
    case 'TANDEM_CANCELLED':
      return ExitCode.timeout;
    default:
      return ExitCode.internal;
  }
}
