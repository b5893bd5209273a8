import type { CrossingDirection } from '../policy/types.js';
import type { ContentType, TransferAction, TransferDecision, TransferRequest } from '../policy/transfer.js';

/**
 * The data-transfer policy as the transports enforce it: each channel and direction (and, for
 * the clipboard, each content type) resolved to allow or deny before a launch, then translated
 * into each transport's own settings. Whatever the policy does not allow is denied explicitly,
 * also where the transport's own default is to allow (FreeRDP and Xpra share the clipboard by
 * default).
 */

/** The channels a transport can carry. */
export const ENFORCED_CHANNELS = ['clipboard', 'file', 'print', 'usb', 'audio', 'smartcard'] as const;
/** One of {@link ENFORCED_CHANNELS}. */
export type EnforcedChannel = (typeof ENFORCED_CHANNELS)[number];
/** Allowed or not, for one launch (an `ask` has been answered, or denied). */
export type Permission = 'allow' | 'deny';

const DIRECTIONS: readonly CrossingDirection[] = ['host-to-guest', 'guest-to-host'];
const CONTENT: readonly ContentType[] = ['text', 'image', 'files'];

/** The resolved policy of one launch. */
export interface TransferPermissions {
  readonly clipboard: Readonly<Record<CrossingDirection, Readonly<Record<ContentType, Permission>>>>;
  readonly file: Readonly<Record<CrossingDirection, Permission>>;
  readonly print: Readonly<Record<CrossingDirection, Permission>>;
  readonly usb: Readonly<Record<CrossingDirection, Permission>>;
  readonly audio: Readonly<Record<CrossingDirection, Permission>>;
  readonly smartcard: Readonly<Record<CrossingDirection, Permission>>;
}

/** Everything denied: what a launch without a policy gets. */
export const DENY_ALL: TransferPermissions = permissionsFrom(() => 'deny');

/** Builds permissions from a function of (channel, direction, content type).
 *
 * @example
 * ```ts
 * const clipboardIn = permissionsFrom((c, d) => (c === 'clipboard' && d === 'host-to-guest' ? 'allow' : 'deny'));
 * ```
 */
export function permissionsFrom(
  decide: (channel: EnforcedChannel, direction: CrossingDirection, contentType?: ContentType) => Permission,
): TransferPermissions {
  const dir = (c: EnforcedChannel): Record<CrossingDirection, Permission> => ({
    'host-to-guest': decide(c, 'host-to-guest'),
    'guest-to-host': decide(c, 'guest-to-host'),
  });
  const clip = (d: CrossingDirection): Record<ContentType, Permission> => ({
    text: decide('clipboard', d, 'text'),
    image: decide('clipboard', d, 'image'),
    files: decide('clipboard', d, 'files'),
  });
  return {
    clipboard: { 'host-to-guest': clip('host-to-guest'), 'guest-to-host': clip('guest-to-host') },
    file: dir('file'),
    print: dir('print'),
    usb: dir('usb'),
    audio: dir('audio'),
    smartcard: dir('smartcard'),
  };
}

/** Every request a launch asks the policy about. */
export function launchTransferRequests(): TransferRequest[] {
  const out: TransferRequest[] = [];
  for (const direction of DIRECTIONS) {
    for (const contentType of CONTENT) out.push({ channel: 'clipboard', direction, contentType });
    for (const channel of ENFORCED_CHANNELS.filter((c) => c !== 'clipboard')) out.push({ channel, direction });
  }
  return out;
}

/** An `ask` decision, and how the asker answered it. */
export type AskAnswer = (decision: TransferDecision) => Promise<Permission>;

/** The resolved permissions and the decisions they came from. */
export interface ResolvedTransferPolicy {
  readonly permissions: TransferPermissions;
  readonly decisions: readonly { readonly decision: TransferDecision; readonly permission: Permission }[];
}

/**
 * Asks the policy about every channel, direction and clipboard content type, and resolves each
 * `ask` with `ask` (see {@link TransferAsker}); with no asker an `ask` is denied.
 *
 * @example
 * ```ts
 * const { permissions } = await resolveTransferPolicy(engine.forSubject({ user: 'ada' }));
 * xpraPolicyArgs(permissions); // ['--clipboard=yes', '--clipboard-direction=to-server', ...]
 * ```
 */
