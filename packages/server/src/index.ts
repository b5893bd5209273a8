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
  SqliteStore,
  StoreUnavailableError,
  toCsv,
  versionDistributionCsv,
} from './store/index.js';
export type { SqliteStoreOptions } from './store/index.js';
