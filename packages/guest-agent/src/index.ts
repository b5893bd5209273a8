// @tandem/guest-agent: the agent that runs inside the guest. The bin is dist/main.js.

export { runAgent } from './agent.js';
export type { AgentOptions } from './agent.js';
export { findChannel, openChannel, parseTcpTarget } from './channel.js';
export type { Channel, ChannelTarget, FindChannelOptions } from './channel.js';
export { parseDesktopEntry, splitExec } from './desktop-entry.js';
export type { DesktopEntry } from './desktop-entry.js';
export { discoverLinuxApps, xdgDataDirs, isPng } from './apps-linux.js';
export { AllowListSchema, loadAllowList, runAllowed } from './allow-list.js';
export type { AllowList } from './allow-list.js';
export { forwardUrl, serveUrlSocket, defaultUrlSocket, isForwardableUrl } from './forward-url.js';
export { guestInfo, parseOsRelease } from './info.js';
export {
  parseWindowsApps,
  powerShellError,
  splitWindowsArgs,
  encodeCommand,
  windowsSetup,
  SCRIPTS,
} from './windows.js';
export { AGENT_VERSION, AGENT_SOFTWARE } from './version.js';
