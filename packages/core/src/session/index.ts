// @tandem/core/session: sessions, the session manager, the usage policy they enforce, idle
// lock and watchdog.

export { Session, BASELINE_SNAPSHOT } from './session.js';
export type { SessionInit, SessionStopOptions, SessionSuspendOptions } from './session.js';
export { SessionManager } from './manager.js';
export type { OpenSessionOptions, SessionManagerOptions } from './manager.js';
export { SessionPolicy } from './session-policy.js';
export type { SessionPolicyOptions } from './session-policy.js';
export { diffVmSpec, describeVmChanges, applyVmUpdate } from './vm-update.js';
export type { VmUpdate, DefinedVm } from './vm-update.js';
export { SESSION_TRANSITIONS, assertTransition, sessionStateForVm } from './state-machine.js';
export type { SessionState, SessionOperation } from './state-machine.js';
export { IdleLock } from './idle-lock.js';
export type { IdleLockOptions } from './idle-lock.js';
export { Watchdog } from './watchdog.js';
export type { WatchdogDiskKeys, WatchdogOptions } from './watchdog.js';
