// @tandem/agent: the host agent. Named exports only.
export { writeFileAtomic, fsyncDirectory } from './atomic-file.js';
export { StateDir, type SessionRecord } from './state-dir.js';
export { recordAfter, openedRecord, policyFor } from './session-record.js';
export type { OpenedSession } from './session-record.js';
export {
  AgentProtocolError,
  AgentVersionError,
  PeerRefusedError,
  AgentUnavailableError,
  UplinkError,
} from './errors.js';
export {
  AGENT_API_VERSION,
  AGENT_METHODS,
  MAX_MESSAGE_BYTES,
  LineDecoder,
  decodeRequest,
  encodeMessage,
  compatibleVersion,
  toWireError,
  type AgentMethod,
  type AgentParams,
  type AgentRequest,
  type AgentMessage,
  type WireError,
} from './protocol.js';
export { peerCredentials, type PeerCredentials } from './peer-cred.js';
export { agentSocketPath } from './paths.js';
export {
  HostAgent,
  type HostAgentOptions,
  type AdapterOpener,
  type ActivityReport,
  type SessionEnforcement,
  type EnforcementFactory,
  type SessionSummary,
  type AgentStatus,
} from './host-agent.js';
export { AgentServer, type AgentServerOptions } from './server.js';
export { GuestSignOn, type GuestSignOnOptions, type GuestCredentials } from './guest-sign-in.js';
export { AgentClient, AgentReplyError, type AgentHello, type AgentResults } from './client.js';
export { DiskEventQueue, type DiskEventQueueOptions, type QueueBatch, type QueuePosition } from './event-queue.js';
export { EventShipper, httpUplink, type EventUplink, type EventShipperOptions, type ShipperStatus } from './uplink.js';
export { managementUplink } from './uplink-management.js';
export { runAgent, type RunningAgent } from './run.js';
export { sessionEnforcement, desktopEnforcement, type SessionEnforcementOptions } from './enforcement.js';
// Engineer B's desktop integration and enforcement rules (packages/agent/src/desktop, enforce).
export {
  DesktopMonitor,
  systemdInhibitor,
  type ActivitySource,
  type DesktopBusStatus,
  type DesktopEvents,
  type DesktopEventSource,
  type DesktopMonitorOptions,
  type LoginSessionInfo,
  type NotificationUrgency,
  type SleepInhibitor,
  type SystemdInhibitorOptions,
} from './desktop/index.js';
export {
  SessionEnforcer,
  unixPasswordCheck,
  findUnixChkpwd,
  UnlockThrottle,
  UnlockThrottledError,
  TakeoverRefusedError,
  chooseNetwork,
  readHostLocation,
  parseResolvConf,
  parseProcNetRoute,
  cidrContains,
  applyHostSpec,
  hostSpec,
  MemoryVmOwnership,
  currentOrNextWindow,
  runMaintenance,
  usageLimits,
  type SessionEnforcerOptions,
  type TakeoverRequest,
  type CredentialCheck,
  type CredentialResult,
  type UnixPasswordCheckOptions,
  type UnlockThrottleOptions,
  type HostLocation,
  type NetworkChoice,
  type HostSpecOutcome,
  type VmOwnership,
  type WindowOccurrence,
  type MaintenanceGuest,
  type MaintenanceRun,
  type UsageLimit,
} from './enforce/index.js';
