// The host agent on the mock adapter and a virtual clock, driven through its socket API the
// way a tray app would: an idle lock, a lock on host sleep, a watchdog restart and an expired
// offline lease, each shown by the events the agent pushes.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient, runAgent, sessionEnforcement } from '@tandem/agent';
import { VirtualClock, type AnyTandemEvent } from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';

/**
 * A desktop of one's own (what D-Bus gives `tandem agent run`): the example emits logind's
 * PrepareForSleep itself, holding the sleep until the work it was handed settles.
 */
class ExampleDesktop extends EventEmitter {
  async sleep(start: boolean): Promise<void> {
    const work: Promise<unknown>[] = [];
    this.emit('prepare-for-sleep', start, (p: Promise<unknown>) => work.push(p));
    await Promise.allSettled(work);
  }
}

/** What the example saw, one line per step. */
export interface AgentExampleResult {
  lines: string[];
  events: AnyTandemEvent[];
}

/** Runs the whole story in a temporary directory; everything is removed at the end. */
export async function runAgentExample(): Promise<AgentExampleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-agent-example-'));
  const lines: string[] = [];
  const say = (l: string): void => void lines.push(l);
  const clock = new VirtualClock(Date.parse('2026-12-01T09:00:00Z'));
  const adapter = new MockAdapter({ clock });
  const desktop = new ExampleDesktop();
  // The user's password, for the unlock (the agent's default check is unix_chkpwd).
  const password = randomBytes(9).toString('base64url');
  let leaseNotAfter = '2027-01-01T00:00:00Z';
  const running = await runAgent({
    stateDir: join(dir, 'state'),
    socketPath: join(dir, 'agent.sock'),
    openAdapter: async () => ({ adapter, name: 'mock' }),
    clock,
    version: 'example',
    enforcement: sessionEnforcement({
      desktop,
      credentials: {
        verify: async (given) =>
          given === password
            ? { ok: true, user: 'demo', method: 'example' }
            : { ok: false, user: 'demo', method: 'example', reason: 'wrong password' },
      },
      watchdog: { backoffMs: 2_000, pollMs: 0 },
      enforcer: { leaseNotAfter: () => leaseNotAfter, location: async () => ({ dnsSuffixes: [] }) },
    }),
  });
  const events: AnyTandemEvent[] = [];
  const client = await AgentClient.connect(running.server.socketPath, { client: 'agent-example' });
  try {
    await client.subscribe({}, (e) => {
      events.push(e);
      const d = e.data as Record<string, unknown>;
      if (e.type === 'session.locked') say(`  event session.locked (${String(d['cause'])}): ${String(d['reason'])}`);
      else if (e.type.startsWith('watchdog.') || e.type.startsWith('usage.'))
        say(`  event ${e.type} ${JSON.stringify(d)}`);
    });
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      for (let i = 0; i < 5_000 && !ok(); i++) await new Promise((r) => setImmediate(r));
      if (!ok()) throw new Error(`the example expected ${what}`);
    };
    const has =
      (type: string, pred: (d: Record<string, unknown>) => boolean = () => true) =>
      () =>
        events.some((e) => e.type === type && pred(e.data));

    const ws = join(dir, 'erp');
    mkdirSync(join(ws, 'images'), { recursive: true });
    writeFileSync(join(ws, 'images', 'disk.img'), Buffer.alloc(1 << 20));
    writeFileSync(
      join(ws, 'tandem.workspace.yaml'),
      `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 1024 } }\n  usage: { idleLock: PT10M, atLimit: stop }\n`,
    );
    const up = await client.call('up', { file: join(ws, 'tandem.workspace.yaml'), adapter: 'mock' });
    say(`up: ${up.workspace} ${up.state} (VM ${up.vm})`);

    say('idle lock: 10 minutes without activity (the clock is virtual)');
    await clock.advance(5 * 60_000);
    await client.call('activity', { source: 'agent-example' }); // the user was there at 5 min
    await clock.advance(10 * 60_000);
    await until(
      'an idle lock',
      has('session.locked', (d) => d['cause'] === 'idle'),
    );
    say(`  sessions: ${(await client.call('sessions')).sessions.map((s) => `${s.workspace} ${s.state}`).join(', ')}`);
    await client
      .call('unlock', { password: 'wrong' })
      .catch((err: Error) => say(`  unlock with a wrong password: ${err.message}`));
    await clock.advance(60_000); // past the delay a failure costs
    say(`  unlock with the password: ${(await client.call('unlock', { password })).state}`);

    say('lock on sleep: logind says PrepareForSleep(true)');
    await desktop.sleep(true);
    await until(
      'a lock on sleep',
      has('session.locked', (d) => d['cause'] === 'host-sleep'),
    );
    await desktop.sleep(false);
    await client.call('activity', { source: 'agent-example' });
    say(`  after wake, unlock: ${(await client.call('unlock', { password })).state}`);

    say('watchdog: the VM process dies');
    adapter.crash(up.vm, 'the qemu process was killed');
    await until('a restart to be scheduled', has('watchdog.scheduled'));
    await clock.advance(2_000);
    await until('a watchdog restart', has('watchdog.restarted'));
    say(`  sessions: ${(await client.call('sessions')).sessions.map((s) => `${s.workspace} ${s.state}`).join(', ')}`);

    say("expired lease: the disk key's offline lease ends in 30 minutes");
    leaseNotAfter = new Date(clock.now() + 30 * 60_000).toISOString();
    for (let i = 0; i < 6 && !has('usage.limit')(); i++) {
      await client.call('activity', { source: 'agent-example' });
      await clock.advance(5 * 60_000);
      await until('the enforcer to run', () => true);
    }
    await until(
      'the lease limit',
      has('usage.limit', (d) => d['check'] === 'lease'),
    );
    await until('the session to stop', () => running.agent.session('erp')?.state === 'stopped');
    say(`  sessions: ${(await client.call('sessions')).sessions.map((s) => `${s.workspace} ${s.state}`).join(', ')}`);
    await client.call('resume', {}).catch((err: Error) => say(`  resume refused: ${err.message}`));
    await client.call('shutdown');
    await running.stopped;
    return { lines, events };
  } finally {
    client.close();
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
