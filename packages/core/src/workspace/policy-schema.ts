import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { CHECK_ONLY_REF, compileUrlMatch, compileUrlRule } from '../policy/url-rules.js';
import { isCidr } from '../util/cidr.js';
import { isDuration } from '../util/duration.js';

/** An ISO 8601 duration such as `PT15M` or `P14D`. */
export const DurationSchema = z
  .string()
  .refine(isDuration, { message: 'expected an ISO 8601 duration such as PT15M or P14D' })
  .describe('ISO 8601 duration: PT15M is 15 minutes, P14D is 14 days');

/** A CIDR prefix such as `10.20.0.0/16` or `fd00::/8`. */
export const CidrSchema = z
  .string()
  .refine(isCidr, { message: 'expected an IPv4 or IPv6 prefix in CIDR notation, such as 10.20.0.0/16' })
  .describe('IPv4 or IPv6 prefix in CIDR notation');

/** Where a URL opens. */
export const RedirectTargetSchema = z
  .enum(['host', 'guest'])
  .describe("host: the user's own browser; guest: the browser inside the workspace");

/** Which way something crosses between host and guest; `any` for both. */
export const DirectionSchema = z.enum(['host-to-guest', 'guest-to-host', 'any']);

/** One way to match a URL. Exactly one key per rule. */
export const UrlMatchSchema = z
  .union([
    z.strictObject({ host: z.string().min(1).describe('exact host name or IP address') }),
    z.strictObject({
      domainSuffix: z.string().min(1).describe('the domain and all its subdomains, on a label boundary'),
    }),
    z.strictObject({ subdomainsOf: z.string().min(1).describe('subdomains only, not the domain itself') }),
    z.strictObject({ ipPrefix: CidrSchema }),
    z.strictObject({
      url: z.string().min(1).describe('MED-V v2 style pattern: http://*.contoso.com/app/* (see docs/policy.md)'),
    }),
    z.strictObject({
      localNames: z.literal(true).describe('host names without a dot (MED-V v1 "all local addresses")'),
    }),
  ])
  .describe('what the rule matches: one of host, domainSuffix, subdomainsOf, ipPrefix, url, localNames');

function reasonOf(err: unknown): string {
  return err instanceof InvalidInputError && typeof err.details['reason'] === 'string'
    ? err.details['reason']
    : String(err);
}

/** A web redirection rule. */
export const UrlRuleSchema = z
  .strictObject({
    id: z.string().min(1).optional().describe('a name for the rule, shown in decisions'),
    match: UrlMatchSchema,
    pathPrefix: z
      .string()
      .startsWith('/')
      .optional()
      .describe('only URLs whose path starts with this, on a segment boundary (/app covers /app/x, not /apple)'),
    scheme: z.enum(['http', 'https', 'ftp']).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    direction: DirectionSchema.default('any').describe(
      'only URLs opened on this side: host-to-guest (opened on the host), guest-to-host (opened in the guest), any',
    ),
    target: RedirectTargetSchema,
  })
  .superRefine((rule, ctx) => {
    try {
      compileUrlMatch(rule.match);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: reasonOf(err), path: ['match', Object.keys(rule.match)[0] ?? ''] });
      return;
    }
    try {
      compileUrlRule(rule, CHECK_ONLY_REF);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: reasonOf(err) });
    }
  });

const webRedirectionFields = {
  enterpriseSiteList: z
    .string()
    .min(1)
    .optional()
    .describe('path of an Enterprise Mode Site List v2 XML to import (relative to this file)'),
  rules: z.array(UrlRuleSchema),
};

/** Web redirection: which URLs open in the guest, and which in the host. */
export const WebRedirectionSchema = z.strictObject({
  enabled: z.boolean().default(true),
  defaultTarget: RedirectTargetSchema.default('host').describe('where a URL no rule matches opens'),
  hostToGuest: z.boolean().default(true).describe('redirect URLs opened on the host into the guest'),
  guestToHost: z.boolean().default(false).describe('redirect URLs opened in the guest out to the host (MED-V v1)'),
  ...webRedirectionFields,
  rules: webRedirectionFields.rules.default([]),
});

/** Web redirection in a policy layer: only what the layer sets (no defaults). */
export const WebRedirectionLayerSchema = z.strictObject({
  enabled: z.boolean().optional(),
  defaultTarget: RedirectTargetSchema.optional(),
  hostToGuest: z.boolean().optional(),
  guestToHost: z.boolean().optional(),
  ...webRedirectionFields,
  rules: webRedirectionFields.rules.optional(),
});

/** Data-transfer channels. A vendor channel is written `x-name`. */
export const TransferChannelSchema = z
  .union([
    z.enum(['clipboard', 'file', 'print', 'usb', 'audio', 'smartcard']),
    z.string().regex(/^x-[a-z0-9][a-z0-9-]*$/, 'expected a channel such as clipboard, file, print, usb, or x-name'),
  ])
  .describe('clipboard, file, print, usb, audio, smartcard, or a vendor channel x-name');

/** What a clipboard transfer carries. */
export const ContentTypeSchema = z.enum(['text', 'image', 'files']);

