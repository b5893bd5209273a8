import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InvalidStateError, TandemError, parseDuration, type EventBus, type HypervisorAdapter } from '@tandem/core';
import {
  GuestConnection,
  SetupRecordStore,
  localCredentials,
  runFirstTimeSetup,
  signInToGuest,
} from '@tandem/core/guest';
import { openAdapter } from '../adapters.js';
import type { CliContext } from '../context.js';
import type { CommandHost } from '../program.js';
import { cliEvents, policyFor } from '../runtime.js';
import { StateDir, type SessionRecord } from '../state.js';
import { openCredentialCache } from './login-cache.js';
import { readSecret } from './login.js';

/** Where the host records first-time setup: one file per VM under the state directory. */
export function setupRecordsDir(stateDir: string): string {
  return join(stateDir, 'guest-setup');
}

interface GuestOptions {
  workspace?: string;
  timeout: string;
}

/**
 * Opens the guest channel of a session's VM through its adapter, runs `fn`, and closes it.
 * Events go to the state directory's event store like every command's.
 */
async function withGuest<T>(
  ctx: CliContext,
  opts: GuestOptions,
  fn: (conn: GuestConnection, record: SessionRecord, events: EventBus, adapter: HypervisorAdapter) => Promise<T>,
): Promise<T> {
  const state = new StateDir(ctx.stateDir);
  const record = state.resolve(opts.workspace);
  const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
  const { events, close } = cliEvents(ctx, state);
  try {
    const loaded = { workspace: record.spec, file: record.file, baseDir: dirname(record.file) };
    const policy = (await policyFor(loaded, record.layers)).forSubject({ user: userInfo().username });
    const conn = new GuestConnection({
      adapter,
      vm: record.vm,
      bus: events,
      context: { workspace: record.workspace, session: record.id },
      policy,
      software: { name: '@tandem/cli', version: '0.1.0' },
    });
    try {
      await conn.open({ timeoutMs: parseDuration(opts.timeout) });
      return await fn(conn, record, events, adapter);
    } finally {
      await conn.close();
    }
  } finally {
    close();
    await adapter.close?.();
  }
}

