/**
 * The management API's messages, shared by the server and the endpoint's client. Every request
 * body and every reply is checked against these schemas on both sides (zod at the edges).
 */
import { z } from 'zod';

/** The API's version prefix. */
export const API_PREFIX = '/v1';

/** The routes, relative to the server's base URL. */
export const ROUTES = {
  enroll: `${API_PREFIX}/enroll`,
  signIn: `${API_PREFIX}/sign-in`,
  checkIn: `${API_PREFIX}/check-in`,
  events: `${API_PREFIX}/events`,
  envelope: `${API_PREFIX}/envelope`,
  assignments: `${API_PREFIX}/assignments`,
  health: `${API_PREFIX}/health`,
} as const;

/** The largest request body the server reads (bytes); larger requests get `TANDEM_TOO_LARGE`. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** The most events one check-in or upload may carry. */
export const MAX_EVENTS_PER_REQUEST = 1000;

const Name = z.string().min(1).max(256);
const Iso = z.iso.datetime({ offset: true });

/** A device's public keys as it enrolls them (raw base64url, as in `DevicePublicKey`). */
export const DeviceKeysSchema = z.strictObject({
  sealingKey: z.base64url().length(43),
  signingKey: z.base64url().length(43),
});

/** Enrollment: a user's credentials and the device's public keys. Signed with the device key. */
export const EnrollRequestSchema = z.strictObject({
  user: Name,
  password: z.string().min(1).max(1024),
  hostName: z.string().min(1).max(253),
  device: DeviceKeysSchema,
});
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

/** Who signed in: what the directory said. */
export const SignInInfoSchema = z.strictObject({
  user: Name,
  displayName: z.string().optional(),
  groups: z.array(z.string()),
  /** Set when the password expires soon: tell the user. */
  passwordExpiresInMs: z.number().int().nonnegative().optional(),
  /** When this sign-in happened (the endpoint sends it back as `credentialsCachedAt`). */
  signedInAt: Iso,
});
export type SignInInfo = z.infer<typeof SignInInfoSchema>;

/** The server's reply to an enrollment. */
export const EnrollReplySchema = z.strictObject({
  device: z.string().regex(/^[0-9a-f]{32}$/),
  signIn: SignInInfoSchema,
  /** The key-release authority's public key (TUF entry): the endpoint trusts it for envelopes. */
  authority: z.strictObject({
    keytype: z.literal('ed25519'),
    scheme: z.literal('ed25519'),
    keyval: z.strictObject({ public: z.string().regex(/^[0-9a-f]{64}$/) }),
  }),
});
export type EnrollReply = z.infer<typeof EnrollReplySchema>;

/** A sign-in on an enrolled device (signed by the device). */
export const SignInRequestSchema = z.strictObject({
  user: Name,
  password: z.string().min(1).max(1024),
});
export type SignInRequest = z.infer<typeof SignInRequestSchema>;
export const SignInReplySchema = z.strictObject({ signIn: SignInInfoSchema });
export type SignInReply = z.infer<typeof SignInReplySchema>;

/** An event as the endpoint uploads it (a `TandemEvent`). */
export const WireEventSchema = z.strictObject({
  id: z.string().min(8).max(64),
  type: z.string().min(1).max(64),
  at: Iso,
  workspace: z.string().max(256).nullable(),
  session: z.string().max(256).nullable(),
  data: z.record(z.string(), z.unknown()),
});
export type WireEvent = z.infer<typeof WireEventSchema>;

/** A workspace as the endpoint runs it. */
export const EndpointWorkspaceStateSchema = z.strictObject({
  workspace: Name,
  version: z.string().max(64).nullable(),
  state: z.string().max(64).nullable(),
});

/** An envelope the endpoint holds: which, and until when. */
export const HeldEnvelopeSchema = z.strictObject({
  workspace: Name,
  envelopeId: z.string().min(1).max(64),
  issuedAt: Iso,
  notAfter: Iso,
});

