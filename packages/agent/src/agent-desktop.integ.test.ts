// The agent with its real desktop: a dbus-daemon with the stand-in logind, ScreenSaver and
// Notifications (B's test desktop), the agent's socket, the mock adapter on a virtual clock.
// What the desktop says over D-Bus reaches the sessions the agent owns.
import { join } from 'node:path';
import { VirtualClock, type AnyTandemEvent } from '@tandem/core';
import { MockAdapter, integrationGate } from '@tandem/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from './client.js';
import { startTestDesktop, testDesktopProblem, type TestDesktop } from './desktop/test-desktop.test-helper.js';
import { desktopEnforcement } from './enforcement.js';
import { tempDir, writeWorkspace } from './fixtures.test-helper.js';
import { runAgent, type RunningAgent } from './run.js';

const gate = await integrationGate(
  'dbus',
  () => testDesktopProblem(),
  'apt-get install dbus python3-dbus python3-gi systemd',
);
const uid = process.getuid?.() ?? 0;
delete process.env['XDG_SESSION_ID'];

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!gate.enabled)('the agent on a real D-Bus desktop', () => {
  let desktop: TestDesktop;
  let t: ReturnType<typeof tempDir>;
  let running: RunningAgent;
  let client: AgentClient;
  let closeDesktop: () => Promise<void>;
  const events: AnyTandemEvent[] = [];
  beforeEach(async () => {
    events.length = 0;
    desktop = await startTestDesktop();
    await desktop.addSession('c1', uid, 'alice');
    t = tempDir();
    const clock = new VirtualClock(Date.parse('2026-12-01T09:00:00Z'));
    const adapter = new MockAdapter({ clock });
    const enforcement = await desktopEnforcement({
      monitor: { sessionBusAddress: desktop.address, systemBusAddress: desktop.address, uid },
      credentials: { verify: async () => ({ ok: true, user: 'alice', method: 'test' }) },
      enforcer: { location: async () => ({ dnsSuffixes: [] }) },
    });
    expect(enforcement.note).toBeUndefined();
    closeDesktop = enforcement.close;
    running = await runAgent({
      stateDir: join(t.dir, 'state'),
      socketPath: join(t.dir, 'agent.sock'),
      openAdapter: async () => ({ adapter, name: 'mock' }),
      clock,
      enforcement: enforcement.factory,
    });
    client = await AgentClient.connect(running.server.socketPath);
    await client.subscribe({}, (e) => events.push(e));
  });
  afterEach(async () => {
    client?.close();
    await running?.stop();
    await closeDesktop?.();
    await desktop?.close();
    t?.remove();
  });

  it("locks on logind's PrepareForSleep and lets the delay lock go, and ends the session at logout", async () => {
    const file = writeWorkspace(t.dir, 'erp', '  usage: { onSessionEnd: shutdown }\n');
    expect(await client.call('up', { file, adapter: 'mock' })).toMatchObject({ state: 'running' });
    await desktop.prepareForSleep(true);
    await until('the lock on sleep', () =>
      events.some((e) => e.type === 'session.locked' && (e.data as { cause: string }).cause === 'host-sleep'),
    );
    expect((await client.call('sessions')).sessions[0]).toMatchObject({ state: 'locked' });
    await until(
      'the delay lock released',
      async () => !(await desktop.inhibitors()).some((i) => i.held && i.who === 'Tandem'),
    );
    await desktop.prepareForSleep(false);
    expect(await client.call('unlock', { password: 'x' })).toMatchObject({ state: 'running' });

    await desktop.removeSession('c1');
    await until('the session ended', () => running.agent.session('erp')?.state === 'stopped');
    expect((await client.call('sessions')).sessions[0]).toMatchObject({ state: 'stopped' });
    // Recorded at once: a restarted agent finds it stopped.
    expect(running.agent.state.find('erp')?.state).toBe('stopped');
  });
});
