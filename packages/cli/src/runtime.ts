import { dirname } from 'node:path';
import {
  EventBus,
  SessionManager,
  SqliteEventSink,
  describeVmChanges,
  type AnyTandemEvent,
  type Session,
} from '@tandem/core';
import type { CliContext } from './context.js';
import { openAdapter } from './adapters.js';
import { policyFor, recordAfter } from '@tandem/agent';
import { StateDir, type SessionRecord } from './state.js';

// Moved to @tandem/agent (the agent records sessions the same way); kept here for importers.
export { policyFor, recordAfter };

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
    case 'session.update-pending':
      return `version ${e.data.toVersion} waits for the next start (${describeVmChanges(e.data.changes)})`;
    case 'session.vm-updated':
      return `VM ${e.data.vm} updated to ${e.data.toVersion} (${describeVmChanges(e.data.changes)}); ${e.data.snapshotsDropped.length > 0 ? `snapshots dropped: ${e.data.snapshotsDropped.join(', ')}` : `${e.data.snapshotsKept} snapshots kept`}`;
    case 'policy.decision':
      return `policy: ${e.data.outcome} (${e.data.reason})`;
    case 'guest.connected':
      return `guest agent ${e.data.agent} ${e.data.agentVersion} ${e.data.reconnect ? 'is back' : 'connected'} (protocol ${e.data.protocol})`;
    case 'guest.disconnected':
      return `guest agent gone: ${e.data.reason}`;
    case 'guest.setup-step':
      return `setup ${e.data.step}: ${e.data.status}${e.data.message ? ` (${e.data.message})` : ''}`;
    case 'guest.setup-completed':
      return `first-time setup done${e.data.rebootRequired ? '; the VM needs a restart' : ''}`;
    case 'guest.url-to-host':
      return `guest asks to open ${e.data.url}: ${e.data.redirect ? 'opens on the host' : 'stays in the guest'} (${e.data.reason})`;
    case 'guest.error':
      return `guest channel: ${e.data.message}`;
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
 * Runs `fn` on the session a record describes: the adapter it was opened with, the policy layers
 * recorded with it, the VM locked against other tandem processes, and the record saved afterwards
 * with the session's state. A tray tool that uses it shares its sessions with `tandem status`.
 * `options.diskKeys` are an encrypted workspace's disk keys (`releaseDiskKeys`) for operations
 * that open its disks (a resume from disk, as `tandem resume` does).
 *
 * @example
 * ```ts
 * import { createContext, withSession } from '@tandem/cli';
 *
 * const ctx = createContext({ json: true }); // the default state directory, as tandem uses
 * await withSession(ctx, 'legacy-erp', (session) => session.lock('tray: screen locked'));
 * ```
 */
export async function withSession<T>(
  ctx: CliContext,
  workspace: string | undefined,
  fn: (session: Session, record: SessionRecord) => Promise<T>,
  options: { diskKeys?: ReadonlyMap<string, Uint8Array> } = {},
): Promise<T> {
  const state = new StateDir(ctx.stateDir);
  const record = state.resolve(workspace);
  return state.withVmLock(record.vm, async () => {
    const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
    const { events, close } = cliEvents(ctx, state);
    try {
      const manager = new SessionManager({ adapter, events });
      const loaded = { workspace: record.spec, file: record.file, baseDir: dirname(record.file) };
      const session = await manager.open(loaded, {
        vmName: record.vm,
        sessionId: record.id,
        locked: record.state === 'locked',
        policy: await policyFor(loaded, record.layers),
        ...(record.vmSpec ? { definedSpec: record.vmSpec } : {}),
        ...(options.diskKeys ? { diskKeys: options.diskKeys } : {}),
      });
      try {
        return await fn(session, record);
      } finally {
        state.save(recordAfter(record, session));
        await session.close();
      }
    } finally {
      close();
      await adapter.close?.();
    }
  });
}
