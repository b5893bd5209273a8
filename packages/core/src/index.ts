// @tandem/core: the public API. Named exports only.

// errors
export {
  TandemError,
  NotFoundError,
  InvalidStateError,
  UnsupportedCapabilityError,
  PolicyDeniedError,
  IntegrityError,
  AuthError,
  HypervisorError,
  InvalidInputError,
  ConflictError,
  TimeoutError,
  CancelledError,
  HostError,
  NoAdapterError,
  LeaseError,
  ClockRollbackError,
  KeyUnavailableError,
} from './errors.js';
export type { ErrorCode, ErrorFault, TandemErrorOptions } from './errors.js';

// clock
export { systemClock, VirtualClock } from './clock.js';
export type { Clock } from './clock.js';

// utilities
export { parseDuration, formatDuration, isDuration } from './util/duration.js';
export { isCidr } from './util/cidr.js';
export { KeyedQueue } from './util/keyed-queue.js';
export { acquirePidLock, processAlive } from './util/pid-lock.js';

// adapter contract
export { VM_STATES } from './adapter/types.js';
export { requireDirectKernelBoot } from './adapter/direct-boot.js';
export type {
  VmState,
  SeamlessTransport,
  GuestChannelKind,
  AdapterCapabilities,
  HostFacts,
  ProbeResult,
  DiskFormat,
  DiskSpec,
  BootSpec,
  NetworkMode,
  VmSpec,
  VmInfo,
  StartOptions,
  StopOptions,
  SnapshotInfo,
  SnapshotOps,
  RevertOptions,
  LaunchRequest,
  LaunchHandle,
  SeamlessOps,
  GuestChannelOps,
  DiskEncryptionOps,
  EncryptedOverlayInfo,
  EncryptedOverlayOps,
  HypervisorEvent,
  HypervisorConnectionEvent,
  HypervisorAdapter,
  AdapterModule,
} from './adapter/types.js';
export {
  AdapterRegistry,
  loadAdapterModule,
  supports,
  requireSnapshots,
  requireCapability,
} from './adapter/registry.js';
export type { Detection, DetectionReport } from './adapter/registry.js';
export { assertCapabilitiesMatchMembers, capabilityMismatches } from './adapter/capability-check.js';
export type { CapabilityMismatch } from './adapter/capability-check.js';
export { buildSnapshotTree, formatSnapshotTree } from './adapter/snapshot-tree.js';
export type { SnapshotNode } from './adapter/snapshot-tree.js';

// events
export { EventBus } from './events/bus.js';
export type { EventContext, EventSink } from './events/bus.js';
export type {
  TandemEventMap,
  TandemEventType,
  TandemEvent,
  AnyTandemEvent,
  SessionTransitionCause,
  VmSpecChange,
} from './events/types.js';
export { JsonLinesSink } from './events/jsonl-sink.js';
export { SqliteEventSink } from './events/sqlite-sink.js';
export type { EventQuery, TandemEventOf } from './events/sqlite-sink.js';

// workspace
export { WorkspaceSchema, MemorySchema, MaintenanceSchema } from './workspace/schema.js';
export type { Workspace, WorkspaceInput, PublishedApp, MemoryRule, MaintenancePolicy } from './workspace/schema.js';
export { loadWorkspaceFile, parseWorkspace, validateWorkspace, formatPath } from './workspace/load.js';
export type { LoadedWorkspace, WorkspaceIssue } from './workspace/load.js';
export { computeMemoryMiB, buildVmSpec, vmNameFor } from './workspace/vm-spec.js';
export type { VmSpecOptions } from './workspace/vm-spec.js';
export { workspaceJsonSchema } from './workspace/json-schema.js';

// session (foundation)
export { Session, BASELINE_SNAPSHOT } from './session/session.js';
export type { SessionInit, SessionStopOptions, SessionSuspendOptions } from './session/session.js';
export { SessionManager } from './session/manager.js';
export type { OpenSessionOptions, SessionManagerOptions } from './session/manager.js';
export { SessionPolicy } from './session/session-policy.js';
export type { SessionPolicyOptions } from './session/session-policy.js';
export { diffVmSpec, describeVmChanges, applyVmUpdate } from './session/vm-update.js';
export type { VmUpdate, DefinedVm } from './session/vm-update.js';
export { SESSION_TRANSITIONS, assertTransition, sessionStateForVm } from './session/state-machine.js';
export type { SessionState, SessionOperation } from './session/state-machine.js';
export { IdleLock } from './session/idle-lock.js';
export type { IdleLockOptions } from './session/idle-lock.js';
export { Watchdog } from './session/watchdog.js';
export type { WatchdogDiskKeys, WatchdogOptions } from './session/watchdog.js';

