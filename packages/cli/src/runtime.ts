import { dirname } from 'node:path';
import { EventBus, SessionManager, SqliteEventSink, type AnyTandemEvent, type Session } from '@tandem/core';
import type { CliContext } from './context.js';
import { openAdapter } from './adapters.js';
import { StateDir, type SessionRecord } from './state.js';

/** One line for an event, as the CLI prints it while a command runs. */
export function describeEvent(e: AnyTandemEvent): string {
  switch (e.type) {
    case 'session.transition':
      return `${e.data.from} -> ${e.data.to} (${e.data.operation}${e.data.failed ? ' failed' : ''}${e.data.reason ? `: ${e.data.reason}` : ''})`;
    case 'session.error':
      return `${e.data.operation} failed: ${e.data.code}`;
    case 'vm.state':
      return `VM ${e.data.vm} is ${e.data.state}: ${e.data.reason}`;
    case 'snapshot.created':
      return `snapshot "${e.data.snapshot}" created`;
    case 'snapshot.reverted':
      return `reverted to snapshot "${e.data.snapshot}"`;
    case 'snapshot.deleted':
      return `snapshot "${e.data.snapshot}" deleted${e.data.children ? ' with its children' : ''}`;
    default:
      return e.type;
  }
}

/** An event bus that stores every event in the state directory and echoes them for humans. */
export function cliEvents(ctx: CliContext, state: StateDir): { events: EventBus; close: () => void } {
  const events = new EventBus();
  const store = new SqliteEventSink(state.eventsFile);
  events.attach(store);
  events.on('*', (e) => ctx.info(`  ${describeEvent(e)}`));
  return { events, close: () => store.close() };
}

/**
 * Runs `fn` on the session a record describes: the adapter it was opened with, the VM locked
 * against other tandem processes, and the record saved afterwards with the session's state.
 */
export async function withSession<T>(
  ctx: CliContext,
  workspace: string | undefined,
  fn: (session: Session, record: SessionRecord) => Promise<T>,
): Promise<T> {
  const state = new StateDir(ctx.stateDir);
  const record = state.resolve(workspace);
  return state.withVmLock(record.vm, async () => {
    const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
    const { events, close } = cliEvents(ctx, state);
    try {
      const manager = new SessionManager({ adapter, events });
      const session = await manager.open(
        { workspace: record.spec, file: record.file, baseDir: dirname(record.file) },
        { vmName: record.vm, sessionId: record.id, locked: record.state === 'locked' },
      );
      try {
        return await fn(session, record);
      } finally {
        state.save({ ...record, state: session.state, updatedAt: new Date().toISOString() });
        await session.close();
      }
    } finally {
      close();
      await adapter.close?.();
    }
  });
}
