// @tandem/server: the management server. Named exports only.
export type {
  AssignmentRecord,
  AuditRecord,
  BuiltinGroupRecord,
  BuiltinUserRecord,
  DeviceRecord,
  EndpointReportRow,
  EventFilter,
  EventPage,
  PolicyLayerRecord,
  ServerStore,
  StoreChange,
  StoredEvent,
  ThrottleRecord,
  WorkspaceKeyRecord,
} from './store/types.js';
// The store's implementations and reports (engineer E; the full list is in ./store/index.ts).
export {
  endpointReportCsv,
  eventsCsv,
  failuresCsv,
  PostgresStore,
  SqliteStore,
  StoreUnavailableError,
  toCsv,
  versionDistributionCsv,
} from './store/index.js';
export type { PostgresStoreOptions, SqliteStoreOptions } from './store/index.js';

// The API (issue 15)
export { ManagementService } from './service.js';
export type { ManagementServiceOptions } from './service.js';
export { createManagementServer, parseBody } from './http.js';
export type { ManagementServerOptions, ManagementHttpServer } from './http.js';
export { AdminService } from './admin.js';
export type { AdminServiceOptions, AssignInput, BuiltinUserAdmin } from './admin.js';
export { AdminApi } from './admin-http.js';
export { ApiError, errorReply } from './errors.js';
export { ServerSecrets, AUTHORITY_KEY_FILE, MASTER_KEY_FILE } from './secrets.js';
export { makeSelfSignedCertificate, readTlsFiles, TLS_CERT_FILE, TLS_KEY_FILE } from './tls.js';
export { authenticateDevice, checkSignature, readSignature } from './request-auth.js';
export { GroupCommit, type GroupCommitOptions } from './group-commit.js';
export type { RequestSignature } from './request-auth.js';
export {
  compileAssignment,
  policyLayerInput,
  provisionFor,
  assignmentCovers,
  DEFAULT_LEASE,
  ONLINE_ONLY_LEASE,
} from './provisioning.js';
export type { CompiledAssignment } from './provisioning.js';
export type {
  ServerDirectory,
  ServerSignInThrottle,
  AccountStateView,
  DirectoryUserView,
  DirectoryGroupView,
} from './directory-port.js';
export {
  initServerDirectory,
  openDeployment,
  readAdminToken,
  ServerConfigSchema,
  SERVER_CONFIG_FILE,
  ADMIN_TOKEN_FILE,
} from './deployment.js';
export type { Deployment, InitServerOptions, ServerConfig } from './deployment.js';

// The management console, server side (issue 16)
export {
  ConsoleSessions,
  CONSOLE_COOKIE,
  CSRF_HEADER,
  DEFAULT_ADMIN_GROUP,
  CONSOLE_IDLE_MS,
  CONSOLE_ABSOLUTE_MS,
  readCookie,
} from './console-session.js';
export type { ConsoleSessionsOptions, ConsoleSessionReply, ConsoleSession } from './console-session.js';
export { createConsoleRoutes } from './console-http.js';
export type { ConsoleOptions, ConsoleRoutesOptions } from './console-http.js';
export { CONSOLE_CSP, CONSOLE_SECURITY_HEADERS, serveConsoleFile } from './console-static.js';
export { AdminStream, STREAM_EVENT_POLL_MS, STREAM_EVENT_AGE_MS, STREAM_PING_MS } from './console-stream.js';
export { ONLINE_WINDOW_MS } from './admin.js';
export type { AdminApiOptions } from './admin-http.js';
export { DEFAULT_CONSOLE_DIR } from './deployment.js';
export type {
  ConsoleSessionRecord,
  EndpointOverview,
  EndpointQuery,
  EndpointSearchRow,
  EndpointState,
  ReceivedCursor,
} from './store/types.js';
