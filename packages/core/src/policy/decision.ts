import type { TandemEventMap } from '../events/types.js';
import { formatDuration } from '../util/duration.js';
import type { PolicyDecision } from './engine.js';
import { describeTransferRequest } from './transfer.js';

/** What a decision was about, in a few words: the URL, the transfer, the workspace. */
export function decisionSubject(decision: PolicyDecision): string {
  switch (decision.kind) {
    case 'url':
      return decision.normalized;
    case 'transfer':
      return describeTransferRequest(decision.request);
    case 'usage':
      return 'workspace usage';
    case 'provisioning':
      return decision.workspace;
  }
}

/**
 * The payload of a `policy.decision` event for a decision a caller enforced. The engine itself
 * emits nothing.
 *
 * @example
 * ```ts
 * const d = policy.decideTransfer({ channel: 'clipboard', direction: 'guest-to-host', contentType: 'text' });
 * events.publish('policy.decision', toDecisionEvent(d), { workspace: 'legacy-erp', session: session.id });
 * ```
 */
export function toDecisionEvent(decision: PolicyDecision): TandemEventMap['policy.decision'] {
  return {
    kind: decision.kind,
    subject: decisionSubject(decision),
    outcome: decision.outcome,
    ...(decision.rule ? { rule: decision.rule.label } : {}),
    layer: decision.layer,
    reason: decision.reason,
  };
}

const ms = (v: number | null): string => (v === null ? 'none' : formatDuration(Math.max(0, v)));

/** A decision as lines for a person: the outcome, the rule, the layer, and why. */
export function formatDecision(decision: PolicyDecision): string[] {
  const lines: string[] = [];
  switch (decision.kind) {
    case 'url':
      lines.push(
        `decision: ${decision.target} (${decision.redirect ? `redirect from the ${decision.openedOn}` : `stays on the ${decision.openedOn}`})`,
      );
      lines.push(
        `url: ${decision.url}${decision.normalized !== decision.url ? ` (compared as ${decision.normalized})` : ''}`,
      );
      break;
    case 'transfer':
      lines.push(
        `decision: ${decision.outcome}${decision.outcome === 'ask' ? ' (ask the user for this one transfer; no answer is deny)' : ''}`,
      );
      lines.push(`transfer: ${decisionSubject(decision)}`);
      break;
    case 'usage':
      lines.push(`decision: ${decision.outcome}`);
      lines.push(`now: ${decision.now}`);
      lines.push(`expires in: ${decision.expiresInMs === null ? 'never' : ms(decision.expiresInMs)}`);
      lines.push(
        `offline time left: ${decision.offlineRemainingMs === null ? 'no limit' : ms(decision.offlineRemainingMs)}`,
      );
      lines.push(
        `idle lock: ${decision.idleLockMs === null ? 'none' : `after ${ms(decision.idleLockMs)}`}${decision.idleLockInMs !== null ? ` (in ${ms(decision.idleLockInMs)})` : ''}`,
      );
      lines.push(
        `lock on host sleep: ${decision.lockOnHostSleep ? 'yes' : 'no'}; mode: ${decision.mode}; at session end: ${decision.onSessionEnd}`,
      );
      break;
    case 'provisioning':
      lines.push(`decision: ${decision.outcome}`);
      lines.push(`workspace: ${decision.workspace}`);
      break;
  }
  const r = decision.rule;
  if (r) lines.push(`rule: ${r.label}${r.label !== r.path ? ` (${r.path})` : ''}: ${r.text}`);
  else lines.push('rule: none (a default decided)');
  lines.push(`layer: ${decision.layer}${r ? ` (${r.source}), for ${r.appliesTo}` : ''}`);
  lines.push(`why: ${decision.reason}`);
  if (decision.kind === 'transfer' && decision.considered.length > 1) {
    for (const c of decision.considered)
      lines.push(`  considered: ${c.action} by ${c.rule.label} for ${c.rule.appliesTo}`);
  }
  if (decision.kind === 'usage')
    for (const c of decision.checks) lines.push(`  ${c.ok ? 'ok' : 'FAIL'} ${c.check}: ${c.reason}`);
  return lines;
}
