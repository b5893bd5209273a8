// @tandem/core/workspace: the workspace schema, loading and validation, VM specs, JSON Schema.

export { WorkspaceSchema, MemorySchema, MaintenanceSchema } from './schema.js';
export type { Workspace, WorkspaceInput, PublishedApp, MemoryRule, MaintenancePolicy } from './schema.js';
export { loadWorkspaceFile, parseWorkspace, validateWorkspace, formatPath } from './load.js';
export type { LoadedWorkspace, WorkspaceIssue } from './load.js';
export { computeMemoryMiB, buildVmSpec, vmNameFor } from './vm-spec.js';
export type { VmSpecOptions } from './vm-spec.js';
export { workspaceJsonSchema } from './json-schema.js';
export {
  PolicyDocumentSchema,
  PolicyLayerFileSchema,
  PolicyAssignmentSchema,
  MergeRulesSchema,
  UrlRuleSchema,
  TransferRuleSchema,
} from './policy-schema.js';
