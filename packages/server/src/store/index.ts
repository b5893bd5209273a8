// @tandem/server/store: the management server's store, on SQLite or PostgreSQL. Named exports only.
export { StoreUnavailableError } from './errors.js';
export { SqliteStore } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export { PostgresStore } from './postgres-store.js';
export type { PostgresStoreOptions } from './postgres-store.js';
export type { PostgresIngestMode } from './postgres-ingest.js';
export { csvCell, toCsv } from './csv.js';
export type { CsvCell, CsvOptions } from './csv.js';
export { endpointReportCsv, eventsCsv, failuresCsv, versionDistributionCsv } from './reports.js';
export type { FailureCountRow, VersionDistributionRow } from './reports.js';
export { FAILURE_EVENT_TYPES, reportedWorkspaces } from './common.js';
export type { ReportedWorkspace } from './common.js';
export { decodeCursor, encodeCursor } from './cursor.js';
export type { EventCursor } from './cursor.js';
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
} from './types.js';
export type {
  ConsoleSessionRecord,
  EndpointOverview,
  EndpointQuery,
  EndpointSearchRow,
  EndpointState,
  ReceivedCursor,
} from './types.js';
export { endpointQueryParts, MAX_ENDPOINT_PAGE, DEFAULT_ENDPOINT_PAGE } from './console-queries.js';
