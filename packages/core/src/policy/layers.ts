import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { formatPath } from '../workspace/load.js';
import {
  type MergeRulesSchema,
  PolicyAssignmentSchema,
  PolicyDocumentSchema,
  type TransferRuleSchema,
  type UsageLayerSchema,
  type WebRedirectionLayerSchema,
  type ProvisioningLayerSchema,
} from '../workspace/policy-schema.js';
import type { Workspace } from '../workspace/schema.js';
import { POLICY_LAYERS, type DecisionLayer, type PolicyLayerName, type PolicySubject, type RuleRef } from './types.js';
import { findPrincipal } from './principals.js';

/** The policy a layer, or one assignment in it, sets (validated). */
export type PolicyDocument = z.output<typeof PolicyDocumentSchema>;
/** A policy document as written in code or a file. */
export type PolicyDocumentInput = z.input<typeof PolicyDocumentSchema>;
/** A policy for some users and groups, as written. */
export type PolicyAssignmentInput = z.input<typeof PolicyAssignmentSchema>;
/** The per-policy merge rules for a user in several groups. */
export type MergeRules = Required<z.output<typeof MergeRulesSchema>>;
/** One data-transfer rule. */
export type TransferRule = z.output<typeof TransferRuleSchema>;

/** The merge rules when no layer chooses: MED-V v1's least restrictive rights, most specific URL rule. */
export const DEFAULT_MERGE_RULES: MergeRules = {
  webRedirection: 'most-specific',
  dataTransfer: 'least-restrictive',
  usage: 'least-restrictive',
};

/** A policy layer above the workspace package's own default. */
export interface PolicyLayerInput {
  readonly layer: Exclude<PolicyLayerName, 'package-default'>;
  /** Where it came from, shown in decisions (a file path, `management server`). */
  readonly source?: string;
  /** The policy for everyone. */
  readonly policy?: PolicyDocumentInput;
  /** Policies for some users and groups. */
  readonly assignments?: readonly PolicyAssignmentInput[];
}

/** The parts of a document the engine reads. */
export interface EntryDoc {
  readonly webRedirection?: z.output<typeof WebRedirectionLayerSchema>;
  readonly dataTransfer?: readonly TransferRule[];
  readonly usage?: z.output<typeof UsageLayerSchema>;
  readonly provisioning?: z.output<typeof ProvisioningLayerSchema>;
  readonly merge?: z.output<typeof MergeRulesSchema>;
}

/** One policy document in one layer: for everyone, or for some users and groups. */
export interface PolicyEntry {
  readonly layer: PolicyLayerName;
  /** Position of the layer in {@link POLICY_LAYERS}: lower wins. */
  readonly rank: number;
  /** Position among the entries of its layer, in the order given. */
  readonly order: number;
  readonly source: string;
  /** Path of the document inside its source: `spec`, `policy`, `assignments[1].policy`. */
  readonly basePath: string;
  /** Undefined for everyone, else the users and groups it is for. */
  readonly audience?: { readonly users: readonly string[]; readonly groups: readonly string[] };
  readonly doc: EntryDoc;
}

/** An entry that applies to a subject, and why. */
export interface ApplicableEntry {
  readonly entry: PolicyEntry;
  /** `everyone`, `user alice` or `group ERP Users`. */
  readonly appliesTo: string;
}

/** A setting's value and where it came from. */
export interface Sourced<T> {
  readonly value: T;
  readonly layer: DecisionLayer;
  readonly source: string;
  readonly path: string;
  readonly appliesTo: string;
}