/** `tandem guest status|info|apps|setup` */
export function registerGuest(program: Command, host: CommandHost): void {
  const guest = program.command('guest').description("talk to the guest agent in the session's VM");
  const common = (cmd: Command): Command =>
    cmd
      .option('-w, --workspace <name>', 'workspace name (optional when there is only one session)')
      .option('--timeout <duration>', 'how long to wait for the agent to say hello (ISO 8601)', 'PT2M');

  common(
    guest
      .command('status')
      .description('whether the agent answers, its version and capabilities, and first-time setup'),
  ).action(
    host.run(async (ctx, opts: GuestOptions) => {
      const state = new StateDir(ctx.stateDir);
      const record = state.resolve(opts.workspace);
      const setup = new SetupRecordStore(setupRecordsDir(ctx.stateDir)).load(record.vm);
      const setupText = setup?.completedAt
        ? `first-time setup done ${setup.completedAt}${setup.computerName ? ` (computer name ${setup.computerName})` : ''}`
        : setup
          ? `first-time setup not finished: ${Object.entries(setup.steps)
              .map(([k, v]) => `${k} ${v?.status}`)
              .join(', ')}`
          : 'first-time setup not run';
      try {
        const agent = await withGuest(ctx, opts, async (conn) => conn.agent!);
        ctx.result({ vm: record.vm, reachable: true, agent, setup: setup ?? null }, [
          `agent ${agent.software} ${agent.version} in VM ${record.vm} (protocol ${agent.protocol})`,
          `capabilities: ${agent.capabilities.join(', ') || 'none'}`,
          setupText,
        ]);
      } catch (err) {
        if (!TandemError.is(err, 'TANDEM_AGENT_UNREACHABLE')) throw err;
        ctx.result({ vm: record.vm, reachable: false, reason: err.message, setup: setup ?? null }, [
          `no agent answers in VM ${record.vm}: ${err.message}`,
          setupText,
        ]);
        return 1;
      }
    }),
  );

  common(
    guest.command('info').description("the guest's OS, kernel, hostname, addresses, uptime and agent version"),
  ).action(
    host.run(async (ctx, opts: GuestOptions) => {
      const info = await withGuest(ctx, opts, (conn) => conn.info());
      ctx.result(info, [
        `${info.os.name} ${info.os.version} (${info.os.family}, kernel ${info.os.kernel}, ${info.os.arch})`,
        `hostname ${info.hostname}`,
        `addresses ${info.addresses.map((a) => `${a.address} (${a.interface})`).join(', ') || 'none'}`,
        `up ${Math.round(info.uptimeSeconds)} s, agent ${info.agentVersion}`,
      ]);
    }),
  );

  common(guest.command('apps').description('the applications the guest offers, with their icons'))
    .option('--icons <dir>', 'write each icon as <dir>/<id>.png')
    .action(
      host.run(async (ctx, opts: GuestOptions & { icons?: string }) => {
        const apps = await withGuest(ctx, opts, (conn) => conn.apps());
        if (opts.icons) {
          mkdirSync(opts.icons, { recursive: true });
          for (const app of apps) {
            if (!app.icon) continue;
            const file = join(opts.icons, `${app.id.replace(/[^A-Za-z0-9._-]/g, '_')}.png`);
            writeFileSync(file, Buffer.from(app.icon.data, 'base64'));
          }
        }
        ctx.result(
          { apps },
          apps.length === 0
            ? 'no applications found'
            : apps.map((a) => `${a.name}  ${[a.command, ...a.args].join(' ')}${a.icon ? '  [icon]' : ''}  (${a.id})`),
        );
      }),
    );

  common(
    guest
      .command('setup')
      .description("run the workspace's first-time setup once for this VM (computer name, network, domain join)"),
  )
    .option('--retry', 'run again after a failed step, from that step')
    .option('--no-restart', 'when the guest asks for a restart (a rename, a domain join), leave it to you')
    .action(
      host.run(async (ctx, opts: GuestOptions & { retry?: boolean; restart: boolean }) => {
        let restarted = false;
        const result = await withGuest(ctx, opts, async (conn, record, events, adapter) => {
          // The VM instance is the hypervisor's UUID where it has one: a VM defined anew is set up anew.
          const instance = (await adapter.list()).find((v) => v.name === record.vm)?.id;
          return runFirstTimeSetup({
            connection: conn,
            workspace: record.spec,
            records: new SetupRecordStore(setupRecordsDir(ctx.stateDir)),
            credentials: localCredentials(),
            variables: { hostName: hostname(), userName: userInfo().username },
            ...(instance ? { instance } : {}),
            ...(opts.retry ? { retry: true } : {}),
            // The guest asked for a restart: the VM shuts down gracefully (powered off after two
            // minutes) and starts again, and setup ends when its agent said hello again.
            ...(opts.restart
              ? {
                  restart: async () => {
                    await adapter.stop(record.vm, { timeoutMs: 120_000 });
                    await adapter.start(record.vm);
                    restarted = true;
                  },
                }
              : {}),
            bus: events,
            context: { workspace: record.workspace, session: record.id },
          });
        });
        ctx.result(
          { status: result.status, rebootRequired: result.rebootRequired, restarted, record: result.record },
          result.status === 'already-done'
            ? `first-time setup was already done for this VM (${result.record.completedAt})`
            : result.status === 'nothing-to-do'
              ? 'the workspace has no firstTimeSetup'
              : `first-time setup done${result.record.computerName ? `: computer name ${result.record.computerName}` : ''}${restarted ? '; the VM restarted and its agent is back' : result.rebootRequired ? '; restart the VM for it to take effect' : ''}`,
        );
      }),
    );

  common(
    guest
      .command('sign-in')
      .description(
        'single sign-on: sign in to the guest with the credentials you signed in to Tandem with (spec.guestSignIn)',
      ),
  )
    .requiredOption('--user <name>', 'your sign-in name (as with tandem login)')
    .option('--domain <name>', "the account's domain in a Windows guest")
    .option('--password-stdin', 'read the password from stdin (else TANDEM_PASSWORD); never an argument')
    .action(
      host.run(async (ctx, opts: GuestOptions & { user: string; domain?: string; passwordStdin?: boolean }) => {
        const state = new StateDir(ctx.stateDir);
        const record = state.resolve(opts.workspace);
        if (!record.spec.spec.guestSignIn) {
          throw new InvalidStateError(
            `Workspace "${record.workspace}" does not ask for single sign-on into the guest: set spec.guestSignIn: true.`,
            'guest-sign-in-off',
            { details: { path: 'spec.guestSignIn' } },
          );
        }
        // The same credentials as the Tandem sign-in: checked against this device's cached
        // verifier (tandem login keeps it), so a password Tandem would refuse never reaches the guest.
        const password = Buffer.from(await readSecret(opts), 'utf8');
        try {
          const cache = await openCredentialCache(ctx.stateDir);
          const signedIn = await cache.signInOffline(opts.user, password.toString('utf8'));
          const result = await withGuest(ctx, opts, (conn, rec, events) =>
            signInToGuest({
              connection: conn,
              workspace: rec.spec,
              user: signedIn.user.name,
              password,
              ...(opts.domain ? { domain: opts.domain } : {}),
              bus: events,
              context: { workspace: rec.workspace, session: rec.id },
            }),
          );
          ctx.result(result, `signed in to the guest as ${result.user} (${result.method}): ${result.message}`);
        } finally {
          password.fill(0);
        }
      }),
    );
}