export async function resolveTransferPolicy(
  policy: { decideTransfer(request: TransferRequest): TransferDecision },
  ask?: AskAnswer,
): Promise<ResolvedTransferPolicy> {
  const decisions: { decision: TransferDecision; permission: Permission }[] = [];
  const table = new Map<string, Permission>();
  for (const request of launchTransferRequests()) {
    const decision = policy.decideTransfer(request);
    const permission = await toPermission(decision.outcome, decision, ask);
    decisions.push({ decision, permission });
    table.set(key(request.channel as EnforcedChannel, request.direction, request.contentType), permission);
  }
  return {
    permissions: permissionsFrom((c, d, t) => table.get(key(c, d, t)) ?? 'deny'),
    decisions,
  };
}

function key(c: EnforcedChannel, d: CrossingDirection, t?: ContentType): string {
  return `${c}|${d}|${t ?? ''}`;
}

async function toPermission(outcome: TransferAction, decision: TransferDecision, ask?: AskAnswer): Promise<Permission> {
  if (outcome === 'allow') return 'allow';
  if (outcome === 'deny' || !ask) return 'deny';
  return (await ask(decision)) === 'allow' ? 'allow' : 'deny';
}

/** A clipboard direction is open only when every content type may cross (no transport filters by type). */
export function clipboardOpen(p: TransferPermissions, d: CrossingDirection): boolean {
  return CONTENT.every((t) => p.clipboard[d][t] === 'allow');
}

/** Something a transport could not enforce as finely as the policy says, and what was done instead. */
export interface EnforcementNote {
  /** The channel enforced less finely, or `guest`: the policy inside the guest was not set. */
  readonly channel: EnforcedChannel | 'guest';
  readonly note: string;
}

/** A transport's settings for one launch. */
export interface TransportPolicy {
  /** Arguments for the transport's client (Xpra, FreeRDP). */
  readonly args: readonly string[];
  /** Where the transport enforces less finely than the policy, and denied more to stay safe. */
  readonly notes: readonly EnforcementNote[];
}

function partialClipboardNotes(p: TransferPermissions, transport: string): EnforcementNote[] {
  const notes: EnforcementNote[] = [];
  for (const d of DIRECTIONS) {
    const allowed = CONTENT.filter((t) => p.clipboard[d][t] === 'allow');
    if (allowed.length > 0 && allowed.length < CONTENT.length) {
      notes.push({
        channel: 'clipboard',
        note: `${transport} cannot filter the clipboard by content type: ${d} is denied, although the policy allows ${allowed.join(', ')}`,
      });
    }
  }
  return notes;
}

/**
 * Xpra (3.x) client arguments. Clipboard by direction (`--clipboard-direction`), file
 * transfer and printing as switches, speaker (guest to host) and microphone (host to guest)
 * separately; the webcam, D-Bus forwarding and Xpra's own URL opening are always off (Tandem
 * redirects URLs itself). Xpra carries no USB and no smart cards.
 *
 * @example
 * ```ts
 * xpraPolicyArgs(DENY_ALL).args; // ['--clipboard=no', '--clipboard-direction=disabled', '--file-transfer=no', ...]
 * ```
 */
export function xpraPolicyArgs(p: TransferPermissions): TransportPolicy {
  const toServer = clipboardOpen(p, 'host-to-guest');
  const toClient = clipboardOpen(p, 'guest-to-host');
  const direction = toServer && toClient ? 'both' : toServer ? 'to-server' : toClient ? 'to-client' : 'disabled';
  const notes = partialClipboardNotes(p, 'Xpra');
  const files = p.file['host-to-guest'] === 'allow' && p.file['guest-to-host'] === 'allow';
  if (!files && (p.file['host-to-guest'] === 'allow' || p.file['guest-to-host'] === 'allow')) {
    notes.push({
      channel: 'file',
      note: 'Xpra file transfer is one switch for both directions: denied, although the policy allows one direction',
    });
  }
  return {
    args: [
      `--clipboard=${direction === 'disabled' ? 'no' : 'yes'}`,
      `--clipboard-direction=${direction}`,
      `--file-transfer=${files ? 'yes' : 'no'}`,
      `--open-files=no`,
      `--printing=${p.print['guest-to-host'] === 'allow' ? 'yes' : 'no'}`,
      `--speaker=${p.audio['guest-to-host'] === 'allow' ? 'on' : 'disabled'}`,
      `--microphone=${p.audio['host-to-guest'] === 'allow' ? 'on' : 'disabled'}`,
      '--webcam=no',
      '--open-url=no',
      '--dbus-proxy=no',
    ],
    notes,
  };
}

