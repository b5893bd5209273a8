import type { Command } from 'commander';
import { InvalidInputError, SqliteEventSink, type AnyTandemEvent, type TandemEventType } from '@tandem/core';
import type { CommandHost } from '../program.js';
import type { CliContext } from '../context.js';
import { connectAgent } from '../agent-client.js';
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
    .option('-f, --follow', 'keep printing events as they happen (live from the agent, else by polling the store)')
    .option('--count <n>', 'with --follow: stop after n events')
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
            follow?: boolean;
            count?: string;
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
          if (opts.follow) {
            const count = opts.count === undefined ? Infinity : Number(opts.count);
            if (!(count > 0) || (count !== Infinity && !Number.isInteger(count))) {
              throw new InvalidInputError(`--count "${opts.count}" is not a positive whole number.`, {
                details: { count: opts.count },
              });
            }
            await followEvents(ctx, { ...opts, count });
            return;
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

/** How often `--follow` reads the store when no agent runs. */
const POLL_MS = 1000;

/**
 * `tandem events --follow`: the stored events since `--since` (none without it), then each new
 * one as it happens: pushed by the agent when one runs, else read from the store by polling.
 */
async function followEvents(
  ctx: CliContext,
  opts: { workspace?: string; session?: string; type?: string[]; since?: string; count: number },
): Promise<void> {
  let printed = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const print = (e: AnyTandemEvent): void => {
    if (printed >= opts.count) return;
    if (opts.session && e.session !== opts.session) return;
    if (opts.type && !opts.type.includes(e.type)) return;
    printed++;
    if (ctx.json) ctx.line(e);
    else process.stdout.write(`${e.at}  ${e.workspace ?? '-'}  ${e.type}  ${describeEvent(e)}\n`);
    if (printed >= opts.count) done();
  };
  const onSignal = (): void => done();
  process.once('SIGINT', onSignal);
  try {
    const agent = await connectAgent(ctx);
    if (agent) {
      try {
        await agent.subscribe(
          {
            ...(opts.since ? { since: new Date(opts.since).toISOString() } : {}),
            ...(opts.workspace ? { workspace: opts.workspace } : {}),
            ...(opts.type ? { types: opts.type } : {}),
          },
          print,
        );
        await Promise.race([finished, agent.closed()]);
      } finally {
        agent.close();
      }
      return;
    }
    ctx.info('note: no tandem agent runs for this user; following the event store by polling');
    const store = new SqliteEventSink(new StateDir(ctx.stateDir).eventsFile);
    try {
      const query = {
        ...(opts.workspace ? { workspace: opts.workspace } : {}),
        ...(opts.type ? { type: opts.type as TandemEventType[] } : {}),
      };
      const seen = new Set<string>();
      const first = store.query(query);
      for (const e of first) {
        seen.add(e.id);
        if (opts.since && Date.parse(e.at) >= Date.parse(opts.since)) print(e);
      }
      let stop = false;
      void finished.then(() => (stop = true));
      while (!stop) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        for (const e of store.query(query)) {
          if (seen.has(e.id)) continue;
          seen.add(e.id);
          print(e);
        }
      }
    } finally {
      store.close();
    }
  } finally {
    process.off('SIGINT', onSignal);
  }
}