/** One data-transfer rule. */
export const TransferRuleSchema = z
  .strictObject({
    id: z.string().min(1).optional().describe('a name for the rule, shown in decisions'),
    channel: z.union([TransferChannelSchema, z.literal('any')]),
    direction: DirectionSchema,
    action: z
      .enum(['allow', 'deny', 'ask'])
      .describe('ask: the enforcing side asks the user for this one transfer; no answer is deny'),
    when: z
      .strictObject({
        contentType: z.array(ContentTypeSchema).min(1).optional().describe('only clipboard content of these types'),
        maxBytes: z
          .number()
          .int()
          .nonnegative()
          .optional()
          .describe('only transfers of at most this many bytes (a transfer of unknown size does not match)'),
      })
      .optional(),
  })
  .refine((r) => r.when?.contentType === undefined || r.channel === 'clipboard' || r.channel === 'any', {
    message: 'contentType applies to the clipboard channel only',
    path: ['when', 'contentType'],
  });

const usageFields = {
  expiresAt: z.iso.datetime({ offset: true }).optional().describe('after this instant the workspace no longer starts'),
  idleLock: DurationSchema.optional().describe('lock the session after this much idle time'),
};
const ModeSchema = z.enum(['persistent', 'revertible']);

/**
 * How the host agent enforces the usage policy while a session runs (workspace file only; the
 * agent applies the defaults given in each description).
 */
const usageEnforcementFields = {
  suspendOnHostSleep: z
    .boolean()
    .optional()
    .describe('when the host goes to sleep, suspend the VM after locking the session (default false)'),
  warnBefore: DurationSchema.optional().describe(
    'warn the user this long before the expiry or the offline limit is reached (default PT15M)',
  ),
  atLimit: z
    .enum(['lock-then-stop', 'lock', 'stop'])
    .optional()
    .describe(
      'what the agent does when the expiry or the offline limit is reached while the session runs (default lock-then-stop)',
    ),
  stopAfter: DurationSchema.optional().describe(
    'with atLimit lock-then-stop: how long the session stays locked before the agent stops it (default PT5M)',
  ),
};
const SessionEndSchema = z.enum(['snapshot', 'shutdown', 'suspend', 'revert']);

/** Usage policy. */
export const UsagePolicySchema = z.strictObject({
  ...usageFields,
  offline: z
    .strictObject({
      allowed: z.boolean().default(true),
      maxDuration: DurationSchema.optional().describe('how long since the last online check the workspace may run'),
    })
    .optional(),
  lockOnHostSleep: z.boolean().default(true),
  mode: ModeSchema.default('persistent'),
  onSessionEnd: SessionEndSchema.default('shutdown'),
  ...usageEnforcementFields,
});

/** Usage policy in a policy layer: only what the layer sets (no defaults). */
export const UsageLayerSchema = z.strictObject({
  ...usageFields,
  offline: z
    .strictObject({
      allowed: z.boolean().optional(),
      maxDuration: DurationSchema.optional(),
    })
    .optional(),
  lockOnHostSleep: z.boolean().optional(),
  mode: ModeSchema.optional(),
  onSessionEnd: SessionEndSchema.optional(),
});

/** Who gets the workspace: user ids, group names or DNs. Empty lists restrict nobody. */
export const ProvisioningSchema = z.strictObject({
  users: z.array(z.string().min(1)).default([]),
  groups: z.array(z.string().min(1)).default([]),
  everyone: z.boolean().optional().describe('every user gets the workspace, whatever the lists say'),
});

/** Provisioning in a policy layer. */
export const ProvisioningLayerSchema = z.strictObject({
  users: z.array(z.string().min(1)).optional(),
  groups: z.array(z.string().min(1)).optional(),
  everyone: z.boolean().optional(),
});

/** How the policies of several groups a user belongs to combine, per policy. */
export const MergeRulesSchema = z
  .strictObject({
    webRedirection: z
      .enum(['most-specific', 'first'])
      .optional()
      .describe(
        'most-specific: pool the rules, the most specific wins; first: the first listed assignment with a match',
      ),
    dataTransfer: z.enum(['least-restrictive', 'most-restrictive', 'first']).optional(),
    usage: z.enum(['least-restrictive', 'most-restrictive', 'first']).optional(),
  })
  .describe('MED-V v1 granted the least restrictive rights; choose per policy');

/** The policy a layer (or one assignment in it) sets. */
export const PolicyDocumentSchema = z.strictObject({
  webRedirection: WebRedirectionLayerSchema.optional(),
  dataTransfer: z.array(TransferRuleSchema).optional(),
  usage: UsageLayerSchema.optional(),
  provisioning: ProvisioningLayerSchema.optional(),
  merge: MergeRulesSchema.optional(),
});

/** A policy for some users and groups inside a layer. */
export const PolicyAssignmentSchema = z
  .strictObject({
    users: z.array(z.string().min(1)).default([]),
    groups: z.array(z.string().min(1)).default([]),
    policy: PolicyDocumentSchema,
  })
  .refine((a) => a.users.length + a.groups.length > 0, {
    message: 'expected at least one user or group (a policy for everyone goes under the layer\'s "policy" key)',
    path: ['users'],
  });

/** A policy layer file (`kind: PolicyLayer`): machine or user policy, or local settings. */
export const PolicyLayerFileSchema = z.strictObject({
  apiVersion: z.literal('tandem/v1'),
  kind: z.literal('PolicyLayer'),
  metadata: z.strictObject({ name: z.string().min(1), description: z.string().optional() }).optional(),
  layer: z
    .enum(['machine-policy', 'user-policy', 'machine-local', 'user-local'])
    .describe('which layer this is; the package default is the workspace file itself'),
  policy: PolicyDocumentSchema.optional().describe('the policy for everyone'),
  assignments: z.array(PolicyAssignmentSchema).default([]).describe('policies for some users and groups'),
});
