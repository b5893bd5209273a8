import { z } from 'zod';

/**
 * The guest-agent protocol, version 1: the messages both ends exchange over the guest channel
 * (virtio-serial, vsock, hvsocket, TCP), each framed as `0xFF` + one line of JSON + `\n` (see
 * framing.ts and docs/guest-agent.md). Every message is validated with these schemas on arrival;
 * this file imports nothing but zod so that the guest agent can load it inside the guest.
 */

/** Name of the virtio-serial port the Tandem guest agent opens (libvirt's channel target). */
export const AGENT_CHANNEL_NAME = 'org.tandem.agent.0';

/** Protocol versions this build speaks, oldest first. The highest one both ends speak is used. */
export const PROTOCOL_VERSIONS: readonly number[] = [1];

/** Largest message either end accepts by default (a list of apps with PNG icons fits). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Largest icon the agent sends for one app, in bytes of PNG. */
export const MAX_ICON_BYTES = 256 * 1024;

/** The capabilities this protocol version defines. An agent may advertise others; they are ignored. */
export const GUEST_CAPABILITIES = [
  'info',
  'first-time-setup',
  'apps',
  'open-url',
  'url-to-host',
  'exec',
  'rdp-policy',
  'sign-in',
] as const;

/** A capability this protocol version defines. */
export type GuestCapability = (typeof GUEST_CAPABILITIES)[number];

/** True when `name` is a capability this protocol version defines. */
export function isGuestCapability(name: string): name is GuestCapability {
  return (GUEST_CAPABILITIES as readonly string[]).includes(name);
}

const Id = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const Token = z.string().min(1).max(128);
const ShortText = z.string().max(4096);

/** The hello each end sends: who it is, the protocol versions it speaks and what it can do. */
export const HelloSchema = z.strictObject({
  type: z.literal('hello'),
  role: z.enum(['host', 'agent']),
  /** The software and its version (`@tandem/guest-agent`, `0.1.0`). */
  software: z.string().min(1).max(128),
  version: z.string().min(1).max(64),
  protocols: z.array(z.number().int().min(1).max(1000)).min(1).max(32),
  capabilities: z.array(z.string().min(1).max(64)).max(64),
  /** A random id per agent process: a hello with another one means the agent restarted. */
  instance: Token,
  /** In the agent's reply to the host's hello: the version it chose. */
  protocol: z.number().int().min(1).max(1000).optional(),
});

/** A resynchronisation point: everything received before the matching `sync-ack` is discarded. */
export const SyncSchema = z.strictObject({ type: z.literal('sync'), id: Token });
/** The answer to a {@link SyncSchema} message, with the same id. */
export const SyncAckSchema = z.strictObject({ type: z.literal('sync-ack'), id: Token });

/** A request from the host, answered by exactly one reply with the same id. */
export const RequestSchema = z.strictObject({
  type: z.literal('request'),
  id: Id,
  method: z.string().min(1).max(64),
  params: z.unknown().optional(),
});

/** The host gave up on a request (timeout or AbortSignal): the agent stops working on it. */
export const CancelSchema = z.strictObject({ type: z.literal('cancel'), id: Id });

