import { sourceName, type ApplicableEntry } from './layers.js';
import { findPrincipal } from './principals.js';
import type { PolicyDecisionBase, PolicySubject } from './types.js';

/** Whether a subject gets the workspace. */
export interface ProvisioningDecision extends PolicyDecisionBase {
  readonly kind: 'provisioning';
  readonly outcome: 'allow' | 'deny';
  /** The workspace's name. */
  readonly workspace: string;
}

function who(subject: PolicySubject): string {
  const groups = subject.groups ?? [];
  const user = subject.user !== undefined ? `user ${subject.user}` : 'an anonymous user';
  return groups.length > 0 ? `${user} (groups ${groups.join('; ')})` : user;
}

/**
 * Decides whether `subject` gets the workspace. The highest layer that lists users or groups
 * (or sets `everyone`) decides: allow when the user id or one of the groups is listed there.
 * When no layer restricts, every user gets the workspace.
 */
export function decideProvisioning(
  applicable: readonly ApplicableEntry[],
  subject: PolicySubject,
  workspace: string,
): ProvisioningDecision {
  let layerRank = -1;
  const lists: string[] = [];
  for (const { entry, appliesTo } of applicable) {
    if (lists.length > 0 && entry.rank !== layerRank) break;
    const p = entry.doc.provisioning;
    if (p === undefined || (p.users === undefined && p.groups === undefined && p.everyone === undefined)) continue;
    layerRank = entry.rank;
    const base = `${entry.basePath}.provisioning`;
    lists.push(`${base} in ${entry.layer} (${sourceName(entry.source)})`);
    if (p.everyone === true) {
      const rule = {
        layer: entry.layer,
        source: entry.source,
        path: `${base}.everyone`,
        label: `${base}.everyone`,
        text: 'everyone',
        appliesTo,
      };
      return {
        kind: 'provisioning',
        outcome: 'allow',
        workspace,
        layer: entry.layer,
        rule,
        reason: `${workspace} is provisioned to everyone by ${base}.everyone in ${entry.layer} (${sourceName(entry.source)})`,
      };
    }
    const hit = findPrincipal(p.users ?? [], p.groups ?? [], subject);
    if (hit) {
      const path = `${base}.${hit.kind === 'user' ? 'users' : 'groups'}[${hit.index}]`;
      const rule = {
        layer: entry.layer,
        source: entry.source,
        path,
        label: path,
        text: `${hit.kind} ${hit.entry}`,
        appliesTo,
      };
      const via = hit.kind === 'user' ? `user ${hit.matched}` : `group ${hit.matched}`;
      return {
        kind: 'provisioning',
        outcome: 'allow',
        workspace,
        layer: entry.layer,
        rule,
        reason: `${workspace} is provisioned to ${via} by ${path} ("${hit.entry}") in ${entry.layer} (${sourceName(entry.source)})`,
      };
    }
  }
  const first = applicable.find((a) => a.entry.rank === layerRank);
  if (first === undefined) {
    return {
      kind: 'provisioning',
      outcome: 'allow',
      workspace,
      layer: 'built-in',
      reason: `no layer restricts who gets ${workspace}: every user does`,
    };
  }
  return {
    kind: 'provisioning',
    outcome: 'deny',
    workspace,
    layer: first.entry.layer,
    reason: `${who(subject)} is not listed in ${lists.join(' or ')}, so ${workspace} is not provisioned to them`,
  };
}
