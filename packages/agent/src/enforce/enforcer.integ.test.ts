import { integrationGate } from '@tandem/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DesktopMonitor } from '../desktop/monitor.js';
import { startTestDesktop, testDesktopProblem, type TestDesktop } from '../desktop/test-desktop.test-helper.js';
import { SessionEnforcer } from './enforcer.js';
import { enforcerSetup, passwordIs, settle } from './enforcer.test-helper.js';

const gate = await integrationGate(
  'dbus',
  () => testDesktopProblem(),
  'apt-get install dbus python3-dbus python3-gi systemd',
);
const uid = process.getuid?.() ?? 0;
// The monitor follows XDG_SESSION_ID first: a developer's own desktop session is not on the test bus.
delete process.env['XDG_SESSION_ID'];

/** Waits for what real processes make true (never asserts how long it took). */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!gate.enabled)('SessionEnforcer with the desktop on a real dbus-daemon', () => {
  let desktop: TestDesktop;
  let monitor: DesktopMonitor;
  let enforcer: SessionEnforcer | undefined;
  beforeEach(async () => {
    desktop = await startTestDesktop();
    await desktop.addSession('c1', uid, 'alice');
    monitor = new DesktopMonitor({
      sessionBusAddress: desktop.address,
      systemBusAddress: desktop.address,
      uid,
      sleepDelayMaxMs: 120_000,
    });
    expect((await monitor.start()).every((s) => s.connected)).toBe(true);
  });
  afterEach(async () => {
    await enforcer?.stop();
    enforcer = undefined;
    await monitor.close();
    await desktop.close();
  });

  async function run(spec: string) {
    const t = enforcerSetup(spec);
    const session = await t.manager.open(t.loaded);
    enforcer = new SessionEnforcer({
      session,
      loaded: t.loaded,
      events: t.events,
      desktop: monitor,
      notify: (s, b, u) => monitor.notify(s, b, u),
      credentials: passwordIs('pw'),
      location: t.location,
    });
    await enforcer.beforeStart();
    await session.start();
    enforcer.start();
    await t.clock.waitForSleepers();
    return { ...t, session, enforcer };
  }

  it("logind's IdleHint starts the idle period; the session locks after idleLock on the clock", async () => {
    const t = await run('hardware: { memory: { fixedMiB: 512 } }\n  usage: { idleLock: PT5M }');
    const seen: string[] = [];
    monitor.on('active', () => seen.push('active'));
    monitor.on('idle', () => seen.push('idle'));
    await desktop.setIdleHint('c1', false);
    await until('active', () => seen.includes('active'));
    await t.clock.advance(60 * 60_000);
    expect(t.session.state).toBe('running'); // present: no lock however long
    await desktop.setIdleHint('c1', true);
    await until('idle', () => seen.includes('idle'));
    await settle();
    await t.clock.advance(5 * 60_000);
    await settle(() => t.session.state === 'locked');
    expect(t.of('session.locked')[0]).toMatchObject({ cause: 'idle' });
  });

  it('PrepareForSleep locks and suspends before the delay lock is released; waking takes it again', async () => {
    const t = await run('hardware: { memory: { fixedMiB: 512 } }\n  usage: { suspendOnHostSleep: true }');
    const held = async (): Promise<boolean> => (await desktop.inhibitors()).some((i) => i.held && i.who === 'Tandem');
    expect(await held()).toBe(true);
    t.adapter.faults.slow('suspend', 30_000); // the suspend waits on the virtual clock
    await desktop.prepareForSleep(true);
    await until('the session locked', () => t.of('session.locked').length > 0);
    await t.clock.waitForSleepers(2);
    // Locked, suspending, and the host still may not sleep.
    expect(t.of('session.locked')[0]).toMatchObject({ cause: 'host-sleep' });
    expect(await held()).toBe(true);
    await t.clock.advance(30_000);
    await until('the lock released', async () => !(await held()));
    expect(t.session.state).toBe('suspended');
    expect(await t.adapter.state('tandem-erp')).toBe('paused');
    t.adapter.faults.slow('suspend', 0);
    await desktop.prepareForSleep(false);
    await until('the lock taken again', held);
    await until('resumed, still locked', () => t.session.state === 'locked');
  });

  it('logout (the login1 session removed) ends the session as onSessionEnd says', async () => {
    const t = await run('hardware: { memory: { fixedMiB: 512 } }\n  usage: { onSessionEnd: snapshot }');
    await desktop.removeSession('c1');
    await until('the session ended', () => t.of('session.ended').length === 1);
    expect(t.of('session.ended')[0]).toEqual({ vm: 'tandem-erp', cause: 'logout', action: 'snapshot' });
    expect(t.session.state).toBe('stopped');
    expect(await t.adapter.snapshots.list('tandem-erp')).toHaveLength(1);
  });

  it("a maintenance window runs only when logind lists no user's session", async () => {
    const t = enforcerSetup(
      "hardware: { memory: { fixedMiB: 512 } }\n  maintenance: { windows: [{ at: '11:00', duration: PT30M }], timeZone: utc }",
    );
    const session = await t.manager.open(t.loaded);
    enforcer = new SessionEnforcer({
      session,
      loaded: t.loaded,
      events: t.events,
      desktop: monitor,
      credentials: passwordIs('pw'),
      location: t.location,
    });
    enforcer.start();
    await t.clock.waitForSleepers();
    await t.clock.advance(60 * 60_000); // 11:00, alice is logged in
    await until('skipped', () => t.of('maintenance.window').length === 1);
    expect(t.of('maintenance.window')[0]).toMatchObject({ phase: 'skipped', reason: expect.stringContaining('alice') });
    expect(await t.adapter.state('tandem-erp')).toBe('stopped');
    await desktop.removeSession('c1');
    await desktop.addSession('g1', 0, 'lightdm', 'greeter'); // the login screen is no user
    await t.clock.advance(24 * 60 * 60_000);
    await until('started', () => t.of('maintenance.window').length === 2);
    expect(t.of('maintenance.window')[1]).toMatchObject({ phase: 'started', before: 'stopped' });
    expect(await t.adapter.state('tandem-erp')).toBe('running');
    await t.clock.waitForSleepers();
    await t.clock.advance(30 * 60_000);
    await until('finished', () => t.of('maintenance.window').length === 3);
    expect(await t.adapter.state('tandem-erp')).toBe('stopped');
  });

  it('a near expiry is a usage.warning and a critical desktop notification', async () => {
    const t = await run("hardware: { memory: { fixedMiB: 512 } }\n  usage: { expiresAt: '2026-11-23T10:10:00Z' }");
    await until('the notification', () => desktop.notifications.length === 1);
    expect(t.of('usage.warning')[0]).toMatchObject({ check: 'expiry', remainingMs: 10 * 60_000 });
    expect(desktop.notifications[0]).toMatchObject({
      appName: 'Tandem',
      summary: 'erp: the workspace expires',
      urgency: 2,
    });
  });
});
