import { createHash } from 'node:crypto';
import {
  InvalidInputError,
  PolicyEngine,
  PolicyLayerFileSchema,
  WorkspaceSchema,
  groupMatches,
  userMatches,
  type PolicyLayerInput,
  type PolicySubject,
  type Workspace,
} from '@tandem/core';
import type { ProvisionedWorkspace } from '@tandem/core/management';
import type { AssignmentRecord, PolicyLayerRecord } from './store/types.js';

/** The lease envelopes get when neither the policy nor the assignment says. */
export const DEFAULT_LEASE = 'P14D';
/** The lease when the policy forbids offline use: the endpoint must check in within the hour. */
export const ONLINE_ONLY_LEASE = 'PT1H';

/** One assignment's policy, compiled: the engine and the layers it was built from. */
export interface CompiledAssignment {
  readonly assignment: AssignmentRecord;
  readonly engine: PolicyEngine;
  readonly layers: readonly PolicyLayerInput[];
  readonly policySha256: string;
}

/**
 * Checks a policy layer document (the same `kind: PolicyLayer` file `tandem validate` reads)
 * and returns it as the engine takes it.
 */
export function policyLayerInput(record: PolicyLayerRecord): PolicyLayerInput {
  const parsed = PolicyLayerFileSchema.safeParse(record.document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(
      `Policy layer ${record.name}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'not a PolicyLayer document'}`,
      { details: { layer: record.name, path: issue?.path.join('.') } },
    );
  }
  const doc = parsed.data;
  return {
    layer: doc.layer,
    source: `server policy layer ${record.name}`,
    ...(doc.policy !== undefined ? { policy: doc.policy } : {}),
    assignments: doc.assignments,
  };
}

/**
 * The server's stand-in for a workspace package's own policy: the server does not hold the
 * workspace file (images and packages stay on the repository), so the package default is
 * empty here and the server's layers are what it decides; the endpoint layers them above the
 * package it pulled.
 */
function serverWorkspace(name: string, version: string | undefined): Workspace {
  return WorkspaceSchema.parse({
    apiVersion: 'tandem/v1',
    kind: 'Workspace',
    metadata: { name, version: version !== undefined && /^\d+\.\d+\.\d+/.test(version) ? version : '0.0.0' },
    spec: { image: { source: `server:${name}`, format: 'qcow2' }, hardware: { memory: { fixedMiB: 512 } } },
  });
}

/** Builds the policy engine of one assignment from its layers. */
export function compileAssignment(
  assignment: AssignmentRecord,
  layersByName: ReadonlyMap<string, PolicyLayerRecord>,
): CompiledAssignment {
  const layers = assignment.policyLayers.map((name) => {
    const record = layersByName.get(name);
    if (!record)
      throw new InvalidInputError(
        `Assignment ${assignment.id} names policy layer "${name}", which does not exist; add it (tandem admin policy put) or remove it from the assignment.`,
        { details: { assignment: assignment.id, layer: name } },
      );
    return policyLayerInput(record);
  });
  const engine = new PolicyEngine({
    workspace: serverWorkspace(assignment.workspace, assignment.version),
    workspaceSource: 'management server',
    layers,
  });
  const policySha256 = createHash('sha256').update(JSON.stringify(layers)).digest('hex');
  return { assignment, engine, layers, policySha256 };
}

/** Whether an assignment names the subject, directly (`user`) or through a group. */
export function assignmentCovers(assignment: AssignmentRecord, subject: PolicySubject): 'user' | 'group' | undefined {
  if (subject.user !== undefined && assignment.users.some((u) => userMatches(u, subject.user ?? ''))) return 'user';
  const groups = subject.groups ?? [];
  if (assignment.groups.some((entry) => groups.some((g) => groupMatches(entry, g)))) return 'group';
  return undefined;
}

/**
 * What a user gets: for each workspace, the assignment that names them (directly before
 * through a group, then the most recently changed), if its policy layers provision it to them,
 * with the lease its usage policy gives.
 */
export function provisionFor(
  compiled: readonly CompiledAssignment[],
  subject: PolicySubject,
  encrypted: (workspace: string) => boolean,
): { workspace: ProvisionedWorkspace; compiled: CompiledAssignment }[] {
  const best = new Map<string, { c: CompiledAssignment; via: 'user' | 'group' }>();
  for (const c of compiled) {
    const via = assignmentCovers(c.assignment, subject);
    if (!via) continue;
    const seen = best.get(c.assignment.workspace);
    if (
      !seen ||
      (via === 'user' && seen.via === 'group') ||
      (via === seen.via && c.assignment.updatedAt > seen.c.assignment.updatedAt)
    )
      best.set(c.assignment.workspace, { c, via });
  }
  const out: { workspace: ProvisionedWorkspace; compiled: CompiledAssignment }[] = [];
  for (const { c, via } of [...best.values()].sort((a, b) =>
    a.c.assignment.workspace.localeCompare(b.c.assignment.workspace),
  )) {
    const policy = c.engine.forSubject(subject);
    const decision = policy.decideProvisioning();
    if (decision.outcome !== 'allow') continue;
    const usage = policy.usage;
    const lease = !usage.offlineAllowed.value
      ? ONLINE_ONLY_LEASE
      : (usage.offlineMaxDuration?.value ?? c.assignment.lease ?? DEFAULT_LEASE);
    const a = c.assignment;
    const named =
      via === 'user'
        ? `assignment ${a.id} names user ${subject.user ?? ''}`
        : `assignment ${a.id} names a group of ${subject.user ?? 'the user'}`;
    out.push({
      compiled: c,
      workspace: {
        workspace: a.workspace,
        assignment: a.id,
        ...(a.channel !== undefined ? { channel: a.channel } : {}),
        ...(a.version !== undefined ? { version: a.version } : {}),
        policyLayers: [...c.layers],
        policySha256: c.policySha256,
        lease,
        encrypted: encrypted(a.workspace),
        reason: `${named}; ${decision.reason}`,
      },
    });
  }
  return out;
}
