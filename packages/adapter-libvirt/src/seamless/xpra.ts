import type { LaunchRequest } from '@tandem/core';
import { DENY_ALL, xpraPolicyArgs } from '@tandem/core/publishing';
import { posixCommandLine } from './quoting.js';

/** What {@link xpraArgs} needs besides the request. */
export interface XpraTarget {
  readonly host: string;
  readonly sshPort: number;
}

/**
 * Xpra's arguments for a launch into a Linux guest over SSH: `start` with the app as the
 * session's child (seamless windows, optional coloured border) or `shadow` for the whole
 * desktop. The guest-side command is quoted for POSIX; a working directory goes through
 * `env -C`, so no guest shell is needed. The request's data-transfer policy becomes Xpra's own
 * switches (clipboard direction, file transfer, printing, sound), each set explicitly: without
 * a policy everything is off.
 */
export function xpraArgs(target: XpraTarget, request: LaunchRequest): string[] {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const user = request.credentials?.username ? `${encodeURIComponent(request.credentials.username)}@` : '';
  const url = `ssh://${user}${host}:${target.sshPort}/`;
  const policy = xpraPolicyArgs(request.transfer ?? DENY_ALL).args;
  if (request.mode === 'full-desktop') return ['shadow', url, ...policy];
  const argv = [request.command, ...(request.args ?? [])];
  const child = request.workingDirectory ? ['env', '-C', request.workingDirectory, ...argv] : argv;
  const args = ['start', url, `--start-child=${posixCommandLine(child)}`, '--exit-with-children=yes', '--attach=yes'];
  if (request.frameColor) args.push(`--border=${request.frameColor},2`);
  return [...args, ...policy];
}

/**
 * Xpra's arguments to attach to an Xpra server that already runs in the guest (started there by
 * the guest agent, listening on `url`), asking it to start the app as a child: the same frame
 * and policy switches as {@link xpraArgs}, and no SSH.
 */
export function xpraAttachArgs(url: string, request: LaunchRequest): string[] {
  const policy = xpraPolicyArgs(request.transfer ?? DENY_ALL).args;
  const argv = [request.command, ...(request.args ?? [])];
  const child = request.workingDirectory ? ['env', '-C', request.workingDirectory, ...argv] : argv;
  const args = ['attach', url];
  if (request.mode !== 'full-desktop') args.push(`--start-child=${posixCommandLine(child)}`);
  if (request.frameColor) args.push(`--border=${request.frameColor},2`);
  return [...args, ...policy];
}
