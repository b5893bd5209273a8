// @tandem/core/host: running commands on this machine (execa) and remote hosts (ssh2), and
// the quoting that keeps arguments data. execa and ssh2 load on first use.

export type { CommandRequest, CommandResult, CommandRunner, RunningCommand, RemoteShell } from './types.js';
export { LocalRunner } from './local-runner.js';
export { SshRunner } from './ssh-runner.js';
export type { SshHostOptions } from './ssh-runner.js';
export {
  quotePosix,
  posixCommandLine,
  posixReportingCommandLine,
  quoteWindowsArg,
  windowsArguments,
  encodePowerShellCommand,
  powershellLauncherScript,
  windowsCommandLine,
  remoteCommandLine,
  POWERSHELL_OPTIONS,
} from './remote-command.js';
export { assertArgument, assertRequest } from './validate.js';
export {
  parseKnownHosts,
  knownHostName,
  entryMatches,
  keyFingerprint,
  keyTypeOf,
  verifyHostKey,
  hostKeyAlgorithms,
} from './known-hosts.js';
export type { KnownHostEntry, HostKeyVerdict } from './known-hosts.js';
export { sshOptionsFromStrings, numberOption, envOption } from './ssh-target.js';
