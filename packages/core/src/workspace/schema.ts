import { z } from 'zod';
import { GuestNetworkSettingsSchema } from '../guest/protocol.js';
import {
  CidrSchema,
  DurationSchema,
  ProvisioningSchema,
  TransferRuleSchema,
  UsagePolicySchema,
  WebRedirectionSchema,
} from './policy-schema.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** Memory: a fixed size, or sized by the endpoint's RAM between a minimum and a maximum. */
export const MemorySchema = z.union([
  z.strictObject({ fixedMiB: z.number().int().min(16).describe('always this much') }),
  z
    .strictObject({
      minMiB: z.number().int().min(16),
      maxMiB: z.number().int().min(16),
      hostFraction: z.number().gt(0).max(0.9).describe('share of the host RAM, clamped to [minMiB, maxMiB]'),
    })
    .refine((m) => m.minMiB <= m.maxMiB, { message: 'expected minMiB <= maxMiB', path: ['maxMiB'] }),
]);

const NetworkProfileSchema = z.strictObject({
  when: z
    .union([z.strictObject({ dnsSuffix: z.string().min(1) }), z.strictObject({ subnet: CidrSchema })])
    .describe('the host network this profile applies to'),
  mode: z.enum(['nat', 'bridged', 'host-only', 'none']),
  bridge: z.string().optional(),
});

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/**
 * Guest wake-to-patch (MED-V v2's GuestUpdateTime and GuestUpdateDuration): windows in which the
 * host agent starts or resumes the workspace headless while no user is logged in to the desktop,
 * lets the guest update, and puts the VM back as it was.
 */
export const MaintenanceSchema = z.strictObject({
  windows: z
    .array(
      z.strictObject({
        days: z
          .array(z.enum(WEEKDAYS))
          .min(1)
          .default([...WEEKDAYS])
          .describe('days of the week the window opens on (default every day)'),
        at: z
          .string()
          .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day as HH:MM, such as 03:00')
          .describe('when the window opens, HH:MM'),
        duration: DurationSchema.describe('how long the guest gets to update (GuestUpdateDuration)'),
      }),
    )
    .min(1),
  timeZone: z.enum(['local', 'utc']).default('local').describe("whether `at` is the host's local time or UTC"),
  command: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a command id')
    .optional()
    .describe("the guest agent's allow-listed maintenance command to run in the window (needs the exec capability)"),
});