/** An error as it travels: the guest's own message, a stable code, and whether to retry. */
export const WireErrorSchema = z.strictObject({
  code: z.string().min(1).max(64),
  message: ShortText,
  retryable: z.boolean(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** The wire form of an error. */
export type WireError = z.infer<typeof WireErrorSchema>;

/** The answer to a request: a result or an error. */
export const ReplySchema = z.union([
  z.strictObject({ type: z.literal('reply'), id: Id, result: z.unknown() }),
  z.strictObject({ type: z.literal('reply'), id: Id, error: WireErrorSchema }),
]);

/** Something the guest reports on its own (a URL to open on the host). */
export const EventSchema = z.strictObject({
  type: z.literal('event'),
  name: z.string().min(1).max(64),
  data: z.unknown(),
});

/** A message the receiver could not accept: malformed, oversized, unexpected. */
export const ProtocolErrorSchema = z.strictObject({
  type: z.literal('protocol-error'),
  code: z.enum(['malformed', 'oversized', 'truncated', 'unexpected', 'hello-first', 'version']),
  message: ShortText,
  /** The request it concerns, when that much could be read. */
  id: Id.optional(),
});

/** Any message of the protocol. */
export const MessageSchema = z.union([
  HelloSchema,
  SyncSchema,
  SyncAckSchema,
  RequestSchema,
  CancelSchema,
  ReplySchema,
  EventSchema,
  ProtocolErrorSchema,
]);

/** Any message of the protocol. */
export type Message = z.infer<typeof MessageSchema>;
/** A hello. */
export type Hello = z.infer<typeof HelloSchema>;
/** A request. */
export type RequestMessage = z.infer<typeof RequestSchema>;
/** A reply. */
export type ReplyMessage = z.infer<typeof ReplySchema>;
/** A protocol error. */
export type ProtocolErrorMessage = z.infer<typeof ProtocolErrorSchema>;

/**
 * The version both ends use: the highest one each of them speaks, or undefined when they share
 * none.
 *
 * @example
 * ```ts
 * negotiateProtocol([1, 2], [1]); // 1
 * ```
 */
export function negotiateProtocol(ours: readonly number[], theirs: readonly number[]): number | undefined {
  const common = ours.filter((v) => theirs.includes(v));
  return common.length === 0 ? undefined : Math.max(...common);
}

// ---- methods: params and results of protocol version 1 ----

const Address = z.strictObject({
  interface: z.string().max(64),
  address: z.string().max(64),
  family: z.enum(['IPv4', 'IPv6']),
});

/** The guest's facts (`info`). */
export const GuestInfoSchema = z.strictObject({
  os: z.strictObject({
    family: z.enum(['linux', 'windows', 'other']),
    /** Distribution or product name (`Debian GNU/Linux`, `Windows 11 Enterprise`). */
    name: z.string().max(256),
    version: z.string().max(128),
    /** Kernel release (`6.1.0-28-cloud-amd64`, `10.0.22631`). */
    kernel: z.string().max(128),
    arch: z.string().max(32),
  }),
  hostname: z.string().max(255),
  addresses: z.array(Address).max(256),
  uptimeSeconds: z.number().min(0),
  agentVersion: z.string().max(64),
  /** The computer name recorded by first-time setup, when there is one. */
  setupComputerName: z.string().max(255).optional(),
});

/** The guest's facts as `info` reports them. */
export type GuestInfo = z.infer<typeof GuestInfoSchema>;

/** One application the guest offers (`apps`). */
export const GuestAppSchema = z.strictObject({
  /** Stable id: the .desktop file id, or the shortcut's path under the Start Menu. */
  id: z.string().min(1).max(512),
  name: z.string().min(1).max(256),
  /** What launches it in the guest (the Exec line without field codes, the shortcut's target). */
  command: z.string().max(4096),
  args: z.array(z.string().max(4096)).max(64),
  /** Where it was found (`/usr/share/applications/gedit.desktop`, `App Paths`). */
  source: z.string().max(1024),
  categories: z.array(z.string().max(64)).max(32).optional(),
  /** The icon as PNG, base64. */
  icon: z
    .strictObject({
      mediaType: z.literal('image/png'),
      data: z.base64().max(Math.ceil(MAX_ICON_BYTES / 3) * 4),
    })
    .optional(),
});

/** One application the guest offers. */
export type GuestApp = z.infer<typeof GuestAppSchema>;

/** The result of `apps`. */
export const GuestAppsSchema = z.strictObject({ apps: z.array(GuestAppSchema).max(2000) });

/** The steps of first-time setup, in the order they run. */
export const SETUP_STEPS = ['computer-name', 'network', 'domain-join'] as const;
/** One step of first-time setup. */
export type SetupStepName = (typeof SETUP_STEPS)[number];

/** A computer name as the agent accepts it: letters, digits and dashes, 1 to 63 characters. */
export const ComputerNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'expected letters, digits and dashes (at most 63)');

/** A DNS name (a suffix such as corp.example): labels of letters, digits and dashes. */
export const DnsNameSchema = z
  .string()
  .max(253)
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    'expected a DNS name such as corp.example',
  );

/**
 * The network settings first-time setup applies in the guest (IPv4): DHCP, or a static address
 * with an optional default gateway; DNS servers and a search suffix with either.
 *
 * @example
 * GuestNetworkSettingsSchema.parse({ address: '10.0.2.15/24', gateway: '10.0.2.2', dns: ['10.0.2.3'] });
 * GuestNetworkSettingsSchema.parse({ dhcp: true, dnsSuffix: 'corp.example' });
 */
export const GuestNetworkSettingsSchema = z
  .strictObject({
    /** The guest's interface (eth0; "Ethernet" on Windows); the first one that is not loopback when unset. */
    interface: z
      .string()
      .regex(/^[A-Za-z0-9._()][A-Za-z0-9 ._()-]{0,63}$/, 'expected an interface name such as eth0 or Ethernet')
      .optional()
      .describe('the interface (eth0; Ethernet on Windows); the first one that is not loopback when unset'),
    dhcp: z.boolean().optional().describe('take the address from DHCP (udhcpc on Linux, netsh source=dhcp on Windows)'),
    address: z
      .cidrv4({ error: 'expected an IPv4 address with its prefix, such as 10.0.2.15/24' })
      .optional()
      .describe('a static IPv4 address with its prefix, such as 10.0.2.15/24'),
    gateway: z
      .ipv4({ error: 'expected an IPv4 address such as 10.0.2.2' })
      .optional()
      .describe('the default gateway, with a static address'),
    dns: z
      .array(z.ipv4({ error: 'expected an IPv4 address such as 10.0.2.3' }))
      .max(3, 'expected at most 3 DNS servers (resolv.conf reads no more)')
      .optional()
      .describe('up to 3 DNS servers (IPv4)'),
    dnsSuffix: DnsNameSchema.optional().describe('the DNS search suffix, such as corp.example (Linux only)'),
  })
  .superRefine((n, ctx) => {
    if (n.dhcp === true && n.address !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: 'expected either dhcp: true or an address, not both',
      });
    }
    if (n.dhcp !== true && n.address === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: 'expected an address such as 10.0.2.15/24, or dhcp: true',
      });
    }
    if (n.gateway !== undefined && n.address === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['gateway'],
        message: 'a gateway goes with a static address (DHCP brings its own)',
      });
    }
  });

