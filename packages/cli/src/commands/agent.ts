import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { InvalidInputError } from '@tandem/core';
import {
  desktopEnforcement,
  httpUplink,
  managementUplink,
  runAgent,
  writeFileAtomic,
  type EventUplink,
  type VmOwnership,
} from '@tandem/agent';

import type { CommandHost } from '../program.js';
import { openAdapter } from '../adapters.js';
import { StateDir, type SessionRecord } from '../state.js';
import { libvirtOwnership } from '@tandem/adapter-libvirt';
import { hypervOptionsFromStrings, hypervOwnership } from '@tandem/adapter-hyperv';
import { virtualboxOptionsFromStrings, virtualboxOwnership } from '@tandem/adapter-virtualbox';
import { cliAgentSocket, connectAgent } from '../agent-client.js';
import { resolveStateDir, type CliContext } from '../context.js';
import { endpointClient, endpointConfigFile, readEndpointConfig } from './login.js';
import { sessionDiskKeys } from './keys-files.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/** The agent package's version and its shipped systemd user unit. */
function agentPackage(): { version: string; unit: string } {
  const pkgFile = require.resolve('@tandem/agent/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string };
  return {
    version: pkg.version,
    unit: readFileSync(join(dirname(pkgFile), 'systemd', 'tandem-agent.service'), 'utf8'),
  };
}

/** The command line that starts this very `tandem` (node and its bin script, absolute). */
function tandemCommand(): string {
  const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url));
  const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`);
  return `${quote(process.execPath)} ${quote(bin)}`;
}

/** The unit as `tandem agent install` writes it: ExecStart names this tandem, and the state dir when not the default. */
export function renderAgentUnit(stateDir: string, isDefault: boolean): string {
  const state = isDefault ? '' : ` --state-dir ${stateDir}`;
  return agentPackage().unit.replace('@TANDEM@ agent run', `${tandemCommand()}${state} agent run`);
}

/** `tandem agent run|status|install` */
export function registerAgent(program: Command, host: CommandHost): void {
  const agent = program.command('agent').description('the host agent: a per-user service that owns the sessions');

  agent
    .command('run')
    .description('run the agent in the foreground (what the systemd user unit runs)')
    .option(
      '--uplink-url <url>',
      'ship events to this HTTP endpoint (POST {"events": [...]}), queued on disk first; default: the management server of `tandem login`, if any',
    )
    .option('--no-desktop', 'do not connect to D-Bus (activity then comes only through the API)')
    .option(
      '--watchdog-restarts <n>',
      'restarts of a crashed VM allowed within the window before the watchdog gives up (default 3)',
    )
    .option('--watchdog-window <seconds>', 'the window the watchdog counts restarts in (default 600)')
    .action(
      host.run(
        async (
          ctx,
          opts: { uplinkUrl?: string; desktop: boolean; watchdogRestarts?: string; watchdogWindow?: string },
        ) => {
          const state = new StateDir(ctx.stateDir);
          const socketPath = cliAgentSocket(ctx);
          const watchdog = watchdogLimits(opts);
          const enforcement = await desktopEnforcement({
            desktop: opts.desktop,
            ownershipFor: vmOwnershipFor,
            ...(watchdog ? { watchdog } : {}),
          });
          const uplink = await agentUplink(ctx, opts.uplinkUrl);
          const running = await runAgent({
            stateDir: ctx.stateDir,
            socketPath,
            openAdapter: (name, options) => openAdapter(state, name, options),
            // Encrypted workspaces: the envelope in the state directory, checked like tandem up does.
            diskKeys: (record) => sessionDiskKeys(ctx.stateDir, record),
            version: agentPackage().version,
            signals: true,
            log: (l) => process.stderr.write(`tandem agent: ${l}\n`),
            ...(enforcement.factory ? { enforcement: enforcement.factory } : {}),
            ...(uplink ? { uplink: uplink.uplink } : {}),
          });
          ctx.line(
            { listening: socketPath, pid: process.pid, sessions: running.agent.status().attached },
            `tandem agent ${running.agent.version}: listening on ${socketPath} (pid ${process.pid}), ${running.agent.status().attached} sessions attached${uplink ? `; events go to ${uplink.to}` : ''}${enforcement.note ? `; ${enforcement.note}` : ''}`,
          );
          await running.stopped;
          await enforcement.close();
        },
      ),
    );

  agent
    .command('status')
    .description("is this user's agent running: its version, sessions and event queue (exit 4 when none runs)")
    .action(
      host.run(async (ctx) => {
        const socket = cliAgentSocket(ctx);
        const client = await connectAgent(ctx);
        if (!client) {
          ctx.result(
            { running: false, socket },
            `no agent runs for this user (socket ${socket}); start one with: tandem agent run, or tandem agent install`,
          );
          return 4;
        }
        try {
          const status = await client.call('status');
          const { sessions } = await client.call('sessions');
          ctx.result({ running: true, socket, apiVersion: client.hello?.apiVersion, ...status, sessions }, [
            `agent ${status.version} (API ${client.hello?.apiVersion ?? '?'}) running, pid ${status.pid}, since ${status.startedAt}`,
            `socket ${socket}`,
            status.queue
              ? `event queue: ${status.queue.depth} waiting, ${status.queue.shipped} shipped${status.queue.lastError ? `, last error: ${status.queue.lastError}` : ''}`
              : 'event queue: no uplink configured',
            ...sessions.map((s) => `${s.workspace}\t${s.state}\t${s.adapter}\tVM ${s.vm}`),
          ]);
        } finally {
          client.close();
        }
      }),
    );

  agent
    .command('install')
    .description('install the systemd user unit and start it (or say how to start the agent without systemd)')
    .option('--print', 'print the unit instead of installing it')
    .action(
      host.run(async (ctx, opts: { print?: boolean }) => {
        const isDefault = ctx.stateDir === resolveStateDir(undefined);
        const unit = renderAgentUnit(ctx.stateDir, isDefault);
        if (opts.print) {
          ctx.result({ unit }, unit.trimEnd());
          return;
        }
        const config = process.env['XDG_CONFIG_HOME']
          ? resolve(process.env['XDG_CONFIG_HOME'])
          : join(homedir(), '.config');
        const dir = join(config, 'systemd', 'user');
        mkdirSync(dir, { recursive: true });
        const file = join(dir, 'tandem-agent.service');
        writeFileAtomic(file, unit, 0o644);
        const systemctl = await userSystemd();
        if (systemctl.ok) {
          await run('systemctl', ['--user', 'daemon-reload']);
          await run('systemctl', ['--user', 'enable', '--now', 'tandem-agent.service']);
          ctx.result({ unit: file, systemd: true, started: true }, [
            `installed ${file}`,
            'enabled and started: systemctl --user status tandem-agent',
          ]);
          return;
        }
        ctx.result({ unit: file, systemd: false, started: false, reason: systemctl.reason }, [
          `installed ${file}, but the systemd user manager is not reachable here (${systemctl.reason}).`,
          'Start the agent from your desktop session instead: add "tandem agent run" to the session\'s autostart',
          '(for example ~/.config/autostart/tandem-agent.desktop with Exec=tandem agent run), or run it in a terminal.',
        ]);
      }),
    );
}

/** `--watchdog-restarts` and `--watchdog-window` as the watchdog's limits; undefined when neither is given. */
function watchdogLimits(opts: {
  watchdogRestarts?: string;
  watchdogWindow?: string;
}): { maxRestarts?: number; windowMs?: number } | undefined {
  const whole = (flag: string, value: string, min: number): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidInputError(`${flag} "${value}" is not a whole number of ${min} or more.`, {
        details: { option: flag, value },
      });
    }
    return n;
  };
  const out: { maxRestarts?: number; windowMs?: number } = {};
  if (opts.watchdogRestarts !== undefined) out.maxRestarts = whole('--watchdog-restarts', opts.watchdogRestarts, 0);
  if (opts.watchdogWindow !== undefined) out.windowMs = whole('--watchdog-window', opts.watchdogWindow, 1) * 1000;
  return Object.keys(out).length > 0 ? out : undefined;
}

async function userSystemd(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await run('systemctl', ['--user', 'show-environment'], { timeout: 10_000 });
    return { ok: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { ok: false, reason: 'systemctl is not installed' };
    return { ok: false, reason: (e.stderr ?? e.message).trim().split('\n')[0] ?? 'systemctl --user failed' };
  }
}

/**
 * Where the agent ships its events: the URL given, else the management server this device signed
 * in to with `tandem login` (signed by the device key), else nowhere (the local store only).
 */
async function agentUplink(
  ctx: CliContext,
  url: string | undefined,
): Promise<{ uplink: EventUplink; to: string } | undefined> {
  if (url) return { uplink: httpUplink({ url }), to: url };
  if (!existsSync(endpointConfigFile(ctx.stateDir))) return undefined;
  const config = await readEndpointConfig(ctx.stateDir);
  return { uplink: managementUplink(await endpointClient(ctx, config)), to: config.server };
}

/**
 * Where a session's VM records which host user it belongs to, read and written where every host
 * user's agent sees it (the another-user rule): libvirt in the domain's metadata, VirtualBox in
 * the VM's extradata, Hyper-V in a line of the VM's Notes. The record is reached the way the
 * session's adapter reaches the hypervisor (the same `--adapter-option`s: URI, VBoxManage or
 * PowerShell, SSH host, environment). A third-party adapter keeps no record.
 */
function vmOwnershipFor(record: Pick<SessionRecord, 'adapter'>): VmOwnership | undefined {
  const options = record.adapter.options;
  // `--adapter @tandem/adapter-virtualbox` records the package's name.
  switch (record.adapter.name.replace(/^@tandem\/adapter-/, '')) {
    case 'libvirt': {
      const uri = options['uri'];
      return libvirtOwnership(uri ? { uri } : {});
    }
    case 'virtualbox':
      return virtualboxOwnership(virtualboxOptionsFromStrings(options));
    case 'hyperv':
      return hypervOwnership(hypervOptionsFromStrings(options));
    default:
      return undefined;
  }
}
