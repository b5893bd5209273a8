// @tandem/core/policy: the policy engine alone (URL rules, data transfer, usage, provisioning,
// layering, explained decisions). Pure: it loads no hypervisor, SSH or process tooling.

export { POLICY_LAYERS } from './types.js';
export type {
  PolicyLayerName,
  DecisionLayer,
  Side,
  CrossingDirection,
  PolicySubject,
  RuleRef,
  PolicyDecisionBase,
} from './types.js';
export { normalizeUrl, normalizeHost, normalizePercentEncoding, REDIRECTABLE_SCHEMES } from './url-normalize.js';
export type { NormalizedUrl, NormalizedHost, HostKind, RedirectableScheme } from './url-normalize.js';
export type { IpAddress, IpPrefix } from './ip.js';
export { parseUrlPattern } from './url-pattern.js';
export type { UrlPattern, PatternHost, PathCondition } from './url-pattern.js';
export { compileUrlRule, describeUrlRule, urlRuleMatches } from './url-rules.js';
export type { UrlRule, UrlRuleInput, UrlMatch, CompiledUrlRule, RuleHost } from './url-rules.js';
export { compileUrlMatcher, linearUrlMatcher } from './url-matcher.js';
export type { UrlMatcher, UrlMatcherOptions } from './url-matcher.js';
export { importEnterpriseSiteList } from './site-list.js';
export type { SiteListImport, ImportedSite, UnmappedSite } from './site-list.js';
export { transferRuleApplies, describeTransferRule } from './transfer.js';
export type {
  TransferChannel,
  ContentType,
  TransferAction,
  TransferRequest,
  TransferMatch,
  TransferDecision,
} from './transfer.js';
export { evaluateUsage } from './usage.js';
export type { UsageSettings, UsageState, UsageCheck, UsageDecision, SessionEndAction } from './usage.js';
export type { ProvisioningDecision } from './provisioning.js';
export { groupMatches, userMatches, normalizeDn } from './principals.js';
export { DEFAULT_MERGE_RULES } from './layers.js';
export type {
  PolicyLayerInput,
  PolicyDocument,
  PolicyDocumentInput,
  PolicyAssignmentInput,
  MergeRules,
  TransferRule,
  Sourced,
  ApplicableEntry,
} from './layers.js';
export type { UrlDecision, WebRedirection } from './web-redirection.js';
export { PolicyEngine, SubjectPolicy } from './engine.js';
export type { PolicyEngineOptions, PolicyDecision, PolicyQuestion, SiteListReport } from './engine.js';
export { toDecisionEvent, formatDecision, decisionSubject } from './decision.js';
export { loadPolicy, parsePolicyLayer, parsePolicyTestTable, runPolicyTestFile } from './load.js';
export type { LoadedPolicy, LoadPolicyOptions, LoadPolicySources } from './load.js';
export { runPolicyTests, PolicyTestTableSchema } from './test-table.js';
export type { PolicyTestTable, PolicyTestCase, PolicyTestResult } from './test-table.js';
export {
  PolicyDocumentSchema,
  PolicyLayerFileSchema,
  PolicyAssignmentSchema,
  MergeRulesSchema,
  UrlRuleSchema,
  TransferRuleSchema,
} from '../workspace/policy-schema.js';