/** The network settings first-time setup applies in the guest. */
export type GuestNetworkSettings = z.infer<typeof GuestNetworkSettingsSchema>;

/** The parameters of one setup step (`setup.step`). Secrets travel only here, never in events. */
export const SetupStepParamsSchema = z.discriminatedUnion('step', [
  z.strictObject({
    instance: Token,
    step: z.literal('computer-name'),
    computerName: ComputerNameSchema,
  }),
  z.strictObject({
    instance: Token,
    step: z.literal('network'),
    /** The workspace's network mode and the DNS suffix the guest should search, when set. */
    mode: z.enum(['nat', 'bridged', 'host-only', 'none']),
    dnsSuffix: z.string().max(253).optional(),
    /** What to configure (`spec.firstTimeSetup.network`); without it the step only checks the guest. */
    settings: GuestNetworkSettingsSchema.optional(),
  }),
  z.strictObject({
    instance: Token,
    step: z.literal('domain-join'),
    domain: z.string().min(1).max(253),
    ou: z.string().max(1024).optional(),
    computerName: ComputerNameSchema,
    /** A user and password, or a one-time password for a pre-staged computer account. */
    user: z.string().max(256).optional(),
    secret: z.string().min(1).max(1024),
  }),
]);

/** The parameters of one setup step. */
export type SetupStepParams = z.infer<typeof SetupStepParamsSchema>;

/** What the guest did for one step. */
export const SetupStepResultSchema = z.strictObject({
  step: z.enum(SETUP_STEPS),
  /** `done` now, or `already-done` by an earlier run for the same instance. */
  status: z.enum(['done', 'already-done']),
  message: ShortText,
  rebootRequired: z.boolean(),
});

/** What the guest did for one step. */
export type SetupStepResult = z.infer<typeof SetupStepResultSchema>;

/** What the guest has recorded of first-time setup (`setup.status`). */
export const SetupStatusSchema = z.strictObject({
  instance: Token.optional(),
  completed: z
    .array(z.strictObject({ step: z.enum(SETUP_STEPS), at: z.string().max(64), message: ShortText }))
    .max(SETUP_STEPS.length),
});

/** What the guest has recorded of first-time setup. */
export type SetupStatus = z.infer<typeof SetupStatusSchema>;

/** `open-url`: a URL to open in the guest's browser. */
export const OpenUrlParamsSchema = z.strictObject({ url: z.url({ protocol: /^(https?|ftp|mailto)$/ }).max(8192) });

/** `exec`: an allow-listed maintenance command by id, with arguments the allow-list permits. */
export const ExecParamsSchema = z.strictObject({
  command: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a command id'),
  args: z.array(z.string().max(4096)).max(64).default([]),
});

/** The outcome of an allow-listed command. Output is cut at 64 KiB each. */
export const ExecResultSchema = z.strictObject({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
});

/** The outcome of an allow-listed command. */
export type ExecResult = z.infer<typeof ExecResultSchema>;

