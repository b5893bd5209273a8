import {
  AuthError,
  ConflictError,
  HostError,
  HypervisorError,
  InvalidStateError,
  NotFoundError,
  type TandemError,
} from '@tandem/core';

/** What a libvirt error message means for Tandem. */
export type LibvirtErrorKind =
  'no-domain' | 'no-snapshot' | 'invalid-state' | 'conflict' | 'connection' | 'auth' | 'missing-program' | 'rejected';

/**
 * Debian packages that bring a program libvirt looks for on its host, for the hint in a
 * `missing-program` error (dnsmasq runs DHCP and DNS for libvirt's NAT network `default`).
 */
const PROGRAM_PACKAGES: Readonly<Record<string, string>> = {
  dnsmasq: 'dnsmasq-base',
  'qemu-img': 'qemu-utils',
  swtpm: 'swtpm',
};

/**
 * Classifies one of libvirt's messages (the English ones; the adapter runs libvirt with LC_ALL=C).
 * The prefixes are libvirt's error codes rendered by virErrorMsg, stable across releases.
 */
export function classifyLibvirtMessage(message: string): LibvirtErrorKind {
  const m = message;
  if (/Domain snapshot not found|no domain snapshot with matching name|no snapshot with matching name/i.test(m))
    return 'no-snapshot';
  if (/Domain not found|no domain with matching (name|uuid|id)|failed to get domain/i.test(m)) return 'no-domain';
  if (/authentication (failed|unavailable)|access denied|Permission denied|not authorized/i.test(m)) return 'auth';
  if (
    /Failed to connect socket|Cannot recv data|Cannot write data|client socket is closed|End of file while reading|Broken pipe|Connection reset|Connection refused|no connection driver available|failed to connect to the hypervisor|Unable to connect|not connected|invalid connection pointer|Host key verification failed|Could not resolve hostname|No route to host|Connection timed out/i.test(
      m,
    )
  )
    return 'connection';
  if (/already exists/i.test(m)) return 'conflict';
  // libvirtd lacks a helper program on its host: a host set-up problem, not the VM's fault.
  if (/Unable to find '[^']+' binary in \$PATH|Cannot find '[^']+' in path/i.test(m)) return 'missing-program';
  // An inactive network is a host problem (start it), not the VM's state.
  if (/network '.*' is not active/i.test(m)) return 'rejected';
  if (/Requested operation is not valid|domain is not running|domain is already running|not paused/i.test(m))
    return 'invalid-state';
  return 'rejected';
}

/** Context that every mapped error carries in `details`. */
export interface ErrorContext {
  readonly operation: string;
  readonly uri: string;
  readonly vm?: string;
  readonly snapshot?: string;
}

/**
 * Turns a libvirt failure into a TandemError carrying libvirt's own message in
 * `details.libvirtMessage` (and `details.output`). `currentState` names the VM's state for
 * InvalidStateError; the caller looks it up only when the message says the state was wrong.
 */
export function libvirtError(
  message: string,
  context: ErrorContext,
  options: { cause?: unknown; currentState?: string; kind?: LibvirtErrorKind } = {},
): TandemError {
  const kind = options.kind ?? classifyLibvirtMessage(message);
  const details = { ...context, libvirtMessage: message, output: message };
  const base = { cause: options.cause, details };
  const what = context.vm ? `${context.operation} of VM "${context.vm}"` : context.operation;
  switch (kind) {
    case 'no-domain':
      return new NotFoundError(
        `No VM named "${context.vm ?? '?'}" on ${context.uri}. Check the name with list().`,
        base,
      );
    case 'no-snapshot':
      return new NotFoundError(
        `VM "${context.vm ?? '?'}" has no snapshot "${context.snapshot ?? '?'}". List its snapshots to see what exists.`,
        base,
      );
    case 'conflict':
      return new ConflictError(
        `${capitalize(what)} failed: ${message}. Choose another name or remove the existing one.`,
        base,
      );
    case 'connection':
      return new HostError(
        `libvirt at ${context.uri} is unreachable (${message}). Start libvirtd (systemctl start libvirtd, or /usr/sbin/libvirtd -d) or check the URI, then retry.`,
        { ...base, retryable: true },
      );
    case 'auth':
      return new AuthError(
        `libvirt at ${context.uri} refused access (${message}). Run as a user allowed to manage VMs (root or the libvirt group), or fix the URI's credentials.`,
        base,
      );
    case 'invalid-state':
      return new InvalidStateError(
        `${capitalize(what)} is not possible in state ${options.currentState ?? 'unknown'}: ${message}.`,
        options.currentState ?? 'unknown',
        base,
      );
    case 'missing-program': {
      const program = /'([^']+)'/.exec(message)?.[1] ?? '?';
      const pkg = PROGRAM_PACKAGES[program];
      const install = pkg
        ? `install Debian's ${pkg} package (or your distribution's ${program})`
        : `install ${program}`;
      return new HostError(
        `The ${what} failed: libvirt at ${context.uri} cannot find the program "${program}" on its host. As root on that host, ${install}, then retry.`,
        { ...base, details: { ...details, program } },
      );
    }
    case 'rejected':
      return new HypervisorError(`libvirt refused the ${what}: ${message}. See details.libvirtMessage.`, base);
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
