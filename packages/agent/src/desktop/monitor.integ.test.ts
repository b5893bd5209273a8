import { EventBus, type AnyTandemEvent } from '@tandem/core';
import { integrationGate } from '@tandem/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DesktopMonitor } from './monitor.js';
import { startTestDesktop, testDesktopProblem, type TestDesktop } from './test-desktop.test-helper.js';

const gate = await integrationGate(
  'dbus',
  () => testDesktopProblem(),
  'apt-get install dbus python3-dbus python3-gi systemd',
);

/** Waits for a condition that real processes make true, without asserting how long it takes. */
async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const uid = process.getuid?.() ?? 0;
// The monitor follows XDG_SESSION_ID first: a developer's own desktop session is not on the test bus.
delete process.env['XDG_SESSION_ID'];

describe.skipIf(!gate.enabled)('DesktopMonitor on a real dbus-daemon', () => {
  let desktop: TestDesktop;
  let monitor: DesktopMonitor | undefined;
  beforeEach(async () => {
    desktop = await startTestDesktop();
    await desktop.addSession('c1', uid, 'alice');
  });
  afterEach(async () => {
    await monitor?.close();
    monitor = undefined;
    await desktop.close();
  });

  const open = async (): Promise<DesktopMonitor> => {
    monitor = new DesktopMonitor({ sessionBusAddress: desktop.address, systemBusAddress: desktop.address, uid });
    const status = await monitor.start();
    expect(status.every((s) => s.connected)).toBe(true);
    return monitor;
  };

  it("follows the user's display session: IdleHint and the screen saver become idle and active", async () => {
    const m = await open();
    expect(m.loginSessionId).toBe('c1');
    const seen: string[] = [];
    m.on('idle', (source) => seen.push(`idle:${source}`));
    m.on('active', (source) => seen.push(`active:${source}`));
    await desktop.setIdleHint('c1', true);
    await until('idle from logind', () => seen.includes('idle:logind'));
    await desktop.setIdleHint('c1', false);
    await until('active from logind', () => seen.includes('active:logind'));
    desktop.screenSaverActive(true);
    await until('idle from the screen saver', () => seen.includes('idle:screensaver'));
    desktop.screenSaverActive(false);
    await until('active from the screen saver', () => seen.includes('active:screensaver'));
    expect(seen).toEqual(['idle:logind', 'active:logind', 'idle:screensaver', 'active:screensaver']);
  });

  it('holds a sleep delay lock, releases it after the sleep work is done, and takes it again on wake', async () => {
    const m = await open();
    const mine = async (): Promise<boolean> =>
      (await desktop.inhibitors()).some(
        (i) => i.held && i.what === 'sleep' && i.mode === 'delay' && i.who === 'Tandem',
      );
    expect(await mine()).toBe(true);
    expect(m.inhibiting).toBe(true);
    let finish!: () => void;
    const work = new Promise<void>((r) => (finish = r));
    const sleeps: boolean[] = [];
    m.on('prepare-for-sleep', (start, delay) => {
      sleeps.push(start);
      if (start) delay(work);
    });
    await desktop.prepareForSleep(true);
    await until('PrepareForSleep(true)', () => sleeps.includes(true));
    // The lock is held while the work runs...
    expect(await mine()).toBe(true);
    finish();
    // ...and released once it is done, so the host may sleep.
    await until('the lock released', async () => !(await mine()));
    await desktop.prepareForSleep(false);
    await until('the lock taken again', () => mine());
    expect(sleeps).toEqual([true, false]);
  });

  it('reports a logout when the session closes or is removed', async () => {
    const m = await open();
    const reasons: string[] = [];
    m.on('logout', (r) => reasons.push(r));
    await desktop.setState('c1', 'closing');
    await until('logout on closing', () => reasons.length === 1);
    await desktop.removeSession('c1');
    await until('logout on removal', () => reasons.length === 2);
    expect(reasons[0]).toMatch(/closing/);
    expect(reasons[1]).toMatch(/removed/);
  });

  it('sends notifications with their urgency, lists login sessions, reports network changes', async () => {
    const m = await open();
    expect(await m.notify('Workspace expires soon', 'erp expires in 15 minutes', 'critical')).toBe(true);
    expect(desktop.notifications).toEqual([
      { appName: 'Tandem', summary: 'Workspace expires soon', body: 'erp expires in 15 minutes', urgency: 2 },
    ]);
    await desktop.addSession('g1', 0, 'lightdm', 'greeter');
    const sessions = await m.loginSessions();
    expect(sessions.map((s) => `${s.id}:${s.class}`).sort()).toEqual(['c1:user', 'g1:greeter']);
    const changes: string[] = [];
    m.on('network-changed', (r) => changes.push(r));
    await desktop.networkStateChanged(70);
    await until('network-changed', () => changes.length === 1);
  });

  it('without a bus it says why and keeps working', async () => {
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('desktop.status', (e) => seen.push(e));
    monitor = new DesktopMonitor({ sessionBusAddress: null, systemBusAddress: 'unix:path=/nonexistent/bus', events });
    const status = await monitor.start();
    expect(seen.map((e) => e.data).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
      [...status].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    expect(status.find((s) => s.bus === 'system')).toMatchObject({ connected: false });
    expect(status.find((s) => s.bus === 'system')!.reason).toMatch(/cannot connect/);
    expect(status.find((s) => s.bus === 'session')!.reason).toMatch(/no session bus/);
    expect(await monitor.notify('x', 'y')).toBe(false);
  });
});
