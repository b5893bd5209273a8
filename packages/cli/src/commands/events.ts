import type { Command } from 'commander';
import { InvalidInputError, SqliteEventSink, type TandemEventType } from '@tandem/core';
import type { CommandHost } from '../program.js';
import { describeEvent } from '../runtime.js';
import { StateDir } from '../state.js';

/** `tandem events` */
export function registerEvents(program: Command, host: CommandHost): void {
  program
    .command('events')
    .description('query the event store (every session transition, snapshot, error, ...)')
    .option('-w, --workspace <name>', 'only this workspace')
    .option('-s, --session <id>', 'only this session')
    .option('-t, --type <type...>', 'only these event types (session.transition, snapshot.created, ...)')
    .option('--since <time>', 'ISO 8601 time: events at or after')
    .option('--until <time>', 'ISO 8601 time: events before')
    .option('-n, --limit <n>', 'the newest n events')
    .action(
      host.run(
        async (
          ctx,
          opts: {
            workspace?: string;
            session?: string;
            type?: string[];
            since?: string;
            until?: string;
            limit?: string;
          },
        ) => {
          for (const key of ['since', 'until'] as const) {
            const v = opts[key];
            if (v !== undefined && Number.isNaN(Date.parse(v))) {
              throw new InvalidInputError(
                `--${key} "${v}" is not a time: expected ISO 8601 such as 2026-11-21T10:00:00Z.`,
                { details: { [key]: v } },
              );
            }
          }
          const limit = opts.limit === undefined ? undefined : Number(opts.limit);
          if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0)) {
            throw new InvalidInputError(`--limit "${opts.limit}" is not a positive whole number.`, {
              details: { limit: opts.limit },
            });
          }
          const store = new SqliteEventSink(new StateDir(ctx.stateDir).eventsFile);
          try {
            const events = store.query({
              ...(opts.workspace ? { workspace: opts.workspace } : {}),
              ...(opts.session ? { session: opts.session } : {}),
              ...(opts.type ? { type: opts.type as TandemEventType[] } : {}),
              ...(opts.since ? { since: opts.since } : {}),
              ...(opts.until ? { until: opts.until } : {}),
              ...(limit ? { limit } : {}),
            });
            ctx.result(
              { events },
              events.length === 0
                ? 'no events'
                : events.map((e) => `${e.at}  ${e.workspace ?? '-'}  ${e.type}  ${describeEvent(e)}`),
            );
          } finally {
            store.close();
          }
        },
      ),
    );
}
