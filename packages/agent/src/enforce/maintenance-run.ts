import type { AgentDescription, Clock, ExecResult, Session } from '@tandem/core';
import type { LoginSessionInfo } from '../desktop/monitor.js';

/** What a maintenance window needs of the guest agent (a GuestConnection fits). */
export interface MaintenanceGuest {
  readonly agent: AgentDescription | undefined;
  exec(command: string, args?: readonly string[]): Promise<ExecResult>;
}

/** Everything one maintenance window run needs. */
export interface MaintenanceRun {
  readonly session: Session;
  readonly clock: Clock;
  /** When the window closes, ms since the epoch. */
  readonly until: number;
  /** The users logged in to the desktop: with any, the window is skipped. */
  readonly loggedIn: readonly LoginSessionInfo[];
  /** The guest's allow-listed maintenance command, from the workspace. */
  readonly command: string | undefined;
  readonly guest?: () => Promise<MaintenanceGuest | undefined>;
  readonly publish: (data: {
    phase: 'started' | 'finished' | 'skipped' | 'failed';
    reason: string;
    before?: string;
  }) => void;
  readonly signal?: AbortSignal;
}

/**
 * Runs one guest maintenance window (wake-to-patch): only with no user logged in to the desktop,
 * starts a stopped workspace headless or resumes a suspended one, runs the guest's maintenance
 * command when the agent advertises `exec` (or a `maintenance` capability) and the workspace names
 * one, waits until the window closes, and puts the VM back as it was.
 */
export async function runMaintenance(run: MaintenanceRun): Promise<void> {
  const { session } = run;
  if (run.loggedIn.length > 0) {
    run.publish({
      phase: 'skipped',
      reason: `users are logged in to the desktop (${run.loggedIn.map((s) => s.user).join(', ')})`,
    });
    return;
  }
  const before = session.state;
  const saved = before === 'suspended' && (await session.adapter.state(session.vm)) === 'saved';
  if (before !== 'stopped' && before !== 'suspended' && before !== 'crashed') {
    run.publish({
      phase: 'skipped',
      reason: `the session is ${before}: maintenance runs only on a stopped or suspended workspace`,
      before,
    });
    return;
  }
  try {
    if (before === 'suspended') await session.resume();
    else await session.start({ display: 'headless' });
    run.publish({
      phase: 'started',
      reason: `the VM ${before === 'suspended' ? 'resumed' : 'started headless'} for its maintenance window`,
      before,
    });
    let note = 'the guest updates on its own schedule';
    if (run.command && run.guest) {
      const guest = await run.guest().catch(() => undefined);
      const caps = [...(guest?.agent?.capabilities ?? []), ...(guest?.agent?.ignored ?? [])];
      if (guest && (caps.includes('exec') || caps.includes('maintenance'))) {
        const r = await guest.exec(run.command);
        note = `the guest ran ${run.command} (exit ${r.exitCode})`;
      } else {
        note = `the guest agent advertises no maintenance capability; ${run.command} was not run`;
      }
    }
    const left = run.until - run.clock.now();
    if (left > 0) await run.clock.sleep(left, run.signal).catch(() => undefined);
    if (session.state === 'locked') await session.unlock();
    if (before === 'suspended') await session.suspend(saved ? { mode: 'save' } : {});
    else if (session.can('stop')) await session.stop();
    run.publish({ phase: 'finished', reason: `${note}; the VM is ${before} again`, before });
  } catch (err) {
    run.publish({ phase: 'failed', reason: (err as Error).message, before });
  }
}
