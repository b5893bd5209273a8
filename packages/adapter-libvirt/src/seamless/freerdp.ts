import type { LaunchRequest } from '@tandem/core';
import { DENY_ALL, freeRdpPolicyArgs } from '@tandem/core/publishing';
import { escapeFreeRdpListValue, windowsCommandLine } from './quoting.js';

/** What {@link freeRdpArgs} needs besides the request. */
export interface FreeRdpTarget {
  /** The guest's address (IPv4, IPv6 or a name). */
  readonly host: string;
  readonly port: number;
  readonly syntax: 'v2' | 'v3';
  readonly certificate: 'tofu' | 'ignore';
}

/**
 * FreeRDP's arguments for a launch: RemoteApp (`/app:`) for `seamless`, the whole desktop for
 * `full-desktop`. Each value is one argv element, so spaces and non-ASCII pass untouched; a
 * password never appears here (it goes to FreeRDP's stdin with `/from-stdin`). The request's
 * data-transfer policy becomes FreeRDP's channel switches, each set explicitly (`-clipboard`
 * unless the clipboard may cross both ways; without a policy everything is off), and its window
 * class `/wm-class:` (FreeRDP draws no coloured frame; a window-manager rule can, by class).
 */
export function freeRdpArgs(target: FreeRdpTarget, request: LaunchRequest): string[] {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const args = [`/v:${host}:${target.port}`];
  const cred = request.credentials;
  if (cred) {
    args.push(`/u:${cred.username}`);
    if (cred.domain) args.push(`/d:${cred.domain}`);
    if (cred.password !== undefined) args.push('/from-stdin');
  }
  if (target.syntax === 'v2') args.push(target.certificate === 'ignore' ? '/cert-ignore' : '/cert-tofu');
  else args.push(target.certificate === 'ignore' ? '/cert:ignore' : '/cert:tofu');
  args.push(...freeRdpPolicyArgs(request.transfer ?? DENY_ALL).args);
  if (request.windowClass) args.push(`/wm-class:${request.windowClass}`);
  if (request.mode === 'full-desktop') {
    args.push('/dynamic-resolution', `/t:${request.appId}`);
    return args;
  }
  const cmd = request.args && request.args.length > 0 ? windowsCommandLine(request.args) : undefined;
  if (target.syntax === 'v2') {
    args.push(`/app:${request.command}`, `/app-name:${request.appId}`);
    if (cmd !== undefined) args.push(`/app-cmd:${cmd}`);
    if (request.workingDirectory) args.push(`/app-workdir:${request.workingDirectory}`);
  } else {
    const e = escapeFreeRdpListValue;
    const parts = [`program:${e(request.command)}`, `name:${e(request.appId)}`];
    if (cmd !== undefined) parts.push(`cmd:${e(cmd)}`);
    if (request.workingDirectory) parts.push(`workdir:${e(request.workingDirectory)}`);
    args.push(`/app:${parts.join(',')}`);
  }
  return args;
}
