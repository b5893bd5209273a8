// @tandem/adapter-hyperv: the public API. Named exports only.
import type { AdapterModule } from '@tandem/core';
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

/** Lets `loadAdapterModule('@tandem/adapter-hyperv')` find the adapter by name. */
export const tandemAdapter: AdapterModule<HyperVOptions> = {
  name: 'hyperv',
  create: (options?: HyperVOptions) => new HyperVAdapter(options ?? {}),
};

export { HyperVAdapter, HYPERV_CAPABILITIES } from './adapter.js';
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
