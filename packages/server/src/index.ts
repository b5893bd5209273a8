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