function validateDocument(data: unknown, source: string, basePath: string): PolicyDocument {
  const result = PolicyDocumentSchema.safeParse(data);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => {
    const path = formatPath([basePath, ...i.path]);
    return `${source}: ${path}: ${i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)` : i.message}`;
  });
  throw new InvalidInputError(`${source} is not a valid policy layer:\n  ${lines.join('\n  ')}`, {
    details: {
      file: source,
      issues: result.error.issues.map((i) => ({ path: formatPath([basePath, ...i.path]), message: i.message })),
    },
  });
}

function workspaceEntry(workspace: Workspace, source: string): PolicyEntry {
  const spec = workspace.spec;
  const p = spec.provisioning;
  const restricts = p.users.length > 0 || p.groups.length > 0 || p.everyone !== undefined;
  return {
    layer: 'package-default',
    rank: POLICY_LAYERS.indexOf('package-default'),
    order: 0,
    source,
    basePath: 'spec',
    doc: {
      ...(spec.webRedirection ? { webRedirection: spec.webRedirection } : {}),
      dataTransfer: spec.dataTransfer,
      usage: spec.usage,
      ...(restricts ? { provisioning: p } : {}),
    },
  };
}

/**
 * Builds the entries of every layer, highest precedence first, validating each layer's
 * documents. Throws InvalidInputError naming the source and the path of each problem.
 */
export function buildEntries(
  workspace: Workspace,
  workspaceSource: string,
  layers: readonly PolicyLayerInput[],
): PolicyEntry[] {
  const entries: PolicyEntry[] = [workspaceEntry(workspace, workspaceSource)];
  const counters = new Map<PolicyLayerName, number>();
  for (const input of layers) {
    const rank = POLICY_LAYERS.indexOf(input.layer);
    if (rank < 0 || input.layer === ('package-default' as string)) {
      throw new InvalidInputError(
        `"${String(input.layer)}" is not a policy layer: expected one of ${POLICY_LAYERS.slice(0, -1).join(', ')}.`,
        {
          details: { layer: input.layer },
        },
      );
    }
    const source = input.source ?? input.layer;
    const next = (): number => {
      const n = counters.get(input.layer) ?? 0;
      counters.set(input.layer, n + 1);
      return n;
    };
    if (input.policy !== undefined) {
      entries.push({
        layer: input.layer,
        rank,
        order: next(),
        source,
        basePath: 'policy',
        doc: validateDocument(input.policy, source, 'policy'),
      });
    }
    (input.assignments ?? []).forEach((raw, i) => {
      const basePath = `assignments[${i}]`;
      const parsed = PolicyAssignmentSchema.safeParse(raw);
      if (!parsed.success) {
        validateDocument((raw as { policy?: unknown }).policy, source, `${basePath}.policy`);
        const issue = parsed.error.issues[0];
        throw new InvalidInputError(
          `${source}: ${formatPath([basePath, ...(issue?.path ?? [])])}: ${issue?.message ?? 'invalid assignment'}`,
          {
            details: { file: source, path: basePath },
          },
        );
      }
      entries.push({
        layer: input.layer,
        rank,
        order: next(),
        source,
        basePath: `${basePath}.policy`,
        audience: { users: parsed.data.users, groups: parsed.data.groups },
        doc: parsed.data.policy,
      });
    });
  }
  return entries.sort((a, b) => a.rank - b.rank || a.order - b.order);
}

/** The entries that apply to `subject`, in precedence order, each with why. */
export function applicableEntries(entries: readonly PolicyEntry[], subject: PolicySubject): ApplicableEntry[] {
  const out: ApplicableEntry[] = [];
  for (const entry of entries) {
    if (entry.audience === undefined) {
      out.push({ entry, appliesTo: 'everyone' });
      continue;
    }
    const hit = findPrincipal(entry.audience.users, entry.audience.groups, subject);
    if (hit) out.push({ entry, appliesTo: `${hit.kind} ${hit.matched}` });
  }
  return out;
}

/** The merge rules in force: per policy, the highest layer's everyone-policy that chooses. */
export function effectiveMergeRules(entries: readonly PolicyEntry[]): MergeRules {
  const pick = <K extends keyof MergeRules>(key: K): MergeRules[K] => {
    for (const e of entries) {
      const v = e.audience === undefined ? e.doc.merge?.[key] : undefined;
      if (v !== undefined) return v as MergeRules[K];
    }
    return DEFAULT_MERGE_RULES[key];
  };
  return { webRedirection: pick('webRedirection'), dataTransfer: pick('dataTransfer'), usage: pick('usage') };
}

/**
 * Resolves one setting across layers: the highest layer whose applicable entries set it
 * decides; inside that layer several entries combine by `merge` (`first`, or by `permissiveness`:
 * the highest wins for least-restrictive, the lowest for most-restrictive).
 */
export function resolveSetting<T>(
  applicable: readonly ApplicableEntry[],
  get: (doc: EntryDoc) => T | undefined,
  subPath: string,
  merge: 'least-restrictive' | 'most-restrictive' | 'first',
  permissiveness?: (value: T) => number,
): Sourced<T> | undefined {
  let layerRank = -1;
  let best: Sourced<T> | undefined;
  let bestScore = 0;
  for (const { entry, appliesTo } of applicable) {
    if (best !== undefined && entry.rank !== layerRank) break;
    const value = get(entry.doc);
    if (value === undefined) continue;
    const candidate: Sourced<T> = {
      value,
      layer: entry.layer,
      source: entry.source,
      path: `${entry.basePath}.${subPath}`,
      appliesTo,
    };
    const score = permissiveness ? permissiveness(value) : 0;
    if (best === undefined) {
      best = candidate;
      bestScore = score;
      layerRank = entry.rank;
      if (merge === 'first' || !permissiveness) break;
    } else if (merge === 'least-restrictive' ? score > bestScore : score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/**
 * A source as reasons name it: a file by its base name (`machine.policy.yaml`, not its absolute
 * path, which the decision's rule reference still carries), anything else as it is.
 */
export function sourceName(source: string): string {
  if (!/^(\/|[A-Za-z]:[\\/]|\\\\)/.test(source)) return source;
  return source.split(/[\\/]/).pop() || source;
}

/** A setting as a rule reference for decisions; undefined for Tandem's built-in defaults. */
export function settingRef(s: Sourced<unknown>, text: string): RuleRef | undefined {
  if (s.layer === 'built-in') return undefined;
  return { layer: s.layer, source: s.source, path: s.path, label: s.path, text, appliesTo: s.appliesTo };
}