/** A check-in: the endpoint's state, its queued events, and what it last heard. */
export const CheckInRequestSchema = z.strictObject({
  /** The version token of the last check-in's reply; absent on the first. */
  token: z.string().max(128).optional(),
  /** When the endpoint cached the user's credentials (the sign-in's `signedInAt`). */
  credentialsCachedAt: Iso.optional(),
  agentVersion: z.string().max(64).optional(),
  workspaces: z.array(EndpointWorkspaceStateSchema).max(256).default([]),
  envelopes: z.array(HeldEnvelopeSchema).max(256).default([]),
  events: z.array(WireEventSchema).max(MAX_EVENTS_PER_REQUEST).default([]),
});
export type CheckInRequest = z.input<typeof CheckInRequestSchema>;

/** A signed envelope as `tandem.key-envelope/v1` (see `@tandem/core/crypto`). */
export const WireEnvelopeSchema = z.strictObject({
  format: z.literal('tandem.key-envelope/v1'),
  payload: z.string(),
  signature: z.strictObject({ keyid: z.string(), sig: z.string() }),
});

/** One workspace the user gets on this device. */
export const ProvisionedWorkspaceSchema = z.strictObject({
  workspace: Name,
  assignment: z.string(),
  channel: z.string().optional(),
  version: z.string().optional(),
  /** The policy layers the server applies, as `PolicyLayerInput`s (highest precedence first). */
  policyLayers: z.array(z.unknown()),
  /** SHA-256 of the policy layers' canonical JSON: what the lease is issued under. */
  policySha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The offline lease envelopes get (ISO 8601 duration). */
  lease: z.string(),
  /** Whether the server holds a data key for it (an encrypted workspace). */
  encrypted: z.boolean(),
  /** Why the user gets it (the provisioning decision's reason). */
  reason: z.string(),
});
export type ProvisionedWorkspace = z.infer<typeof ProvisionedWorkspaceSchema>;

/** Why the endpoint must drop what it caches for the user. */
export const CredentialRevocationSchema = z.strictObject({
  reason: z.enum(['disabled', 'locked', 'expired', 'password-changed', 'unknown-user']),
  message: z.string(),
});

/** The reply to a check-in. */
export const CheckInReplySchema = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('unchanged'),
    token: z.string(),
    events: z.strictObject({ inserted: z.number().int(), duplicates: z.number().int() }),
  }),
  z.strictObject({
    status: z.literal('changed'),
    token: z.string(),
    events: z.strictObject({ inserted: z.number().int(), duplicates: z.number().int() }),
    user: z.string(),
    workspaces: z.array(ProvisionedWorkspaceSchema),
    /** New or renewed envelopes, one per encrypted workspace due for renewal. */
    envelopes: z.array(z.strictObject({ workspace: Name, envelope: WireEnvelopeSchema })),
    /** Workspaces no longer assigned: stop renewing, delete their envelopes. */
    deprovisioned: z.array(Name),
    /** Set when the user's cached credentials and envelopes must be deleted. */
    revokeCredentials: CredentialRevocationSchema.optional(),
  }),
]);
export type CheckInReply = z.infer<typeof CheckInReplySchema>;

/** Events uploaded outside a check-in. */
export const EventUploadRequestSchema = z.strictObject({
  events: z.array(WireEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST),
});
export const EventUploadReplySchema = z.strictObject({
  inserted: z.number().int(),
  duplicates: z.number().int(),
});
export type EventUploadReply = z.infer<typeof EventUploadReplySchema>;

/** An envelope for one workspace, for this device and its user. */
export const EnvelopeRequestSchema = z.strictObject({ workspace: Name, user: Name.optional() });
export const EnvelopeReplySchema = z.strictObject({
  workspace: Name,
  envelope: WireEnvelopeSchema,
  notAfter: Iso,
});
export type EnvelopeReply = z.infer<typeof EnvelopeReplySchema>;

/** The workspaces a user gets (the device's user unless `user` names the same one). */
export const AssignmentsRequestSchema = z.strictObject({ user: Name.optional() });
export const AssignmentsReplySchema = z.strictObject({
  user: z.string(),
  workspaces: z.array(ProvisionedWorkspaceSchema),
});
export type AssignmentsReply = z.infer<typeof AssignmentsReplySchema>;

/** Every error reply: a stable code, a message that says what to do, and whether to retry. */
export const ErrorReplySchema = z.object({
  code: z.string(),
  message: z.string(),
  retryable: z.boolean().default(false),
  /** A finer reason where there is one (`bad-credentials`, `replayed`, `revoked`...). */
  reason: z.string().optional(),
});
export type ErrorReply = z.infer<typeof ErrorReplySchema>;