/**
 * The Windows Remote Desktop policies `rdp-policy.apply` may set, all REG_DWORD values under
 * `HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services` (the key is fixed by the
 * agent, never sent).
 */
export const RDP_POLICY_VALUES = [
  'fDisableClip',
  'fDisableCdm',
  'fDisableCpm',
  'fEnableSmartCard',
  'fDisablePNPRedir',
  'fDisableAudioCapture',
  'fDisableCam',
  'fDisableCcm',
  'fDisableLPT',
] as const;

/** `rdp-policy.apply`: Remote Desktop policy values to set in a Windows guest (0 or 1 each). */
export const RdpPolicyParamsSchema = z.strictObject({
  values: z
    .array(z.strictObject({ name: z.enum(RDP_POLICY_VALUES), value: z.union([z.literal(0), z.literal(1)]) }))
    .min(1)
    .max(RDP_POLICY_VALUES.length),
});

/** What `rdp-policy.apply` set. */
export const RdpPolicyResultSchema = z.strictObject({ applied: z.array(z.string().max(64)).max(16) });

/** `url-to-host` event: the guest asks the host to open a URL. */
export const UrlToHostEventSchema = z.strictObject({ url: z.string().min(1).max(8192) });

/** An account name as a sign-in takes it: one line, no control characters. */
const AccountName = z
  .string()
  .min(1, 'expected a user name')
  .max(256)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .regex(/^[^\0-\x1f\x7f]+$/, 'expected a user name on one line, without control characters');

/**
 * `sign-in` (single sign-on into the guest, `spec.guestSignIn`): the credentials the user signed
 * in to Tandem with, handed to the agent in memory. They travel only in this request: never in an
 * event, a log line, a file, argv or the environment, on either end.
 *
 * @example
 * SignInParamsSchema.parse({ user: 'ana', password: '...' });
 */
export const SignInParamsSchema = z.strictObject({
  user: AccountName,
  /** The account's domain (Windows: the NetBIOS or DNS domain name); absent for a local account. */
  domain: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9._-]+$/, 'expected a domain name such as CORP or corp.example')
    .optional(),
  password: z.string().min(1, 'expected a password').max(1024, 'expected a password of at most 1024 characters'),
});
/** The params of `sign-in`. */
export type SignInParams = z.infer<typeof SignInParamsSchema>;

/** What the agent did with the credentials: who is signed in, how, and the session it started. */
export const SignInResultSchema = z.strictObject({
  user: z.string().max(256),
  /** The guest's mechanism, such as `unix_chkpwd+su` on Linux or `LogonUser` on Windows. */
  method: z.string().max(64),
  message: ShortText,
  /** The session's first process in the guest, when the agent started one. */
  sessionPid: z.number().int().positive().optional(),
});
/** The result of `sign-in`. */
export type SignInResult = z.infer<typeof SignInResultSchema>;

const Empty = z.strictObject({}).optional();

/** Every method of protocol version 1: its capability, params and result schemas. */
export const METHODS = {
  ping: { capability: undefined, params: Empty, result: z.strictObject({}) },
  info: { capability: 'info', params: Empty, result: GuestInfoSchema },
  apps: { capability: 'apps', params: Empty, result: GuestAppsSchema },
  'setup.status': { capability: 'first-time-setup', params: Empty, result: SetupStatusSchema },
  'setup.step': { capability: 'first-time-setup', params: SetupStepParamsSchema, result: SetupStepResultSchema },
  'open-url': { capability: 'open-url', params: OpenUrlParamsSchema, result: z.strictObject({ opened: z.boolean() }) },
  exec: { capability: 'exec', params: ExecParamsSchema, result: ExecResultSchema },
  'rdp-policy.apply': { capability: 'rdp-policy', params: RdpPolicyParamsSchema, result: RdpPolicyResultSchema },
  'sign-in': { capability: 'sign-in', params: SignInParamsSchema, result: SignInResultSchema },
} as const satisfies Record<string, { capability: GuestCapability | undefined; params: z.ZodType; result: z.ZodType }>;

/** A method name of protocol version 1. */
export type GuestMethod = keyof typeof METHODS;
/** The params a method takes. */
export type MethodParams<M extends GuestMethod> = z.input<(typeof METHODS)[M]['params']>;
/** The result a method gives. */
export type MethodResult<M extends GuestMethod> = z.infer<(typeof METHODS)[M]['result']>;

/** Events of protocol version 1: their capability and data schemas. */
export const GUEST_EVENTS = {
  'url-to-host': { capability: 'url-to-host', data: UrlToHostEventSchema },
} as const;
