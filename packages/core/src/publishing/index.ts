// @tandem/core/publishing: published apps on the host desktop (freedesktop launchers, Windows
// shortcuts), the data-transfer policy translated into each transport's settings, launching
// through an adapter's seamless transport, and the host's URL handler.

export { safeSegment, displayText } from './names.js';
export {
  escapeDesktopValue,
  unescapeDesktopValue,
  quoteExecArg,
  execLine,
  parseExecLine,
  formatDesktopFile,
  parseDesktopFile,
} from './desktop-entry.js';
export type { DesktopGroup } from './desktop-entry.js';
export { placeIcon, pngToIco } from './icons.js';
export type { LauncherIcon, IconPlacement } from './icons.js';
export { installFiles, removeInstalled, readManifest, writeFileAtomic, isInside } from './installed-files.js';
export type { InstalledFile, LauncherManifest, PlannedFile, InstallReport } from './installed-files.js';
export { FreedesktopLaunchers, launcherWmClass, launcherMimeType } from './freedesktop.js';
export type { LauncherApp, LauncherSet, FreedesktopOptions } from './freedesktop.js';
export { writeShellLink, LINK_FLAGS } from './lnk.js';
export type { ShellLink } from './lnk.js';
export { WindowsLaunchers, windowsFileName } from './windows.js';
export type { WindowsLauncherOptions } from './windows.js';
export {
  ENFORCED_CHANNELS,
  DENY_ALL,
  permissionsFrom,
  launchTransferRequests,
  resolveTransferPolicy,
  clipboardOpen,
  xpraPolicyArgs,
  freeRdpPolicyArgs,
  rdpFilePolicySettings,
  vboxPolicyCommands,
  windowsGuestPolicy,
} from './enforcement.js';
export type {
  EnforcedChannel,
  Permission,
  TransferPermissions,
  AskAnswer,
  ResolvedTransferPolicy,
  EnforcementNote,
  TransportPolicy,
  GuestRegistryValue,
} from './enforcement.js';
export { TransferAsker } from './ask.js';
export type { TransferQuestion, TransferAskerOptions } from './ask.js';
export { launchApp } from './launch.js';
export type { AppLaunchOptions, AppLaunch, SharedFolderView } from './launch.js';
export {
  openHostUrl,
  guestUrlOpener,
  findHostBrowser,
  openInHostBrowser,
  assertNotLooping,
  OPENING_ENV,
} from './url-open.js';
export type { UrlOpenTargets, UrlOpenResult, HostBrowser } from './url-open.js';
export { discoveredApps } from './discovered.js';
export { applyWindowsGuestPolicy } from './guest-policy.js';
export {
  GnomeAppFolders,
  gnomeFoldersFor,
  gsettingsRunner,
  gvariantString,
  gvariantStrings,
  parseGvariantStrings,
} from './gnome-app-folders.js';
export type { GnomeAppFolder, GnomeAppFoldersReport, GSettingsRunner } from './gnome-app-folders.js';
