import { z } from 'zod';
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
export const RedirectTargetSchema = z.enum(['host', 'guest']).describe('host: the user\'s own browser; guest: the browser inside the workspace');

/** One way to match a URL. Exactly one key per rule. */
export const UrlMatchSchema = z
  .union([
    z.strictObject({ host: z.string().min(1).describe('exact host name') }),
    z.strictObject({ domainSuffix: z.string().min(1).describe('the domain and all its subdomains, on a label boundary') }),
    z.strictObject({ subdomainsOf: z.string().min(1).describe('subdomains only, not the domain itself') }),
    z.strictObject({ ipPrefix: CidrSchema }),
    z.strictObject({ url: z.string().min(1).describe('MED-V v2 style pattern: http://*.contoso.com/app/*') }),
    z.strictObject({ localNames: z.literal(true).describe('host names without a dot (MED-V v1 "all local addresses")') }),
  ])
  .describe('what the rule matches: one of host, domainSuffix, subdomainsOf, ipPrefix, url, localNames');

/** A web redirection rule. */
export const UrlRuleSchema = z.strictObject({
  id: z.string().optional().describe('a name for the rule, shown in decisions'),
  match: UrlMatchSchema,
  pathPrefix: z.string().startsWith('/').optional().describe('only URLs whose path starts with this'),
  scheme: z.enum(['http', 'https', 'ftp']).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  direction: z.enum(['host-to-guest', 'guest-to-host', 'any']).default('host-to-guest'),
  target: RedirectTargetSchema,
});

/** Web redirection: which URLs open in the guest, and which in the host. */
export const WebRedirectionSchema = z.strictObject({
  enabled: z.boolean().default(true),
  defaultTarget: RedirectTargetSchema.default('host'),
  /** Import an Enterprise Mode Site List v2 file (relative to the workspace file). */
  enterpriseSiteList: z.string().optional().describe('path of an Enterprise Mode Site List v2 XML to import'),
  rules: z.array(UrlRuleSchema).default([]),
});

/** Data-transfer channels. */
export const TransferChannelSchema = z.enum(['clipboard', 'file', 'print', 'usb', 'audio', 'smartcard']);

/** One data-transfer rule. */
export const TransferRuleSchema = z.strictObject({
  channel: TransferChannelSchema,
  direction: z.enum(['host-to-guest', 'guest-to-host', 'any']),
  action: z.enum(['allow', 'deny', 'ask']),
  when: z
    .strictObject({
      contentType: z.array(z.enum(['text', 'image', 'files'])).optional(),
      maxBytes: z.number().int().nonnegative().optional(),
    })
    .optional(),
});

/** Usage policy. */
export const UsagePolicySchema = z.strictObject({
  expiresAt: z.iso.datetime({ offset: true }).optional().describe('after this instant the workspace no longer starts'),
  offline: z
    .strictObject({
      allowed: z.boolean().default(true),
      maxDuration: DurationSchema.optional().describe('how long since the last online check the workspace may run'),
    })
    .optional(),
  idleLock: DurationSchema.optional().describe('lock the session after this much idle time'),
  lockOnHostSleep: z.boolean().default(true),
  mode: z.enum(['persistent', 'revertible']).default('persistent'),
  onSessionEnd: z.enum(['snapshot', 'shutdown', 'suspend', 'revert']).default('shutdown'),
});

/** Who gets the workspace. */
export const ProvisioningSchema = z.strictObject({
  users: z.array(z.string().min(1)).default([]),
  groups: z.array(z.string().min(1)).default([]),
});