// host (command runner: issue 4)
export type { CommandRequest, CommandResult, CommandRunner, RunningCommand, RemoteShell } from './host/types.js';
export { LocalRunner } from './host/local-runner.js';
export { SshRunner } from './host/ssh-runner.js';
export type { SshHostOptions } from './host/ssh-runner.js';
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
} from './host/remote-command.js';
export { assertArgument, assertRequest } from './host/validate.js';
export {
  parseKnownHosts,
  knownHostName,
  entryMatches,
  keyFingerprint,
  keyTypeOf,
  verifyHostKey,
  hostKeyAlgorithms,
} from './host/known-hosts.js';
export type { KnownHostEntry, HostKeyVerdict } from './host/known-hosts.js';
export { sshOptionsFromStrings, numberOption, envOption } from './host/ssh-target.js';

// policy (issue 5)
export { POLICY_LAYERS } from './policy/types.js';
export type {
  PolicyLayerName,
  DecisionLayer,
  Side,
  CrossingDirection,
  PolicySubject,
  RuleRef,
  PolicyDecisionBase,
} from './policy/types.js';
export { normalizeUrl, normalizeHost, normalizePercentEncoding, REDIRECTABLE_SCHEMES } from './policy/url-normalize.js';
export type { NormalizedUrl, NormalizedHost, HostKind, RedirectableScheme } from './policy/url-normalize.js';
export type { IpAddress, IpPrefix } from './policy/ip.js';
export { parseUrlPattern } from './policy/url-pattern.js';
export type { UrlPattern, PatternHost, PathCondition } from './policy/url-pattern.js';
export { compileUrlRule, describeUrlRule, urlRuleMatches } from './policy/url-rules.js';
export type { UrlRule, UrlRuleInput, UrlMatch, CompiledUrlRule, RuleHost } from './policy/url-rules.js';
export { compileUrlMatcher, linearUrlMatcher } from './policy/url-matcher.js';
export type { UrlMatcher, UrlMatcherOptions } from './policy/url-matcher.js';
export { importEnterpriseSiteList } from './policy/site-list.js';
export type { SiteListImport, ImportedSite, UnmappedSite } from './policy/site-list.js';
export { transferRuleApplies, describeTransferRule } from './policy/transfer.js';
export type {
  TransferChannel,
  ContentType,
  TransferAction,
  TransferRequest,
  TransferMatch,
  TransferDecision,
} from './policy/transfer.js';
export { evaluateUsage } from './policy/usage.js';
export type { UsageSettings, UsageState, UsageCheck, UsageDecision, SessionEndAction } from './policy/usage.js';
export type { ProvisioningDecision } from './policy/provisioning.js';
export { groupMatches, userMatches, normalizeDn } from './policy/principals.js';
export { DEFAULT_MERGE_RULES } from './policy/layers.js';
export type {
  PolicyLayerInput,
  PolicyDocument,
  PolicyDocumentInput,
  PolicyAssignmentInput,
  MergeRules,
  TransferRule,
  Sourced,
  ApplicableEntry,
} from './policy/layers.js';
export type { UrlDecision, WebRedirection } from './policy/web-redirection.js';
export { PolicyEngine, SubjectPolicy } from './policy/engine.js';
export type { PolicyEngineOptions, PolicyDecision, PolicyQuestion, SiteListReport } from './policy/engine.js';
export { toDecisionEvent, formatDecision, decisionSubject } from './policy/decision.js';
export { loadPolicy, parsePolicyLayer, parsePolicyTestTable, runPolicyTestFile } from './policy/load.js';
export type { LoadedPolicy, LoadPolicyOptions, LoadPolicySources } from './policy/load.js';
export { runPolicyTests, PolicyTestTableSchema } from './policy/test-table.js';
export type { PolicyTestTable, PolicyTestCase, PolicyTestResult } from './policy/test-table.js';
export {
  PolicyDocumentSchema,
  PolicyLayerFileSchema,
  PolicyAssignmentSchema,
  MergeRulesSchema,
  UrlRuleSchema,
  TransferRuleSchema,
} from './workspace/policy-schema.js';