/** The workspace file (`tandem.workspace.yaml`). */
export const WorkspaceSchema = z
  .strictObject({
    apiVersion: z.literal('tandem/v1'),
    kind: z.literal('Workspace'),
    metadata: z.strictObject({
      name: z.string().regex(NAME, 'expected a lower-case name of letters, digits and dashes (at most 63)'),
      version: z.string().regex(SEMVER, 'expected a semantic version such as 3.2.0'),
      description: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
    }),
    spec: z.strictObject({
      image: z.strictObject({
        source: z
          .string()
          .min(1)
          .describe('path of the disk image, relative to the workspace file, or a repository reference'),
        format: z.enum(['qcow2', 'raw', 'vdi', 'vhdx', 'vmdk']),
        encryption: z
          .strictObject({ keyId: z.string().min(1) })
          .optional()
          .describe('the image is encrypted under this key'),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits')
          .optional(),
      }),
      boot: z
        .strictObject({
          kernel: z.string().min(1).describe('path of the kernel image, relative to the workspace file'),
          initrd: z.string().min(1).optional().describe('path of the initramfs, relative to the workspace file'),
          cmdline: z
            .string()
            // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
            .regex(/^[^\0-\x1f]*$/, 'expected a kernel command line on one line, without control characters')
            .optional()
            .describe('the kernel command line, such as console=ttyS0'),
        })
        .optional()
        .describe('direct kernel boot: the hypervisor loads this kernel instead of booting the disk (libvirt only)'),
      guestOs: z.enum(['windows', 'linux', 'other']).default('windows'),
      hardware: z.strictObject({
        memory: MemorySchema,
        cpus: z.number().int().min(1).max(64).default(1),
        guestChannel: z.boolean().default(true),
      }),
      network: z
        .strictObject({
          mode: z.enum(['nat', 'bridged', 'host-only', 'none']).default('nat'),
          bridge: z.string().optional(),
          macAddress: z
            .string()
            .regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/, 'expected a MAC address such as 52:54:00:12:34:56')
            .optional(),
          profiles: z
            .array(NetworkProfileSchema)
            .default([])
            .describe('network settings per host network; first match wins'),
        })
        .refine((n) => n.mode !== 'bridged' || n.bridge !== undefined, {
          message: 'expected a bridge name when mode is bridged',
          path: ['bridge'],
        })
        .default({ mode: 'nat', profiles: [] }),
      firstTimeSetup: z
        .strictObject({
          computerName: z
            .string()
            .min(1)
            .describe('template: {hostName}, {userName}, {random4} and {serial} are replaced')
            .optional(),
          joinDomain: z
            .strictObject({ domain: z.string().min(1), ou: z.string().optional(), credentialRef: z.string().min(1) })
            .optional(),
          network: GuestNetworkSettingsSchema.optional().describe(
            'network settings the guest agent applies: { dhcp: true } or { address: 10.0.2.15/24, gateway, dns, dnsSuffix }',
          ),
          locale: z.string().optional(),
          timeZone: z.string().optional(),
          runOnce: z.array(z.string()).default([]),
          timeout: DurationSchema.default('PT30M'),
        })
        .optional(),
      guestSignIn: z
        .boolean()
        .default(false)
        .describe(
          'single sign-on: hand the credentials the user signed in to Tandem with to the guest agent (in memory), which signs the user in to the guest',
        ),
      display: z
        .strictObject({
          mode: z.enum(['seamless', 'full-desktop']).default('seamless'),
          frameColor: z
            .string()
            .regex(/^#[0-9a-fA-F]{6}$/, 'expected a colour as #rrggbb, such as #d9534f')
            .optional(),
        })
        .default({ mode: 'seamless' }),
      publishedApps: z
        .array(
          z.strictObject({
            id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lower-case id of letters, digits, dots, dashes'),
            name: z.string().min(1),
            command: z.string().min(1),
            args: z.array(z.string()).default([]),
            workingDirectory: z.string().optional(),
            startMenuFolder: z.string().optional(),
            fileTypes: z.array(z.string().regex(/^\.[A-Za-z0-9]+$/, 'expected an extension such as .erp')).default([]),
            icon: z.string().optional(),
          }),
        )
        .default([])
        .refine((apps) => new Set(apps.map((a) => a.id)).size === apps.length, {
          message: 'expected each published app id to be unique',
        }),
      webRedirection: WebRedirectionSchema.optional(),
      dataTransfer: z.array(TransferRuleSchema).default([]),
      usage: UsagePolicySchema.default({ lockOnHostSleep: true, mode: 'persistent', onSessionEnd: 'shutdown' }),
      provisioning: ProvisioningSchema.default({ users: [], groups: [] }),
      maintenance: MaintenanceSchema.optional().describe('guest wake-to-patch windows (MED-V v2)'),
    }),
  })
  .describe('A Tandem workspace: an image and the policy it runs under');

/** A workspace as written in its file (defaults not yet applied). */
export type WorkspaceInput = z.input<typeof WorkspaceSchema>;
/** A validated workspace, defaults applied. */
export type Workspace = z.output<typeof WorkspaceSchema>;
/** A published application. */
export type PublishedApp = Workspace['spec']['publishedApps'][number];
/** Guest wake-to-patch windows. */
export type MaintenancePolicy = z.output<typeof MaintenanceSchema>;
/** The hardware memory rule. */
export type MemoryRule = z.output<typeof MemorySchema>;

export { DurationSchema };
