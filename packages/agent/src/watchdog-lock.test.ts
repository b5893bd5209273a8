// The watchdog's restart takes the workspace's lock, the one the agent's session commands take:
// a `stop` or `down` the user issues while a restart is under way runs after it, never amid it.
// The window is real for an encrypted workspace, whose restart first releases the disk key again
// (the envelope and lease checked, which takes a while): here that release is held open, and the
// user's command arrives while it is. Without the lock, the `stop` ran first and the restart then
// started the VM the user had just stopped; the `down` removed the VM and the restart then failed
// on the closed session after it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AnyTandemEvent, DiskKeyRelease } from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';
import { sessionEnforcement } from './enforcement.js';
import { tempDir, writeWorkspace } from './fixtures.test-helper.js';
import { HostAgent } from './host-agent.js';

/** Resolves when `p` settles or after `ms`, whichever is first (a wait, never an assertion). */
function settledOrAfter(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    void p.then(
      () => (clearTimeout(t), resolve()),
      () => (clearTimeout(t), resolve()),
    );
  });
}

describe("the agent's watchdog restart and the user's commands", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** An agent on the mock with an encrypted `erp` running; the next key release waits for `release()`. */
  async function crashedDuringRestart(): Promise<{
    agent: HostAgent;
    adapter: MockAdapter;
    vm: string;
    events: AnyTandemEvent[];
    release: () => void;
  }> {
    const tmp = tempDir();
    cleanup.push(tmp.remove);
    const file = writeWorkspace(tmp.dir, 'erp');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('format: raw }', 'format: raw, encryption: { keyId: erp } }'),
    );
    const adapter = new MockAdapter({ stateFile: join(tmp.dir, 'mock.json') });
    let hold: Promise<void> = Promise.resolve();
    let release = (): void => undefined;
    const diskKeys = vi.fn(async (): Promise<DiskKeyRelease> => {
      await hold;
      const map = new Map<string, Uint8Array>([['erp', Buffer.alloc(32, 9)]]);
      return { diskKeys: map, imageId: 'erp', version: '1.0.0', dataKeyId: 'k', [Symbol.dispose]: () => map.clear() };
    });
    const agent = new HostAgent({
      stateDir: join(tmp.dir, 'state'),
      openAdapter: async () => ({ adapter, name: 'mock' }),
      diskKeys,
      enforcement: sessionEnforcement({
        credentials: { verify: async () => ({ ok: true, user: 'alice', method: 'test' }) },
        watchdog: { backoffMs: 10, pollMs: 0 },
      }),
    });
    cleanup.push(() => agent.close());
    const events: AnyTandemEvent[] = [];
    agent.events.on('*', (e) => void events.push(e));
    await agent.start();
    const up = await agent.up({ file, adapter: 'mock' });
    expect(up.state).toBe('running');

    hold = new Promise((r) => (release = r));
    adapter.crash(up.vm);
    // The restart has begun and waits for the key: the user's command arrives now.
    await vi.waitFor(
      () => {
        expect(events.map((e) => e.type)).toContain('watchdog.restart');
        expect(diskKeys).toHaveBeenCalledTimes(2);
      },
      { timeout: 120_000 },
    );
    return { agent, adapter, vm: up.vm, events, release };
  }

  it('a stop issued while the watchdog restarts the VM runs after the restart and leaves the VM stopped', async () => {
    const { agent, adapter, vm, events, release } = await crashedDuringRestart();
    const stopping = agent.stop({ workspace: 'erp', force: true });
    // Give a stop that does not wait for the restart the time to run first.
    await settledOrAfter(stopping, 2_000);
    release();
    expect((await stopping).state).toBe('stopped');
    const types = events.map((e) => e.type);
    expect(types).toContain('watchdog.restarted');
    expect(await adapter.state(vm)).toBe('stopped');
    expect(agent.session('erp')?.state).toBe('stopped');
    // The restart ended before the stop began: the last transition is the user's stop.
    const transitions = events.filter((e) => e.type === 'session.transition').map((e) => e.data as { to: string });
    expect(transitions.at(-1)?.to).toBe('stopped');
    expect(types.lastIndexOf('watchdog.restarted')).toBeLessThan(
      events.findLastIndex((e) => e.type === 'session.transition' && (e.data as { to: string }).to === 'stopped'),
    );
  });

  it('a down issued while the watchdog restarts the VM runs after the restart: the VM is gone and nothing of the watchdog follows', async () => {
    const { agent, adapter, vm, events, release } = await crashedDuringRestart();
    let downAt = -1;
    const down = agent.down({ workspace: 'erp' }).then((r) => ((downAt = events.length), r));
    await settledOrAfter(down, 2_000);
    release();
    expect((await down).workspace).toBe('erp');
    expect((await adapter.list()).map((v) => v.name)).not.toContain(vm);
    expect(agent.state.find('erp')).toBeUndefined();
    // Let anything still pending run, then: the restart completed before the down, none after it.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(events.slice(0, downAt).map((e) => e.type)).toContain('watchdog.restarted');
    expect(events.slice(downAt).filter((e) => e.type.startsWith('watchdog.'))).toEqual([]);
  });
});
