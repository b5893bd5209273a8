import { InvalidInputError, assertArgument, quoteWindowsArg } from '@tandem/core';
import { DENY_ALL, rdpFilePolicySettings, type TransferPermissions } from '@tandem/core/publishing';

/**
 * An .rdp file: one `name:type:value` line per setting (`s` string, `i` integer). The format
 * has no escaping, so a value with a line break could add settings of its own: such values are
 * refused with InvalidInputError.
 */
export function rdpFile(settings: ReadonlyArray<readonly [string, 's' | 'i', string | number]>): string {
  return settings
    .map(([name, type, value]) => {
      const text = String(value);
      assertArgument(text, `RDP setting "${name}"`);
      if (/[\r\n]/.test(text)) {
        throw new InvalidInputError(
          `The RDP setting "${name}" contains a line break, which an .rdp file cannot hold. Remove it.`,
          {
            details: { what: name, value: text },
          },
        );
      }
      return `${name}:${type}:${text}`;
    })
    .join('\r\n')
    .concat('\r\n');
}

/** Who logs on, when known. */
export interface RdpUser {
  readonly username?: string;
  readonly domain?: string;
}

/**
 * The device and channel redirections of the data-transfer policy (clipboard, drives, printers,
 * smart cards, USB, audio), each written explicitly; without a policy, all off.
 */
function policySettings(transfer: TransferPermissions | undefined): [string, 's' | 'i', string | number][] {
  return rdpFilePolicySettings(transfer ?? DENY_ALL).settings;
}

function userSettings(user: RdpUser): [string, 's', string][] {
  return [
    ...(user.username ? [['username', 's', user.username] as [string, 's', string]] : []),
    ...(user.domain ? [['domain', 's', user.domain] as [string, 's', string]] : []),
  ];
}

/** A RemoteApp connection to the guest: only the program's windows appear on the host. */
export function remoteAppRdp(options: {
  address: string;
  program: string;
  args?: readonly string[];
  name: string;
  workingDirectory?: string;
  user?: RdpUser;
  transfer?: TransferPermissions;
}): string {
  const cmdline = (options.args ?? []).map(quoteWindowsArg).join(' ');
  return rdpFile([
    ['full address', 's', options.address],
    ['remoteapplicationmode', 'i', 1],
    ['remoteapplicationprogram', 's', options.program],
    ['remoteapplicationname', 's', options.name],
    ['remoteapplicationcmdline', 's', cmdline],
    ['remoteapplicationexpandcmdline', 'i', 0],
    ['remoteapplicationexpandworkingdir', 'i', 0],
    ...(options.workingDirectory ? [['shell working directory', 's', options.workingDirectory] as const] : []),
    ['disableremoteappcapscheck', 'i', 1],
    ['alternate shell', 's', 'rdpinit.exe'],
    ['authentication level', 'i', 2],
    ['prompt for credentials on client', 'i', 1],
    ...policySettings(options.transfer),
    ...userSettings(options.user ?? {}),
  ]);
}

/** A full-desktop RDP connection to the guest itself. */
export function desktopRdp(options: { address: string; user?: RdpUser; transfer?: TransferPermissions }): string {
  return rdpFile([
    ['full address', 's', options.address],
    ['screen mode id', 'i', 2],
    ['authentication level', 'i', 2],
    ['prompt for credentials on client', 'i', 1],
    ...policySettings(options.transfer),
    ...userSettings(options.user ?? {}),
  ]);
}

/**
 * An enhanced session: RDP to the Hyper-V host's VMBus listener (port 2179) for the VM with
 * this id, as Virtual Machine Connection does. Works without guest networking.
 */
export function enhancedSessionRdp(options: {
  host: string;
  vmId: string;
  user?: RdpUser;
  transfer?: TransferPermissions;
}): string {
  return rdpFile([
    ['full address', 's', options.host],
    ['server port', 'i', 2179],
    ['pcb', 's', `${options.vmId};EnhancedMode=1`],
    ['negotiate security layer', 'i', 0],
    ['authentication level', 'i', 0],
    ['screen mode id', 'i', 2],
    ...policySettings(options.transfer),
    ...userSettings(options.user ?? {}),
  ]);
}

/** Reads an .rdp file back into settings (for tests and diagnostics). */
export function parseRdpFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r\n/)) {
    const m = /^([^:]+):([si]):(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[3]!);
  }
  return out;
}