/**
 * FreeRDP (2.x and 3.x) client arguments. The clipboard channel is all or nothing (`+clipboard`
 * only when both directions allow every content type; `-clipboard` otherwise), drives are
 * never redirected by FreeRDP itself (`-drives`, `-home-drive`; files cross through the shared
 * folder), a printer, the microphone, USB devices and smart cards only when allowed, and sound
 * is played on the host only when guest-to-host audio is allowed (`/audio-mode:2` otherwise).
 *
 * @example
 * ```ts
 * freeRdpPolicyArgs(DENY_ALL).args; // ['-clipboard', '-drives', '-home-drive', '/audio-mode:2']
 * ```
 */
export function freeRdpPolicyArgs(p: TransferPermissions): TransportPolicy {
  const both = clipboardOpen(p, 'host-to-guest') && clipboardOpen(p, 'guest-to-host');
  const notes = partialClipboardNotes(p, 'FreeRDP');
  if (!both && (clipboardOpen(p, 'host-to-guest') || clipboardOpen(p, 'guest-to-host'))) {
    notes.push({
      channel: 'clipboard',
      note: 'the RDP clipboard channel has no direction: denied both ways, although the policy allows one',
    });
  }
  const args = [both ? '+clipboard' : '-clipboard', '-drives', '-home-drive'];
  if (p.print['guest-to-host'] === 'allow') args.push('/printer');
  args.push(p.audio['guest-to-host'] === 'allow' ? '/sound' : '/audio-mode:2');
  if (p.audio['host-to-guest'] === 'allow') args.push('/microphone');
  if (p.smartcard['host-to-guest'] === 'allow') args.push('/smartcard');
  if (p.usb['host-to-guest'] === 'allow') {
    notes.push({
      channel: 'usb',
      note: 'USB is allowed, but FreeRDP redirects only devices named on its command line: none named',
    });
  }
  return { args, notes };
}

/** `.rdp` file settings (mstsc, Hyper-V enhanced sessions), as `[name, type, value]`.
 *
 * @example
 * ```ts
 * rdpFilePolicySettings(DENY_ALL).settings[0]; // ['redirectclipboard', 'i', 0]
 * ```
 */
export function rdpFilePolicySettings(p: TransferPermissions): {
  settings: [string, 's' | 'i', string | number][];
  notes: EnforcementNote[];
} {
  const both = clipboardOpen(p, 'host-to-guest') && clipboardOpen(p, 'guest-to-host');
  return {
    settings: [
      ['redirectclipboard', 'i', both ? 1 : 0],
      ['redirectprinters', 'i', p.print['guest-to-host'] === 'allow' ? 1 : 0],
      ['redirectdrives', 'i', 0],
      ['drivestoredirect', 's', ''],
      ['redirectsmartcards', 'i', p.smartcard['host-to-guest'] === 'allow' ? 1 : 0],
      ['usbdevicestoredirect', 's', p.usb['host-to-guest'] === 'allow' ? '*' : ''],
      ['devicestoredirect', 's', p.usb['host-to-guest'] === 'allow' ? '*' : ''],
      ['audiomode', 'i', p.audio['guest-to-host'] === 'allow' ? 0 : 2],
      ['audiocapturemode', 'i', p.audio['host-to-guest'] === 'allow' ? 1 : 0],
      ['camerastoredirect', 's', ''],
      ['redirectcomports', 'i', 0],
      ['redirectposdevices', 'i', 0],
    ],
    notes: partialClipboardNotes(p, 'RDP'),
  };
}

