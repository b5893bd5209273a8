import type { Command } from 'commander';
import { InvalidInputError, describeVmChanges, type Session } from '@tandem/core';
import { FreedesktopLaunchers } from '@tandem/core/publishing';
import type { CommandHost } from '../program.js';
import { withSession } from '../runtime.js';
import { openAdapter } from '../adapters.js';
import { StateDir } from '../state.js';
import { sessionDiskKeys } from './keys-files.js';
import type { SessionSummary } from '@tandem/agent';
import { throughAgent } from '../agent-client.js';

const WS = '[workspace]';
const WS_HELP = 'workspace name (optional when there is only one session)';

/** `tandem status|suspend|resume|stop|lock|unlock|down` */
export function registerLifecycle(program: Command, host: CommandHost): void {
  program
    .command('status')
    .description("show every session with its VM's live state, and any newer version waiting for the next start")
    .argument(WS, 'only this workspace')
    .action(
      host.run(async (ctx, workspace: string | undefined) => {
        const state = new StateDir(ctx.stateDir);
        const records = workspace ? [state.resolve(workspace)] : state.list();
        type Row = Omit<SessionSummary, 'attached'>;
        const rows: Row[] = await throughAgent<Row[]>(
          ctx,
          async (agent) =>
            (await agent.call('sessions')).sessions
              .filter((s) => !workspace || s.workspace === records[0]?.workspace)
              .map(({ attached: _a, ...r }) => r as Row),
          async () => {
            const rows: Row[] = [];
            for (const record of records) {
              let live: string;
              let pending: Session['pendingUpdate'];
              try {
                live = await withSession(ctx, record.workspace, async (s) => {
                  pending = s.pendingUpdate;
                  return s.refresh();
                });
              } catch (err) {
                live = `unknown (${(err as Error).message.split('\n')[0]})`;
              }
              rows.push({
                workspace: record.workspace,
                version: record.spec.metadata.version,
                session: record.id,
                adapter: record.adapter.name,
                vm: record.vm,
                state: live,
                file: record.file,
                ...(pending
                  ? {
                      pendingUpdate: {
                        fromVersion: pending.fromVersion,
                        toVersion: pending.toVersion,
                        changes: [...pending.changes],
                      },
                    }
                  : {}),
              });
            }
            return rows;
          },
        );
        ctx.result(
          { sessions: rows },
          rows.length === 0
            ? 'no sessions (start one with: tandem up <workspace file>)'
            : rows.flatMap((r) => [
                `${r.workspace}\t${r.state}\t${r.adapter}\tVM ${r.vm}\tsession ${r.session}`,
                ...(r.pendingUpdate
                  ? [
                      `  version ${r.pendingUpdate.toVersion} waits for the next start (was ${r.pendingUpdate.fromVersion ?? 'unknown'}): ${describeVmChanges(r.pendingUpdate.changes)}`,
                    ]
                  : []),
              ]),
        );
      }),
    );

  const simple = (name: string, description: string): Command =>
    program.command(name).description(description).argument(WS, WS_HELP);

  simple('suspend', 'suspend the session (pause the VM in memory; --save writes it to disk)')
    .option('--save', 'save the VM state to disk instead of pausing it in memory')
    .action(
      host.run(async (ctx, ws: string | undefined, opts: { save?: boolean }) => {
        const s = await throughAgent(
          ctx,
          (agent) => agent.call('suspend', { ...(ws ? { workspace: ws } : {}), mode: opts.save ? 'save' : 'pause' }),
          () =>
            withSession(
              ctx,
              ws,
              async (session) => (await session.suspend({ mode: opts.save ? 'save' : 'pause' }), brief(session)),
            ),
        );
        ctx.result({ session: s.session, state: s.state }, `${s.workspace}: ${s.state}`);
      }),
    );

  simple('resume', 'resume a suspended session')
    .option('--envelope <file>', 'the key envelope of an encrypted workspace (default: the one in the state directory)')
    .option(
      '--take-over',
      "through the agent: if the VM holds another host user's session, shut it down (that session is lost) and start it for you",
    )
    .action(
      host.run(async (ctx, ws: string | undefined, opts: { envelope?: string; takeOver?: boolean }) => {
        const record = new StateDir(ctx.stateDir).resolve(ws);
        const encrypted = record.spec.spec.image.encryption !== undefined;
        const s = await throughAgent(
          ctx,
          (agent) =>
            agent.call('resume', { ...(ws ? { workspace: ws } : {}), ...(opts.takeOver ? { takeOver: true } : {}) }),
          async () => {
            // An encrypted workspace's key is released again (its lease checked) before it resumes.
            using keys = await sessionDiskKeys(ctx.stateDir, record, opts.envelope);
            // Awaited here: `using` wipes the keys when this function returns.
            return await withSession(ctx, ws, async (session) => (await session.resume(), brief(session)), {
              ...(keys ? { diskKeys: keys.diskKeys } : {}),
            });
          },
          encrypted && opts.envelope ? { inProcessBecause: `--envelope is read in-process` } : {},
        );
        ctx.result({ session: s.session, state: s.state }, `${s.workspace}: ${s.state}`);
      }),
    );

  simple('stop', 'stop the VM: ask the guest to shut down, power off after --timeout; or at once with --force')
    .option('-f, --force', 'power off at once')
    .option('--timeout <seconds>', 'how long the guest gets to shut down', '60')
    .action(
      host.run(async (ctx, ws: string | undefined, opts: { force?: boolean; timeout: string }) => {
        const timeoutMs = Number(opts.timeout) * 1000;
        if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
          throw new InvalidInputError(`--timeout "${opts.timeout}" is not a number of seconds.`, {
            details: { timeout: opts.timeout },
          });
        }
        const s = await throughAgent(
          ctx,
          (agent) => agent.call('stop', { ...(ws ? { workspace: ws } : {}), force: opts.force ?? false, timeoutMs }),
          () =>
            withSession(
              ctx,
              ws,
              async (session) => (await session.stop({ force: opts.force ?? false, timeoutMs }), brief(session)),
            ),
        );
        ctx.result({ session: s.session, state: s.state }, `${s.workspace}: ${s.state}`);
      }),
    );

  simple(
    'end',
    "end the session as the workspace's usage policy says (snapshot, shutdown, suspend, or revert to the baseline)",
  )
    .option('--timeout <seconds>', 'how long the guest gets to shut down', '60')
    .action(
      host.run(async (ctx, ws: string | undefined, opts: { timeout: string }) => {
        const timeoutMs = Number(opts.timeout) * 1000;
        if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
          throw new InvalidInputError(`--timeout "${opts.timeout}" is not a number of seconds.`, {
            details: { timeout: opts.timeout },
          });
        }
        const { action, ...s } = await throughAgent<{
          action: string;
          session: string;
          workspace: string;
          state: string;
        }>(
          ctx,
          (agent) => agent.call('end', { ...(ws ? { workspace: ws } : {}), timeoutMs }),
          () =>
            withSession(ctx, ws, async (session) => ({ action: await session.end({ timeoutMs }), ...brief(session) })),
        );
        ctx.result({ session: s.session, action, state: s.state }, `${s.workspace}: ended (${action}), ${s.state}`);
      }),
    );

  simple('lock', 'lock the session (the VM keeps running; its apps are hidden until unlock)').action(
    host.run(async (ctx, ws: string | undefined) => {
      const s = await throughAgent(
        ctx,
        (agent) => agent.call('lock', { ...(ws ? { workspace: ws } : {}), reason: 'tandem lock' }),
        () => withSession(ctx, ws, async (session) => (await session.lock('tandem lock'), brief(session))),
      );
      ctx.result({ session: s.session, state: s.state }, `${s.workspace}: ${s.state}`);
    }),
  );

  simple('unlock', 'unlock a locked session (through the agent: your password, checked)')
    .option('--password-stdin', 'read your password from standard input (the agent checks it)')
    .action(
      host.run(async (ctx, ws: string | undefined, opts: { passwordStdin?: boolean }) => {
        const password = opts.passwordStdin ? await readPassword() : undefined;
        const s = await throughAgent(
          ctx,
          (agent) =>
            agent.call('unlock', { ...(ws ? { workspace: ws } : {}), ...(password !== undefined ? { password } : {}) }),
          () => withSession(ctx, ws, async (session) => (await session.unlock(), brief(session))),
        );
        ctx.result({ session: s.session, state: s.state }, `${s.workspace}: ${s.state}`);
      }),
    );

  simple(
    'down',
    'end the session: power the VM off, remove its definition (disks are kept) and forget the session',
  ).action(
    host.run(async (ctx, ws: string | undefined) => {
      const state = new StateDir(ctx.stateDir);
      const record = state.resolve(ws);
      const viaAgent = await throughAgent(
        ctx,
        async (agent) => agent.call('down', ws ? { workspace: ws } : {}),
        async () => undefined,
      );
      if (viaAgent) {
        ctx.result(
          {
            session: viaAgent.session,
            workspace: viaAgent.workspace,
            removed: true,
            launchersRemoved: viaAgent.launchersRemoved,
          },
          `${viaAgent.workspace}: session ended, VM ${record.vm} removed${viaAgent.launchersRemoved.length > 0 ? `, ${viaAgent.launchersRemoved.length} launcher files removed` : ''}`,
        );
        return;
      }
      await state.withVmLock(record.vm, async () => {
        const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
        try {
          if ((await adapter.list()).some((v) => v.name === record.vm)) await adapter.destroy(record.vm);
        } finally {
          await adapter.close?.();
        }
      });
      state.remove(record.workspace);
      // Deprovisioned: the workspace's launchers go too (exactly the files `apps publish` wrote).
      const launchers = new FreedesktopLaunchers().remove(record.workspace);
      ctx.result(
        { session: record.id, workspace: record.workspace, removed: true, launchersRemoved: launchers.removed },
        `${record.workspace}: session ended, VM ${record.vm} removed${launchers.removed.length > 0 ? `, ${launchers.removed.length} launcher files removed` : ''}`,
      );
    }),
  );
}

/** What the session commands print about a session, in-process or through the agent alike. */
function brief(session: Session): { session: string; workspace: string; state: string } {
  return { session: session.id, workspace: session.workspace.metadata.name, state: session.state };
}

/** The first line of standard input (a password piped in, never echoed). */
async function readPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}
