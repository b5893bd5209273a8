// @tandem/adapter-hyperv: the public API. Named exports only.
import { InvalidInputError, envOption, numberOption, sshOptionsFromStrings, type AdapterModule } from '@tandem/core';
import { HyperVAdapter, type HyperVOptions } from './adapter.js';

/**
 * Creates the Hyper-V adapter.
 *
 * @example
 * ```ts
 * import { hyperv } from '@tandem/adapter-hyperv';
 *
 * const local = hyperv({ powershell: 'pwsh' });
 * const remote = hyperv({ ssh: { host: 'hv01', username: 'ops', agent: true, shell: 'powershell' } });
 * const probe = await local.probe();
 * ```
 */
export function hyperv(options: HyperVOptions = {}): HyperVAdapter {
  return new HyperVAdapter(options);
}

/**
 * Options given as flat strings, as `tandem --adapter-option key=value` passes them:
 * `powershell`, `timeoutMs`, `defaultSwitch`, `hostAddress`, `rdpClient=mstsc|freerdp`,
 * `rdpProgram`, `env.NAME`, and `ssh=user@host[:port]` with `sshKey`, `sshKnownHosts`,
 * `sshFingerprint`, `sshShell` (Windows OpenSSH: `powershell` or `cmd`).
 */
export function hypervOptionsFromStrings(o: Readonly<Record<string, unknown>>): HyperVOptions {
  const ssh = sshOptionsFromStrings(o);
  const env = envOption(o);
  const timeoutMs = numberOption(o, 'timeoutMs');
  const client = o['rdpClient'];
  if (client !== undefined && typeof client === 'string' && client !== 'mstsc' && client !== 'freerdp') {
    throw new InvalidInputError(`rdpClient="${client}" is not mstsc or freerdp.`, { details: { what: 'rdpClient' } });
  }
  const program = typeof o['rdpProgram'] === 'string' ? o['rdpProgram'] : undefined;
  return {
    ...(o as HyperVOptions),
    ...(ssh ? { ssh } : {}),
    ...(env ? { env } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(client === 'mstsc' || client === 'freerdp'
      ? { rdpClient: { kind: client, ...(program ? { program } : {}) } }
      : {}),
  };
}

/** Lets `loadAdapterModule('@tandem/adapter-hyperv')` and `tandem --adapter hyperv` find the adapter. */
export const tandemAdapter: AdapterModule<HyperVOptions | Record<string, string>> = {
  name: 'hyperv',
  create: (options) => new HyperVAdapter(hypervOptionsFromStrings((options ?? {}) as Record<string, unknown>)),
};

export { HyperVAdapter, HYPERV_CAPABILITIES } from './adapter.js';
export { hypervOwnership, ownerFromNotes, OWNER_NOTES_PREFIX } from './owner.js';
export type { HyperVOwnership, HyperVOwnershipOptions } from './owner.js';
export type { HyperVOptions } from './adapter.js';
export type { RdpClient } from './seamless.js';
export { HYPERV_SCRIPTS, scriptFor, encodeScriptInput } from './scripts.js';
export type { HyperVOp } from './scripts.js';
export {
  HYPERV_STATES,
  mapHyperVState,
  hyperVStateNumber,
  parsePsDate,
  parseJson,
  asList,
  parseTandemError,
  parsePsErrorText,
} from './parse.js';
export type { PsErrorRecord } from './parse.js';
export { mapPsError, PRIVILEGE_FIX, MODULE_FIX } from './pwsh.js';
export { rdpFile, remoteAppRdp, desktopRdp, enhancedSessionRdp, parseRdpFile } from './rdp.js';
