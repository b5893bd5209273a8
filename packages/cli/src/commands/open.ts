import { dirname } from 'node:path';
import type { Command } from 'commander';
import { GuestConnection } from '@tandem/core/guest';
import { assertNotLooping, openHostUrl, openInHostBrowser } from '@tandem/core/publishing';
import type { CommandHost } from '../program.js';
import { cliEvents, policyFor, withSession } from '../runtime.js';
import { StateDir } from '../state.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** `tandem open URL`: the host's http/https handler. */
export function registerOpen(program: Command, host: CommandHost): void {
  program
    .command('open')
    .description(
      "open a URL where the workspace's web redirection says: the host's real browser, or the guest's (the host's http/https handler)",
    )
    .argument('<url>', 'the URL')
    .option('-w, --workspace <name>', 'workspace name (optional when there is only one session)')
    .option('--user <name>', 'the user the policy decides for')
    .option('--group <name>', 'a group of the user; repeat for several', collect, [])
    .option('--decide-only', 'say where the URL would open, and open nothing')
    .action(
      host.run(
        async (
          ctx,
          url: string,
          opts: { workspace?: string; user?: string; group: string[]; decideOnly?: boolean },
        ) => {
          assertNotLooping(url);
          const state = new StateDir(ctx.stateDir);
          const record = state.resolve(opts.workspace);
          const loaded = { workspace: record.spec, file: record.file, baseDir: dirname(record.file) };
          const subject = { ...(opts.user !== undefined ? { user: opts.user } : {}), groups: opts.group };
          const policy = (await policyFor(loaded, record.layers)).forSubject(subject);
          const { events, close } = cliEvents(ctx, state);
          const noop = async (): Promise<void> => undefined;
          try {
            const result = await openHostUrl(
              url,
              policy,
              opts.decideOnly
                ? { openOnHost: noop, openInGuest: noop }
                : {
                    openOnHost: (u) => openInHostBrowser(u),
                    // The guest's browser: the session is started first when it is not running.
                    openInGuest: (u) =>
                      withSession(ctx, record.workspace, async (session) => {
                        if (session.state === 'stopped' || session.state === 'crashed') await session.start();
                        if (session.state === 'suspended') await session.resume();
                        const guest = new GuestConnection({
                          adapter: session.adapter,
                          vm: session.vm,
                          bus: events,
                          context: { workspace: record.workspace, session: session.id },
                        });
                        try {
                          await guest.open();
                          await guest.openUrl(u);
                        } finally {
                          await guest.close();
                        }
                      }),
                  },
              { events, context: { workspace: record.workspace, session: record.id } },
            );
            const d = result.decision;
            ctx.result(
              { url: d.url, target: d.target, opened: !opts.decideOnly, rule: d.rule?.label ?? null, reason: d.reason },
              `${d.url}: ${opts.decideOnly ? 'would open' : 'opened'} in the ${d.target} (${d.reason})`,
            );
          } finally {
            close();
          }
        },
      ),
    );
}
