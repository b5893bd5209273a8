export { SessionEnforcer } from './enforcer.js';
export type { SessionEnforcerOptions } from './enforcer.js';
export { unixPasswordCheck, findUnixChkpwd, UnlockThrottle } from './credentials.js';
export type {
  CredentialCheck,
  CredentialResult,
  UnixPasswordCheckOptions,
  UnlockThrottleOptions,
} from './credentials.js';
export { UnlockThrottledError, TakeoverRefusedError } from './errors.js';
export { chooseNetwork, readHostLocation, parseResolvConf, parseProcNetRoute, cidrContains } from './location.js';
export type { HostLocation, NetworkChoice } from './location.js';
export { applyHostSpec, hostSpec } from './host-spec.js';
export type { HostSpecOutcome } from './host-spec.js';
export { MemoryVmOwnership, takeOver } from './ownership.js';
export type { VmOwnership, TakeoverRequest, TakeoverOptions } from './ownership.js';
export { currentOrNextWindow } from './maintenance.js';
export type { WindowOccurrence } from './maintenance.js';
export { runMaintenance } from './maintenance-run.js';
export type { MaintenanceGuest, MaintenanceRun } from './maintenance-run.js';
export { usageLimits } from './usage-limits.js';
export type { UsageLimit } from './usage-limits.js';
