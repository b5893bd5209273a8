import { z } from 'zod';
import { TandemError } from '../errors.js';
import { ContentTypeSchema, TransferChannelSchema } from '../workspace/policy-schema.js';
import type { PolicyDecision, PolicyEngine, PolicyQuestion } from './engine.js';
import { POLICY_LAYERS } from './types.js';

const CaseSchema = z
  .strictObject({
    name: z.string().optional(),
    user: z.string().min(1).optional(),
    groups: z.array(z.string().min(1)).optional(),
    url: z.string().optional().describe('a URL to decide on'),
    from: z.enum(['host', 'guest']).default('host').describe('where the URL was opened'),
    transfer: z
      .strictObject({
        channel: TransferChannelSchema,
        direction: z.enum(['host-to-guest', 'guest-to-host']),
        contentType: ContentTypeSchema.optional(),
        sizeBytes: z.number().int().nonnegative().optional(),
      })
      .optional(),
    usage: z
      .strictObject({
        now: z.iso.datetime({ offset: true }).optional(),
        online: z.boolean().default(true),
        lastOnlineCheck: z.iso.datetime({ offset: true }).optional(),
        lastActivity: z.iso.datetime({ offset: true }).optional(),
      })
      .optional(),
    provisioning: z.literal(true).optional(),
    expect: z.strictObject({
      outcome: z.enum(['host', 'guest', 'allow', 'deny', 'ask', 'error']),
      redirect: z.boolean().optional(),
      rule: z.string().nullable().optional().describe('the deciding rule: its id, label or path; null for a default'),
      layer: z.enum([...POLICY_LAYERS, 'built-in']).optional(),
    }),
  })
  .refine((c) => [c.url, c.transfer, c.usage, c.provisioning].filter((v) => v !== undefined).length === 1, {
    message: 'expected exactly one of url, transfer, usage, provisioning',
  });

/** A table of expected decisions (`kind: PolicyTest`), for `tandem policy test`. */
export const PolicyTestTableSchema = z.strictObject({
  apiVersion: z.literal('tandem/v1'),
  kind: z.literal('PolicyTest'),
  workspace: z.string().min(1).describe('the workspace file, relative to this table'),
  layers: z.array(z.string().min(1)).default([]).describe('policy layer files, relative to this table'),
  now: z.iso.datetime({ offset: true }).optional().describe('the clock for usage cases that give no now'),
  cases: z.array(CaseSchema).min(1),
});

/** A validated policy test table. */
export type PolicyTestTable = z.output<typeof PolicyTestTableSchema>;
/** One case of a table. */
export type PolicyTestCase = PolicyTestTable['cases'][number];

/** The result of one case. */
export interface PolicyTestResult {
  readonly index: number;
  readonly name: string;
  readonly passed: boolean;
  /** What differed from the expectation. */
  readonly failures: readonly string[];
  readonly decision?: PolicyDecision;
  /** The error, when deciding threw. */
  readonly error?: string;
}

function caseName(c: PolicyTestCase, index: number): string {
  if (c.name !== undefined) return c.name;
  const who = c.user ?? (c.groups?.length ? `groups ${c.groups.join(', ')}` : 'anyone');
  if (c.url !== undefined) return `${who}: ${c.url} from ${c.from}`;
  if (c.transfer) return `${who}: ${c.transfer.channel} ${c.transfer.direction}`;
  if (c.usage) return `${who}: usage${c.usage.online ? '' : ' offline'}`;
  return `${who}: provisioning (case ${index + 1})`;
}

function question(c: PolicyTestCase): PolicyQuestion {
  if (c.url !== undefined) return { url: c.url, from: c.from };
  if (c.transfer) return { transfer: c.transfer };
  if (c.usage) {
    return {
      usage: {
        online: c.usage.online,
        ...(c.usage.lastOnlineCheck !== undefined ? { lastOnlineCheckAt: c.usage.lastOnlineCheck } : {}),
        ...(c.usage.lastActivity !== undefined ? { lastActivityAt: c.usage.lastActivity } : {}),
      },
    };
  }
  return { provisioning: true };
}

/**
 * Runs a table of expected decisions against an engine. A case passes when the outcome and every
 * other expectation given (redirect, rule, layer) hold. Usage cases read `now` from the case,
 * else the table; the engine's clock otherwise.
 *
 * @example
 * ```ts
 * const results = runPolicyTests(engine, table);
 * const failed = results.filter((r) => !r.passed);
 * ```
 */
export function runPolicyTests(engine: PolicyEngine, table: PolicyTestTable): PolicyTestResult[] {
  return table.cases.map((c, index) => {
    const name = caseName(c, index);
    const subject = { ...(c.user !== undefined ? { user: c.user } : {}), groups: c.groups ?? [] };
    let decision: PolicyDecision;
    try {
      const q = question(c);
      const nowText = c.usage?.now ?? table.now;
      if ('usage' in q && nowText !== undefined) {
        const now = Date.parse(nowText);
        decision = engine.forSubject(subject).decideUsage(q.usage, { now: () => now });
      } else decision = engine.explain(subject, q);
    } catch (err) {
      if (!TandemError.is(err)) throw err;
      const passed = c.expect.outcome === 'error';
      return {
        index,
        name,
        passed,
        failures: passed ? [] : [`expected ${c.expect.outcome}, but deciding failed: ${err.message}`],
        error: err.message,
      };
    }
    const failures: string[] = [];
    const e = c.expect;
    if (decision.outcome !== e.outcome)
      failures.push(`expected ${e.outcome}, got ${decision.outcome} (${decision.reason})`);
    if (e.redirect !== undefined && decision.kind === 'url' && decision.redirect !== e.redirect) {
      failures.push(`expected redirect ${e.redirect}, got ${decision.redirect}`);
    }
    if (e.rule !== undefined) {
      const r = decision.rule;
      if (e.rule === null) {
        if (r !== undefined) failures.push(`expected no rule (a default), got rule ${r.label}`);
      } else if (r === undefined || ![r.id, r.label, r.path].includes(e.rule)) {
        failures.push(
          `expected rule ${e.rule}, got ${r ? `rule ${r.label} (${r.path})` : 'no rule (a default decided)'}`,
        );
      }
    }
    if (e.layer !== undefined && decision.layer !== e.layer)
      failures.push(`expected layer ${e.layer}, got ${decision.layer}`);
    return { index, name, passed: failures.length === 0, failures, decision };
  });
}
