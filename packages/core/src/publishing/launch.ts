import { realpathSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import type { LaunchHandle, LaunchRequest, SeamlessTransport } from '../adapter/types.js';
import { InvalidInputError, NotFoundError, PolicyDeniedError, UnsupportedCapabilityError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import { toDecisionEvent } from '../policy/decision.js';
import type { TransferDecision, TransferRequest } from '../policy/transfer.js';
import type { Session } from '../session/session.js';
import type { PublishedApp } from '../workspace/schema.js';
import {
  freeRdpPolicyArgs,
  resolveTransferPolicy,
  vboxPolicyCommands,
  xpraPolicyArgs,
  type AskAnswer,
  type EnforcementNote,
  type ResolvedTransferPolicy,
} from './enforcement.js';
import { launcherWmClass } from './freedesktop.js';

/** A host folder the guest sees as one of its own (a shared folder, a mapped drive). */
export interface SharedFolderView {
  /** The folder on the host. */
  readonly hostPath: string;
  /** The same folder as the guest names it: `Z:\` or `/mnt/host`. */
  readonly guestPath: string;
  /** How guest paths are written (default: by the guest path's look). */
  readonly guestStyle?: 'windows' | 'posix';
}

/** What {@link launchApp} needs. */
export interface AppLaunchOptions {
  readonly session: Session;
  /** The published app's id. */
  readonly appId: string;
  /** Host files to open in the app; each must lie in {@link sharedFolder}. */
  readonly files?: readonly string[];
  /** The policy in force for the user (`engine.forSubject(...)`). */
  readonly policy: { decideTransfer(request: TransferRequest): TransferDecision };
  /** Answers `ask` decisions (see TransferAsker); without it they are denied. */
  readonly ask?: AskAnswer;
  /** Without {@link ask}: why no one can be asked, said in each denied ask's event (default "no one to ask"). */
  readonly noAskReason?: string;
  readonly sharedFolder?: SharedFolderView;
  /** Apps besides the workspace's own (discovered in the guest). */
  readonly extraApps?: readonly PublishedApp[];
  readonly transport?: SeamlessTransport;
  readonly credentials?: LaunchRequest['credentials'];
  /** Checks the user before a locked session is unlocked (see Session.unlock). */
  readonly verifyUnlock?: () => Promise<boolean>;
  /** Where each enforced decision is published as `policy.decision`. */
  readonly events?: EventBus;
  /**
   * For a Windows guest: applies the policy inside the guest too, before the app starts (the
   * Remote Desktop policies, fDisableClip and the rest, through the guest agent: see
   * {@link applyWindowsGuestPolicy}), so an RDP client of the user's own is held to it as well.
   * Without it, or when it fails, the launch goes on and a `guest` note says the guest was not
   * configured.
   */
  readonly guestPolicy?: (permissions: ResolvedTransferPolicy['permissions']) => Promise<readonly string[]>;
  /** With {@link guestPolicy}: a failure to set it refuses the launch (PolicyDeniedError) instead of a note. */
  readonly guestPolicyRequired?: boolean;
}

/** A launched app. */
export interface AppLaunch {
  readonly handle: LaunchHandle;
  readonly request: LaunchRequest;
  readonly policy: ResolvedTransferPolicy;
  /** What the session had to do first: `started`, `resumed`, `unlocked`, or nothing. */
  readonly sessionAction: 'started' | 'resumed' | 'unlocked' | null;
  /** Whether the transport draws the workspace's coloured frame, and if not, why. */
  readonly frame: { readonly color: string | null; readonly drawn: boolean; readonly note?: string };
  /** Where the transport enforces less finely than the policy (and denied more). */
  readonly notes: readonly EnforcementNote[];
  /** For a Windows guest: the Remote Desktop policy values set inside it (`fDisableClip=1`, ...), or null when not set. */
  readonly guestPolicy: readonly string[] | null;
}

/** Transports that draw a coloured frame around each window (Xpra `--border`). */
const FRAMED: readonly SeamlessTransport[] = ['xpra'];

/**
 * Launches a published app: brings the session up first (start, resume, or unlock), resolves
 * the data-transfer policy for this launch (asking where the policy says ask), maps host files
 * to the guest's view of the shared folder where the file policy allows it, and asks the
 * adapter's seamless transport to show the app with the policy in its own settings.
 *
 * @example
 * ```ts
 * const launch = await launchApp({ session, appId: 'erp', policy: engine.forSubject({ user: 'ada' }) });
 * console.log(launch.handle.argv.join(' '));
 * await launch.handle.exited;
 * ```
 */
export async function launchApp(o: AppLaunchOptions): Promise<AppLaunch> {
  const { session } = o;
  const ws = session.workspace;
  const apps = [...ws.spec.publishedApps, ...(o.extraApps ?? [])];
  const app = apps.find((a) => a.id === o.appId);
  if (!app) {
    throw new NotFoundError(
      `Workspace "${ws.metadata.name}" publishes no app "${o.appId}" (it has: ${apps.map((a) => a.id).join(', ') || 'none'}).`,
      { details: { workspace: ws.metadata.name, app: o.appId, known: apps.map((a) => a.id) } },
    );
  }
  const seamless = session.adapter.seamless;
  if (!seamless || session.adapter.capabilities.seamlessWindows.length === 0) {
    throw new UnsupportedCapabilityError(
      `The ${session.adapter.name} adapter has no seamless windows, so it cannot show "${app.name}" on the host desktop.`,
      { details: { adapter: session.adapter.name } },
    );
  }
  const resolved = await resolveTransferPolicy(o.policy, o.ask);
  const context = { workspace: ws.metadata.name, session: session.id };
  for (const { decision } of resolved.decisions) {
    // An asker publishes what it was answered; without one, an ask is a deny said here.
    if (decision.outcome !== 'ask') o.events?.publish('policy.decision', toDecisionEvent(decision), context);
    else if (!o.ask) {
      o.events?.publish(
        'policy.decision',
        {
          ...toDecisionEvent(decision),
          outcome: 'deny',
          reason: `${decision.reason}; ${o.noAskReason ?? 'no one to ask'}: deny`,
        },
        context,
      );
    }
  }
  const files = mapFiles(o.files ?? [], o.sharedFolder, resolved);

  let sessionAction: AppLaunch['sessionAction'] = null;
  if (session.state === 'stopped' || session.state === 'crashed') {
    await session.start();
    sessionAction = 'started';
  } else if (session.state === 'suspended') {
    await session.resume();
    sessionAction = 'resumed';
  }
  if (session.state === 'locked') {
    await session.unlock(o.verifyUnlock);
    sessionAction = 'unlocked';
  }

  // Inside a Windows guest the policy is set before the app starts, so no window of it ever runs
  // under a looser one.
  let guestPolicy: readonly string[] | null = null;
  let guestNote: EnforcementNote | undefined;
  if (ws.spec.guestOs === 'windows') {
    if (!o.guestPolicy)
      guestNote = {
        channel: 'guest',
        note: 'the Remote Desktop policies inside the guest were not set (no guest agent connection given)',
      };
    else {
      try {
        guestPolicy = await o.guestPolicy(resolved.permissions);
      } catch (err) {
        if (o.guestPolicyRequired) {
          throw new PolicyDeniedError(
            `The policy could not be set inside the guest of workspace "${ws.metadata.name}", so "${app.name}" does not start: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err, details: { workspace: ws.metadata.name, app: app.id } },
          );
        }
        guestNote = {
          channel: 'guest',
          note: `the Remote Desktop policies inside the guest were not set: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
    }
  }

  const frameColor = ws.spec.display.frameColor;
  const request: LaunchRequest = {
    appId: app.id,
    command: app.command,
    args: [...app.args, ...files],
    ...(app.workingDirectory !== undefined ? { workingDirectory: app.workingDirectory } : {}),
    mode: ws.spec.display.mode,
    ...(frameColor !== undefined ? { frameColor } : {}),
    ...(o.transport ? { transport: o.transport } : {}),
    ...(o.credentials ? { credentials: o.credentials } : {}),
    transfer: resolved.permissions,
    windowClass: launcherWmClass(ws.metadata.name, app.id),
  };
  const handle = await seamless.launch(session.vm, request);
  const drawn = frameColor !== undefined && FRAMED.includes(handle.transport);
  const frame: AppLaunch['frame'] = {
    color: frameColor ?? null,
    drawn,
    ...(frameColor !== undefined && !drawn
      ? {
          note: `${handle.transport} draws no coloured frame: the app's windows have the class ${request.windowClass}, so a window-manager rule can draw ${frameColor} around them`,
        }
      : {}),
  };
  const transportNotes =
    handle.transport === 'xpra'
      ? xpraPolicyArgs(resolved.permissions).notes
      : handle.transport === 'rdp-remoteapp'
        ? freeRdpPolicyArgs(resolved.permissions).notes
        : handle.transport === 'vbox-seamless'
          ? vboxPolicyCommands(session.vm, resolved.permissions).notes
          : [];
  const notes = guestNote ? [...transportNotes, guestNote] : transportNotes;
  return { handle, request, policy: resolved, sessionAction, frame, notes, guestPolicy };
}

function mapFiles(files: readonly string[], folder: SharedFolderView | undefined, p: ResolvedTransferPolicy): string[] {
  if (files.length === 0) return [];
  if (p.permissions.file['host-to-guest'] !== 'allow') {
    const d = p.decisions.find(
      (x) => x.decision.request.channel === 'file' && x.decision.request.direction === 'host-to-guest',
    );
    throw new PolicyDeniedError(
      `Opening host files in the guest is not allowed: ${d?.decision.reason ?? 'file host-to-guest is denied'}. Copy what the app needs into the guest another way your policy allows.`,
      { details: { files: [...files] } },
    );
  }
  if (!folder) {
    throw new InvalidInputError(
      'Host files can reach the guest only through a shared folder, and none is configured: pass one (tandem apps launch --shared-folder HOST=GUEST).',
      { details: { files: [...files] } },
    );
  }
  const root = realpathSync(resolve(folder.hostPath));
  const style = folder.guestStyle ?? (/^[A-Za-z]:|\\/.test(folder.guestPath) ? 'windows' : 'posix');
  return files.map((f) => {
    let real: string;
    try {
      real = realpathSync(resolve(f));
    } catch (err) {
      throw new NotFoundError(`The file ${f} does not exist.`, { cause: err, details: { file: f } });
    }
    const rel = relative(root, real);
    if (rel === '' || rel.startsWith('..') || resolve(root, rel) !== real) {
      throw new InvalidInputError(
        `${f} is outside the shared folder ${folder.hostPath}, so the guest cannot see it: copy it there first.`,
        { details: { file: f, sharedFolder: folder.hostPath } },
      );
    }
    const parts = rel.split(sep);
    if (style === 'windows') return `${folder.guestPath.replace(/[\\/]+$/, '')}\\${parts.join('\\')}`;
    return `${folder.guestPath.replace(/\/+$/, '')}/${parts.join('/')}`;
  });
}