/**
 * VBoxManage `controlvm` commands for a running VM: the shared clipboard and drag and drop by
 * direction, clipboard file transfers, and audio in and out. VirtualBox has no printer
 * redirection; USB is a controller in the VM's definition (turn it off with `modifyvm` while
 * the VM is stopped), so the notes say so when the policy denies it.
 *
 * @example
 * ```ts
 * vboxPolicyCommands('erp-vm', DENY_ALL).commands[0]; // ['controlvm', 'erp-vm', 'clipboard', 'mode', 'disabled']
 * ```
 */
export function vboxPolicyCommands(
  vm: string,
  p: TransferPermissions,
): { commands: string[][]; notes: EnforcementNote[] } {
  const h2g = clipboardOpen(p, 'host-to-guest');
  const g2h = clipboardOpen(p, 'guest-to-host');
  const mode = (a: boolean, b: boolean): string =>
    a && b ? 'bidirectional' : a ? 'hosttoguest' : b ? 'guesttohost' : 'disabled';
  const notes = partialClipboardNotes(p, 'VirtualBox');
  if (p.usb['host-to-guest'] === 'deny') {
    notes.push({
      channel: 'usb',
      note: "VirtualBox USB is part of the VM's definition: the VM must be defined without a USB controller (modifyvm --usb-ohci off --usb-ehci off --usb-xhci off)",
    });
  }
  return {
    commands: [
      ['controlvm', vm, 'clipboard', 'mode', mode(h2g, g2h)],
      [
        'controlvm',
        vm,
        'clipboard',
        'filetransfers',
        h2g && g2h && p.file['host-to-guest'] === 'allow' && p.file['guest-to-host'] === 'allow' ? 'on' : 'off',
      ],
      ['controlvm', vm, 'draganddrop', mode(p.file['host-to-guest'] === 'allow', p.file['guest-to-host'] === 'allow')],
      ['controlvm', vm, 'audioin', p.audio['host-to-guest'] === 'allow' ? 'on' : 'off'],
      ['controlvm', vm, 'audioout', p.audio['guest-to-host'] === 'allow' ? 'on' : 'off'],
    ],
    notes,
  };
}

/** One registry value of the Windows Remote Desktop policies, set inside the guest. */
export interface GuestRegistryValue {
  readonly key: string;
  readonly name: string;
  readonly type: 'REG_DWORD';
  readonly value: number;
}

const TS_POLICIES = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services';

/**
 * The Remote Desktop Services policies a Windows guest must hold as well, because a user could
 * connect with an RDP client of their own that ignores Tandem's arguments: `fDisableClip`,
 * `fDisableCdm` (drives), `fDisableCpm` (printers), `fEnableSmartCard`, `fDisablePNPRedir`
 * (USB and other Plug and Play devices), `fDisableAudioCapture`, `fDisableCam` (audio
 * playback), `fDisableCcm` and `fDisableLPT` (ports, always off). The guest agent sets them.
 *
 * @example
 * ```ts
 * windowsGuestPolicy(DENY_ALL).find((v) => v.name === 'fDisableClip')?.value; // 1
 * ```
 */
export function windowsGuestPolicy(p: TransferPermissions): GuestRegistryValue[] {
  const v = (name: string, value: number): GuestRegistryValue => ({ key: TS_POLICIES, name, type: 'REG_DWORD', value });
  const clip = clipboardOpen(p, 'host-to-guest') && clipboardOpen(p, 'guest-to-host');
  const files = p.file['host-to-guest'] === 'allow' && p.file['guest-to-host'] === 'allow';
  return [
    v('fDisableClip', clip ? 0 : 1),
    v('fDisableCdm', files ? 0 : 1),
    v('fDisableCpm', p.print['guest-to-host'] === 'allow' ? 0 : 1),
    v('fEnableSmartCard', p.smartcard['host-to-guest'] === 'allow' ? 1 : 0),
    v('fDisablePNPRedir', p.usb['host-to-guest'] === 'allow' ? 0 : 1),
    v('fDisableAudioCapture', p.audio['host-to-guest'] === 'allow' ? 0 : 1),
    v('fDisableCam', p.audio['guest-to-host'] === 'allow' ? 0 : 1),
    v('fDisableCcm', 1),
    v('fDisableLPT', 1),
  ];
}
