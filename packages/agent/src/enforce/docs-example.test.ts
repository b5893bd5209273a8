// The example of docs/host-agent-enforcement.md, as written there except that the monitor is
// given no buses (a test must not depend on the host's own D-Bus).
import { EventBus, SessionManager, VirtualClock, parseWorkspace } from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';
import { expect, it } from 'vitest';
import { DesktopMonitor, SessionEnforcer, unixPasswordCheck } from '../index.js';

it('the documented example locks the session after idleLock on the virtual clock', async () => {
  const clock = new VirtualClock(Date.parse('2026-11-23T10:00:00Z'));
  const adapter = new MockAdapter({ clock });
  const events = new EventBus({ clock });
  const manager = new SessionManager({ adapter, events, clock });
  const workspace = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 1024 } }
  usage: { idleLock: PT10M }
`);
  const loaded = { workspace, file: '<inline>', baseDir: process.cwd() };

  const desktop = new DesktopMonitor({ events, sessionBusAddress: null, systemBusAddress: null });
  const status = await desktop.start();
  expect(status.map((s) => s.connected)).toEqual([false, false]);
  const session = await manager.open(loaded);
  const enforcer = new SessionEnforcer({
    session,
    loaded,
    events,
    clock,
    desktop,
    credentials: unixPasswordCheck(),
    notify: (summary, body, urgency) => desktop.notify(summary, body, urgency),
  });
  await enforcer.beforeStart();
  await session.start();
  enforcer.start();
  await clock.waitForSleepers();
  const locked = new Promise((resolve) => events.once('session.locked', resolve));
  await clock.advance(10 * 60_000);
  await locked;
  expect(session.state).toBe('locked');
  await enforcer.stop();
  await desktop.close();
});
