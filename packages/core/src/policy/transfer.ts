import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { ContentTypeSchema, TransferChannelSchema } from '../workspace/policy-schema.js';
import { sourceName, type ApplicableEntry, type MergeRules, type TransferRule } from './layers.js';
import type { CrossingDirection, PolicyDecisionBase, RuleRef } from './types.js';

/** A data-transfer channel: clipboard, file, print, usb, audio, smartcard, or `x-name`. */
export type TransferChannel = z.output<typeof TransferChannelSchema>;
/** What a clipboard transfer carries. */
export type ContentType = z.output<typeof ContentTypeSchema>;
/** What a rule does with a transfer. */
export type TransferAction = 'allow' | 'deny' | 'ask';

/** A transfer to decide on. */
export interface TransferRequest {
  readonly channel: TransferChannel;
  readonly direction: CrossingDirection;
  /** For the clipboard: what it carries. */
  readonly contentType?: ContentType;
  /** Size in bytes, when known. */
  readonly sizeBytes?: number;
}

/** One rule that matched, in an applicable entry. */
export interface TransferMatch {
  readonly action: TransferAction;
  readonly rule: RuleRef;
}

/** The decision on a transfer. */
export interface TransferDecision extends PolicyDecisionBase {
  readonly kind: 'transfer';
  readonly outcome: TransferAction;
  readonly request: TransferRequest;
  /** Every rule that matched in the deciding layer (one per assignment), for explanations. */
  readonly considered: readonly TransferMatch[];
}

const PERMISSIVENESS: Record<TransferAction, number> = { deny: 0, ask: 1, allow: 2 };

/** Checks a request and throws InvalidInputError naming what is wrong. */
export function checkTransferRequest(request: TransferRequest): void {
  if (!TransferChannelSchema.safeParse(request.channel).success) {
    throw new InvalidInputError(
      `"${String(request.channel)}" is not a transfer channel: expected clipboard, file, print, usb, audio, smartcard or x-name.`,
      {
        details: { channel: request.channel },
      },
    );
  }
  if (request.direction !== 'host-to-guest' && request.direction !== 'guest-to-host') {
    throw new InvalidInputError(
      `"${String(request.direction)}" is not a transfer direction: expected host-to-guest or guest-to-host.`,
      {
        details: { direction: request.direction },
      },
    );
  }
  if (request.contentType !== undefined && !ContentTypeSchema.safeParse(request.contentType).success) {
    throw new InvalidInputError(
      `"${String(request.contentType)}" is not a content type: expected text, image or files.`,
      {
        details: { contentType: request.contentType },
      },
    );
  }
  if (request.sizeBytes !== undefined && !(Number.isInteger(request.sizeBytes) && request.sizeBytes >= 0)) {
    throw new InvalidInputError(`${String(request.sizeBytes)} is not a size: expected a whole number of bytes.`, {
      details: { sizeBytes: request.sizeBytes },
    });
  }
}

/** True when `rule` applies to `request`: channel, direction and every condition. */
export function transferRuleApplies(rule: TransferRule, request: TransferRequest): boolean {
  if (rule.channel !== 'any' && rule.channel !== request.channel) return false;
  if (rule.direction !== 'any' && rule.direction !== request.direction) return false;
  const when = rule.when;
  if (
    when?.contentType !== undefined &&
    (request.contentType === undefined || !when.contentType.includes(request.contentType))
  )
    return false;
  if (when?.maxBytes !== undefined && (request.sizeBytes === undefined || request.sizeBytes > when.maxBytes))
    return false;
  return true;
}

/** Describes a transfer rule in words: `clipboard guest-to-host when text -> deny`. */
export function describeTransferRule(rule: TransferRule): string {
  const cond: string[] = [];
  if (rule.when?.contentType) cond.push(rule.when.contentType.join('/'));
  if (rule.when?.maxBytes !== undefined) cond.push(`at most ${rule.when.maxBytes} bytes`);
  return `${rule.channel} ${rule.direction}${cond.length > 0 ? ` when ${cond.join(', ')}` : ''} -> ${rule.action}`;
}

/** Describes a request in words: `clipboard guest-to-host (text, 12 bytes)`. */
export function describeTransferRequest(r: TransferRequest): string {
  const extra = [r.contentType, r.sizeBytes !== undefined ? `${r.sizeBytes} bytes` : undefined].filter(
    (x) => x !== undefined,
  );
  return `${r.channel} ${r.direction}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
}

/**
 * Decides a transfer. Inside one policy document the rules are read top to bottom and the first
 * that applies decides (as in Qubes OS qrexec policy). Layers are read in precedence order and the
 * first layer with an applicable rule decides; inside that layer, several assignments (a user in
 * several groups) combine by the merge rule. Nothing applies: deny.
 */
export function decideTransfer(
  applicable: readonly ApplicableEntry[],
  request: TransferRequest,
  merge: MergeRules['dataTransfer'],
): TransferDecision {
  checkTransferRequest(request);
  const what = describeTransferRequest(request);
  let layerRank = -1;
  const matches: TransferMatch[] = [];
  for (const { entry, appliesTo } of applicable) {
    if (matches.length > 0 && entry.rank !== layerRank) break;
    const rules = entry.doc.dataTransfer ?? [];
    const index = rules.findIndex((r) => transferRuleApplies(r, request));
    const rule = rules[index];
    if (rule === undefined) continue;
    layerRank = entry.rank;
    const path = `${entry.basePath}.dataTransfer[${index}]`;
    matches.push({
      action: rule.action,
      rule: {
        layer: entry.layer,
        source: entry.source,
        path,
        ...(rule.id !== undefined ? { id: rule.id } : {}),
        label: rule.id ?? path,
        text: describeTransferRule(rule),
        appliesTo,
      },
    });
  }
  const first = matches[0];
  if (first === undefined) {
    return {
      kind: 'transfer',
      outcome: 'deny',
      layer: 'built-in',
      reason: `no rule in any layer applies to ${what}: default deny`,
      request,
      considered: [],
    };
  }
  let chosen = first;
  if (merge !== 'first') {
    for (const m of matches) {
      const better =
        merge === 'least-restrictive'
          ? PERMISSIVENESS[m.action] > PERMISSIVENESS[chosen.action]
          : PERMISSIVENESS[m.action] < PERMISSIVENESS[chosen.action];
      if (better) chosen = m;
    }
  }
  const r = chosen.rule;
  let reason = `${chosen.action}: rule ${r.label} (${r.text}) for ${r.appliesTo} in ${r.layer} (${sourceName(r.source)}) is the first that applies to ${what}`;
  if (matches.length > 1) {
    const others = matches.filter((m) => m !== chosen).map((m) => `${m.action} for ${m.rule.appliesTo}`);
    reason += `; ${merge} merge over ${matches.length} assignments chose it over ${others.join(', ')}`;
  }
  return { kind: 'transfer', outcome: chosen.action, layer: r.layer, rule: r, reason, request, considered: matches };
}
