import { existsSync, readFileSync } from 'node:fs';
import { platform } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  InvalidInputError,
  TandemError,
  parseDuration,
  type PublishedApp,
  type SeamlessTransport,
  type VmState,
} from '@tandem/core';
import { GuestConnection } from '@tandem/core/guest';
import {
  FreedesktopLaunchers,
  WindowsLaunchers,
  gnomeFoldersFor,
  applyWindowsGuestPolicy,
  launchApp,
  launcherWmClass,
  type InstallReport,
  type LauncherApp,
  type SharedFolderView,
  type TransferPermissions,
} from '@tandem/core/publishing';
import { openAdapter } from '../adapters.js';
import { connectAgent } from '../agent-client.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandHost } from '../program.js';
import { cliEvents, policyFor, withSession } from '../runtime.js';
import { StateDir, type SessionRecord } from '../state.js';
import {
  fetchDiscoveredApps,
  loadDiscoveredApps,
  removeDiscoveredApps,
  saveDiscoveredApps,
} from './apps-discovered.js';
import { waitForLaunch } from './apps-wait.js';
import { cliAskMode, cliAsker } from './cli-asker.js';

interface WhereOptions {
  dataHome?: string;
  configHome?: string;
  exec?: string;
  windowsPrograms?: string;
  windowsTarget?: string;
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** The launchers for this host: freedesktop, or Windows shortcuts when --windows-programs is given or on Windows. */
function launchersFor(ctx: CliContext, opts: WhereOptions): FreedesktopLaunchers | WindowsLaunchers {
  const exec = opts.exec ? opts.exec.split(' ').filter(Boolean) : undefined;
  if (opts.windowsPrograms || platform() === 'win32') {
    const programs =
      opts.windowsPrograms ?? resolve(process.env['APPDATA'] ?? '.', 'Microsoft', 'Windows', 'Start Menu', 'Programs');
    // Icons and the manifest stay in Tandem's own state directory, outside the Start Menu.
    const state = resolve(ctx.stateDir, 'launchers', 'windows');
    return new WindowsLaunchers({
      programsDir: programs,
      stateDir: state,
      stateDirWindowsPath: state,
      target: opts.windowsTarget ?? 'C:\\Program Files\\Tandem\\tandem.exe',
      ...(exec ? { targetArgs: exec.slice(1) } : {}),
    });
  }
  return new FreedesktopLaunchers({
    ...(opts.dataHome ? { dataHome: opts.dataHome } : {}),
    ...(opts.configHome ? { configHome: opts.configHome } : {}),
    ...(exec ? { command: exec } : {}),
  });
}

/** A workspace's published apps as launchers, their icons read from the workspace's directory. */
function launcherApps(ctx: CliContext, record: SessionRecord): LauncherApp[] {
  const base = dirname(record.file);
  return record.spec.spec.publishedApps.map((app: PublishedApp) => {
    let icon: LauncherApp['icon'];
    if (app.icon !== undefined) {
      const file = resolve(base, app.icon);
      if (existsSync(file)) icon = { bytes: readFileSync(file) };
      else ctx.info(`  icon ${file} of ${app.id} does not exist; the launcher has none`);
    }
    return {
      id: app.id,
      name: app.name,
      ...(app.startMenuFolder !== undefined ? { startMenuFolder: app.startMenuFolder } : {}),
      fileTypes: app.fileTypes,
      ...(icon ? { icon } : {}),
    };
  });
}

function addWhere(cmd: Command): Command {
  return cmd
    .option('--data-home <dir>', 'freedesktop data directory (default $XDG_DATA_HOME or ~/.local/share)')
    .option('--config-home <dir>', 'freedesktop config directory, for the menu (default $XDG_CONFIG_HOME or ~/.config)')
    .option('--exec <command>', 'what a launcher runs before "apps launch" (default: tandem)')
    .option('--windows-programs <dir>', 'write Windows shortcuts into this Start Menu Programs folder instead')
    .option('--windows-target <path>', 'with --windows-programs: the Windows path of tandem.exe');
}

function reportLines(verb: string, r: InstallReport): string[] {
  return [
    ...r.written.map((f) => `${verb} ${f}`),
    ...r.removed.map((f) => `removed ${f}`),
    ...r.kept.map((f) => `kept ${f} (changed since Tandem installed it)`),
  ];
}

function parseSharedFolder(value: string | undefined): SharedFolderView | undefined {
  if (value === undefined) return undefined;
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) {
    throw new InvalidInputError(`--shared-folder "${value}" is not HOST=GUEST (for example ~/Shared=Z:\\).`, {
      details: { sharedFolder: value },
    });
  }
  return { hostPath: value.slice(0, eq), guestPath: value.slice(eq + 1) };
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const ENDED: readonly VmState[] = ['stopped', 'saved', 'crashed'];

/** Whether the session a launch belongs to has ended (asked again through a fresh adapter, as another tandem may have stopped it). */
async function sessionEnded(state: StateDir, workspace: string, vm: string): Promise<string | null> {
  const record = state.find(workspace);
  if (!record) return 'the session was removed';
  const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
  try {
    const now = await adapter.state(vm);
    return ENDED.includes(now) ? `the VM is ${now}` : null;
  } catch (err) {
    if (TandemError.is(err, 'TANDEM_NOT_FOUND')) return 'the VM no longer exists';
    throw err;
  } finally {
    await adapter.close?.();
  }
}

/** `tandem apps list|publish|unpublish|launch` */
export function registerApps(program: Command, host: CommandHost): void {
  const apps = program
    .command('apps')
    .description("the workspace's published apps: host launchers, and launching them");

  apps
    .command('list')
    .description('list the published apps and whether their launchers are installed')
    .argument('[workspace]', 'workspace name (optional when there is only one session)')
    .option('--data-home <dir>', 'freedesktop data directory')
    .action(
      host.run(async (ctx, ws: string | undefined, opts: { dataHome?: string }) => {
        const record = new StateDir(ctx.stateDir).resolve(ws);
        const launchers = new FreedesktopLaunchers(opts.dataHome ? { dataHome: opts.dataHome } : {});
        const installed = launchers.installed(record.workspace);
        const rows = record.spec.spec.publishedApps.map((a) => ({
          id: a.id,
          name: a.name,
          command: a.command,
          fileTypes: a.fileTypes,
          windowClass: launcherWmClass(record.workspace, a.id),
          launcher: installed?.files.some((f) => f.path.endsWith(`-${a.id}.desktop`)) ?? false,
        }));
        ctx.result(
          { workspace: record.workspace, apps: rows, launchersVersion: installed?.version ?? null },
          rows.length === 0
            ? `${record.workspace} publishes no apps`
            : rows.map((r) => `${r.id}\t${r.name}\t${r.launcher ? 'launcher installed' : 'no launcher'}\t${r.command}`),
        );
      }),
    );

  addWhere(
    apps
      .command('publish')
      .description(
        'install a launcher for each published app (freedesktop menu entries, or Windows Start Menu shortcuts)',
      )
      .argument('[workspace]', 'workspace name (optional when there is only one session)')
      .option('--url-handler', 'also install tandem open as the http/https handler (freedesktop)')
      .option(
        '--discovered',
        'also the apps the guest agent discovers in the running VM (its .desktop entries, Start Menu shortcuts)',
      )
      .option('--guest-timeout <duration>', 'with --discovered: how long to wait for the agent (ISO 8601)', 'PT2M')
      .option(
        '--gnome-folders',
        'also GNOME Shell app folders for startMenuFolder (the default when $XDG_CURRENT_DESKTOP names GNOME)',
      ),
  ).action(
    host.run(
      async (
        ctx,
        ws: string | undefined,
        opts: WhereOptions & {
          urlHandler?: boolean;
          discovered?: boolean;
          guestTimeout: string;
          gnomeFolders?: boolean;
        },
      ) => {
        const record = new StateDir(ctx.stateDir).resolve(ws);
        const launchers = launchersFor(ctx, opts);
        const found = opts.discovered ? await fetchDiscoveredApps(ctx, record, opts.guestTimeout) : undefined;
        for (const id of found?.skipped ?? [])
          ctx.info(`  discovered app ${id} is also a workspace app: the workspace's is published`);
        const all = [...launcherApps(ctx, record), ...(found?.launchers ?? [])];
        const r = launchers.install({ workspace: record.workspace, version: record.spec.metadata.version, apps: all });
        const gnome =
          launchers instanceof FreedesktopLaunchers &&
          (opts.gnomeFolders || /(^|:)GNOME(:|$)/i.test(process.env['XDG_CURRENT_DESKTOP'] ?? ''))
            ? launchers.gnomeAppFolders().apply(record.workspace, gnomeFoldersFor(record.workspace, all))
            : undefined;
        // apps launch finds a discovered app here; a publish without --discovered forgets them, as its launchers went.
        if (found) saveDiscoveredApps(ctx.stateDir, record, found.apps);
        else removeDiscoveredApps(ctx.stateDir, record.workspace);
        const url =
          opts.urlHandler && launchers instanceof FreedesktopLaunchers ? launchers.installUrlHandler() : undefined;
        ctx.result(
          {
            workspace: record.workspace,
            version: record.spec.metadata.version,
            ...r,
            urlHandler: url ?? null,
            gnomeAppFolders: gnome ?? null,
            discovered: found ? found.apps.map((a) => ({ id: a.id, name: a.name, command: a.command })) : null,
          },
          [
            ...reportLines('installed', r),
            ...(url ? reportLines('installed', url) : []),
            ...(url
              ? [
                  'make it the default: xdg-mime default tandem-open.desktop x-scheme-handler/http x-scheme-handler/https',
                ]
              : []),
            ...(found ? [`${found.apps.length} discovered app(s) published from the guest`] : []),
            ...(gnome?.added ?? []).map((id) => `added GNOME app folder ${id}`),
            ...(gnome?.removed ?? []).map((id) => `removed GNOME app folder ${id}`),
          ],
        );
      },
    ),
  );

  addWhere(
    apps
      .command('unpublish')
      .description('remove every launcher Tandem installed for the workspace, and nothing else')
      .argument('[workspace]', 'workspace name (optional when there is only one session)')
      .option('--url-handler', 'also remove the http/https handler'),
  ).action(
    host.run(async (ctx, ws: string | undefined, opts: WhereOptions & { urlHandler?: boolean }) => {
      const state = new StateDir(ctx.stateDir);
      // The session may be gone already (tandem down): unpublishing works from the name alone.
      const name = ws ?? state.resolve(undefined).workspace;
      const launchers = launchersFor(ctx, opts);
      const r = launchers.remove(name);
      removeDiscoveredApps(ctx.stateDir, name);
      const url =
        opts.urlHandler && launchers instanceof FreedesktopLaunchers ? launchers.removeUrlHandler() : undefined;
      const lines = [...reportLines('installed', r), ...(url ? reportLines('installed', url) : [])];
      ctx.result(
        { workspace: name, ...r, urlHandler: url ?? null },
        lines.length ? lines : `${name}: no launchers were installed`,
      );
    }),
  );

  apps
    .command('launch')
    .description('start (or resume, or unlock) the session if needed and show the app on the host desktop')
    .argument('<app>', 'the published app id')
    .argument('[files...]', 'host files to open in the app (they must be in the shared folder)')
    .option('-w, --workspace <name>', 'workspace name (optional when there is only one session)')
    .option('--shared-folder <host=guest>', 'a host folder and its path in the guest (Z:\\ or /mnt/host), for FILES')
    .option(
      '--transport <transport>',
      'rdp-remoteapp, xpra, vbox-seamless or enhanced-session (default: the adapter chooses)',
    )
    .option('--user <name>', 'the user the policy decides for (and the RDP user name)')
    .option('--group <name>', 'a group of the user; repeat for several', collect, [])
    .option('--rdp-domain <domain>', 'RDP domain')
    .option('--password-stdin', 'read the RDP password from stdin (it never reaches argv or a file)')
    .option('--no-wait', 'return once the app is shown instead of waiting for it to close')
    .option('--yes', 'allow every transfer the policy says to ask about (scripts)')
    .option('--no', 'deny every transfer the policy says to ask about, without asking')
    .option(
      '--ask-on-stdin',
      'ask about each one on stderr and read y/N answers from stdin even when it is not a terminal',
    )
    .option('--ask-timeout <seconds>', 'how long a question waits before it is denied', '60')
    .option(
      '--guest-policy',
      'Windows guests: set the policy inside the guest too (the Remote Desktop policies, through the guest agent) before the app starts; the launch fails when the agent does not answer',
    )
    .option(
      '--guest-timeout <duration>',
      'with --guest-policy: how long to wait for the guest agent (ISO 8601)',
      'PT2M',
    )
    .action(
      host.run(
        async (
          ctx,
          appId: string,
          files: string[],
          opts: {
            workspace?: string;
            sharedFolder?: string;
            transport?: string;
            user?: string;
            group: string[];
            rdpDomain?: string;
            passwordStdin?: boolean;
            wait: boolean;
            yes?: boolean;
            no?: boolean;
            askOnStdin?: boolean;
            askTimeout: string;
            guestPolicy?: boolean;
            guestTimeout: string;
          },
        ) => {
          const askMode = cliAskMode({
            ...(opts.yes ? { yes: true } : {}),
            ...(opts.no ? { no: true } : {}),
            ...(opts.askOnStdin ? { askOnStdin: true } : {}),
            ...(opts.passwordStdin ? { passwordStdin: true } : {}),
            stdinIsTTY: process.stdin.isTTY === true,
          });
          const askTimeoutMs = Number(opts.askTimeout) * 1000;
          if (!Number.isFinite(askTimeoutMs) || askTimeoutMs <= 0) {
            throw new InvalidInputError(`--ask-timeout "${opts.askTimeout}" is not a number of seconds above 0.`, {
              details: { askTimeout: opts.askTimeout },
            });
          }
          const password = opts.passwordStdin ? await readStdinLine() : undefined;
          const sharedFolder = parseSharedFolder(opts.sharedFolder);
          const state = new StateDir(ctx.stateDir);
          await sessionUpThroughAgent(ctx, opts.workspace);
          const launch = await withSession(ctx, opts.workspace, async (session, record) => {
            const { events, close } = cliEvents(ctx, state);
            const asker =
              askMode === 'not-interactive'
                ? undefined
                : cliAsker({
                    mode: askMode,
                    input: process.stdin,
                    output: process.stderr,
                    timeoutMs: askTimeoutMs,
                    events,
                    context: { workspace: record.workspace, session: record.id },
                  });
            try {
              const loaded = { workspace: record.spec, file: record.file, baseDir: dirname(record.file) };
              const engine = await policyFor(loaded, record.layers);
              const subject = { ...(opts.user !== undefined ? { user: opts.user } : {}), groups: opts.group };
              const guestPolicy = opts.guestPolicy
                ? async (permissions: TransferPermissions): Promise<readonly string[]> => {
                    const guest = new GuestConnection({
                      adapter: session.adapter,
                      vm: session.vm,
                      bus: events,
                      context: { workspace: record.workspace, session: record.id },
                      policy: engine.forSubject(subject),
                      software: { name: '@tandem/cli', version: '0.1.0' },
                    });
                    try {
                      await guest.open({ timeoutMs: parseDuration(opts.guestTimeout) });
                      return await applyWindowsGuestPolicy(guest, permissions);
                    } finally {
                      await guest.close();
                    }
                  }
                : undefined;
              const launched = await launchApp({
                session,
                appId,
                ...(guestPolicy ? { guestPolicy, guestPolicyRequired: true } : {}),
                files,
                policy: engine.forSubject(subject),
                events,
                extraApps: loadDiscoveredApps(ctx.stateDir, record.workspace),
                ...(asker
                  ? { ask: asker.ask }
                  : { noAskReason: 'not interactive (stdin is no terminal, and no --yes, --no or --ask-on-stdin)' }),
                ...(sharedFolder ? { sharedFolder } : {}),
                ...(opts.transport ? { transport: opts.transport as SeamlessTransport } : {}),
                ...(opts.user !== undefined
                  ? {
                      credentials: {
                        username: opts.user,
                        ...(password !== undefined ? { password } : {}),
                        ...(opts.rdpDomain ? { domain: opts.rdpDomain } : {}),
                      },
                    }
                  : {}),
              });
              return { ...launched, workspace: record.workspace, vm: record.vm };
            } finally {
              asker?.close();
              close();
            }
          });
          const { handle, frame, notes, sessionAction } = launch;
          const asked = launch.policy.decisions.filter((d) => d.decision.outcome === 'ask');
          const askNote =
            asked.length === 0
              ? null
              : askMode === 'not-interactive'
                ? `not interactive (stdin is no terminal): ${asked.length} transfer(s) the policy says to ask about denied; pass --yes, --no or --ask-on-stdin`
                : `${asked.length} transfer(s) asked about (${askMode === 'prompt' ? 'answered at the prompt' : `--${askMode}`}): ${asked.filter((d) => d.permission === 'allow').length} allowed`;
          ctx.result(
            {
              app: appId,
              transport: handle.transport,
              argv: handle.argv,
              pid: handle.pid ?? null,
              sessionAction,
              frame,
              windowClass: launch.request.windowClass,
              notes,
              args: launch.request.args,
              asks: {
                mode: askMode,
                answers: asked.map((d) => ({
                  channel: d.decision.request.channel,
                  direction: d.decision.request.direction,
                  contentType: d.decision.request.contentType ?? null,
                  permission: d.permission,
                })),
                note: askNote,
              },
            },
            [
              ...(sessionAction ? [`session ${sessionAction}`] : []),
              `${appId}: ${handle.transport}: ${handle.argv.join(' ')}`,
              frame.color === null
                ? 'frame: none asked for'
                : frame.drawn
                  ? `frame: ${frame.color}, drawn by ${handle.transport}`
                  : `frame: ${frame.note}`,
              ...notes.map((n) => `policy: ${n.channel}: ${n.note}`),
              ...(askNote ? [`ask: ${askNote}`] : []),
            ],
          );
          if (!opts.wait) return 0;
          const outcome = await waitForLaunch({
            handle,
            sessionEnded: () => sessionEnded(state, launch.workspace, launch.vm),
          });
          switch (outcome.kind) {
            case 'exited':
              return outcome.code === null || outcome.code === 0 ? ExitCode.ok : ExitCode.internal;
            case 'session-ended':
              ctx.info(`${appId}: the session ended (${outcome.reason}); ${handle.transport} closed`);
              return ExitCode.ok;
            case 'interrupted':
              ctx.info(`${appId}: ${outcome.signal}: ${handle.transport} closed; the session keeps running`);
              return ExitCode.timeout;
          }
        },
      ),
    );
}

/**
 * With this user's agent running, a launch brings the session up through it first (start or
 * resume, then unlock), so the agent's checks apply as for `tandem resume` and `tandem unlock`:
 * the password for an unlock, another user's VM, the lease. A locked session is then refused
 * until `tandem unlock --password-stdin`, instead of being unlocked here without one.
 */
async function sessionUpThroughAgent(ctx: CliContext, workspace: string | undefined): Promise<void> {
  const client = await connectAgent(ctx);
  if (!client) return;
  try {
    const name = new StateDir(ctx.stateDir).resolve(workspace).workspace;
    let state = (await client.call('sessions')).sessions.find((s) => s.workspace === name)?.state;
    if (state === 'stopped' || state === 'crashed' || state === 'suspended')
      state = (await client.call('resume', { workspace: name })).state;
    if (state === 'locked') await client.call('unlock', { workspace: name });
  } finally {
    client.close();
  }
}