// delivery (issue 6)
export { GEAR_TABLE_NAME, gearTableDigest } from './delivery/gear.js';
export { chunkingParams, checkChunkingParams, chunkBuffer, chunkFile, DEFAULT_CHUNKING } from './delivery/fastcdc.js';
export type { ChunkingParams, ChunkingOptions, ChunkSpan, FileChunk } from './delivery/fastcdc.js';
export {
  parseManifest,
  serializeManifest,
  distinctChunks,
  PACKAGE_SELF,
  ENCRYPTION_SCHEME,
} from './delivery/manifest.js';
export type { ImageManifest, ChunkRef, ChunkLocation, ManifestEncryption } from './delivery/manifest.js';
export { openPackage } from './delivery/package-file.js';
export type { WorkspacePackage, PackageFormat } from './delivery/package-file.js';
export { DEFAULT_VOLUME_SIZE, PACKAGE_MANIFEST_FILE } from './delivery/package-directory.js';
export { packWorkspace } from './delivery/pack.js';
export type { PackOptions, PackProgress, PackResult } from './delivery/pack.js';
export { pushPackage, manifestPathFor } from './delivery/push.js';
export type { PushOptions, PushProgress, PushResult } from './delivery/push.js';
export { pullWorkspace } from './delivery/pull.js';
export type { PullOptions, PullResult, EncryptedImageNeed } from './delivery/pull.js';
export type { EncryptedImageStore, EncryptedImage } from './delivery/at-rest.js';
export { diskKeyFor } from './delivery/pull-encrypted.js';
export { releaseDiskKeys } from './delivery/start-keys.js';
export type { DiskKeyRelease } from './delivery/start-keys.js';
export type { SyncProgress, SyncPhase } from './delivery/progress.js';
export { InstallDir } from './delivery/install-dir.js';
export type { InstalledPointer } from './delivery/install-dir.js';
export { planRanges } from './delivery/fetch-plan.js';
export type { ChunkToFetch, RangeRequest, RangePlanOptions } from './delivery/fetch-plan.js';
export { DirectoryStore } from './delivery/store/directory.js';
export { HttpStore } from './delivery/store/http.js';
export type { HttpStoreOptions } from './delivery/store/http.js';
export type { HttpTransportOptions } from './delivery/store/http-client.js';
export { S3Store } from './delivery/store/s3.js';
export type { S3StoreOptions } from './delivery/store/s3.js';
export { signV4 } from './delivery/store/sigv4.js';
export type { S3Credentials, SigningInput } from './delivery/store/sigv4.js';
export { openStore } from './delivery/store/open.js';
export type { OpenStoreOptions } from './delivery/store/open.js';
export type { RepoStore, StoreStats, ReadOptions } from './delivery/store/types.js';
export {
  generateSigningKey,
  loadKeys,
  saveKey,
  saveKeys,
  signingKeyFrom,
  keyIdOf,
  ROLES,
} from './delivery/trust/keys.js';
export type { KeySet, RoleName, SigningKey, PublicKeyEntry } from './delivery/trust/keys.js';
export type {
  RootMetadata,
  TargetsMetadata,
  SnapshotMetadata,
  TimestampMetadata,
  TargetFile,
  WorkspaceTargetInfo,
  Envelope,
} from './delivery/trust/metadata.js';
export { RepositoryClient } from './delivery/trust/client.js';
export type { RepositoryClientOptions, TrustedMetadata, ResolvedTarget } from './delivery/trust/client.js';
export { DirectoryTrustStore, MemoryTrustStore } from './delivery/trust/trust-store.js';
export type { TrustStore } from './delivery/trust/trust-store.js';
export {
  initRepository,
  readRepository,
  updateTargets,
  setChannel,
  refreshRepository,
  rotateKey,
  DEFAULT_EXPIRY,
} from './delivery/trust/publisher.js';
export type { RepoAdminOptions, ExpiryPolicy } from './delivery/trust/publisher.js';

// guest agent: the contract types (the protocol and the host side are in @tandem/core/guest)
export type {
  GuestCapability,
  GuestMethod,
  GuestInfo,
  GuestApp,
  SetupStepName,
  SetupStepParams,
  SetupStepResult,
  SetupStatus,
  ExecResult,
} from './guest/protocol.js';
export type {
  GuestConnectionOptions,
  GuestConnectionState,
  GuestRequestOptions,
  AgentDescription,
  UrlPolicy,
} from './guest/connection.js';
export type { SetupRecord, SetupCredential, CredentialResolver } from './guest/setup.js';
