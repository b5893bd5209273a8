// The agent's watchdog on an encrypted workspace, on the mock hypervisor (which refuses an
// encrypted disk started without its key): each restart releases the key again through
// HostAgentOptions.diskKeys and wipes it after; a refused release (an ended lease) fails the
// restart naming it and the watchdog gives up. The same on real QEMU through `tandem agent run`:
// packages/cli/src/agent-encrypted-watchdog.integ.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaseError, type DiskKeyRelease } from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';
import { sessionEnforcement } from './enforcement.js';
import { tempDir, writeWorkspace } from './fixtures.test-helper.js';
import { HostAgent } from './host-agent.js';

describe('the agent watchdog on an encrypted workspace', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('releases the key again for each restart, wipes it after, and gives up naming the lease once it ended', async () => {
    const tmp = tempDir();
    cleanup.push(tmp.remove);
    // The fixture's workspace, its image encrypted.
    const file = writeWorkspace(tmp.dir, 'erp');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('format: raw }', 'format: raw, encryption: { keyId: erp } }'),
    );
    const adapter = new MockAdapter({ stateFile: join(tmp.dir, 'mock.json') });
    const handed: Buffer[] = [];
    let refuse = false;
    const diskKeys = vi.fn(async (): Promise<DiskKeyRelease> => {
      if (refuse)
        throw new LeaseError(
          'The offline lease in /state/envelopes/erp.envelope ended at 2020-01-15T00:00:00.000Z. Connect to get a new envelope.',
        );
      const key = Buffer.alloc(32, 9);
      handed.push(key);
      const map = new Map<string, Uint8Array>([['erp', key]]);
      return {
        diskKeys: map,
        imageId: 'erp',
        version: '1.0.0',
        dataKeyId: 'k',
        [Symbol.dispose]: () => {
          key.fill(0);
          map.clear();
        },
      };
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
    await agent.start();
    const up = await agent.up({ file, adapter: 'mock' });
    expect(up.state).toBe('running');
    expect(diskKeys).toHaveBeenCalledTimes(1);
    const types = (): string[] => agent.replay({ workspace: 'erp' }).map((e) => e.type);

    // The VM's process dies: the key is released again for the restart, and wiped after.
    adapter.crash(up.vm);
    await vi.waitFor(() => expect(types()).toContain('watchdog.restarted'), { timeout: 60_000 });
    expect(agent.session('erp')?.state).toBe('running');
    expect(diskKeys).toHaveBeenCalledTimes(2);
    expect(handed.every((k) => k.every((b) => b === 0))).toBe(true);

    // Once the lease has ended the restart is refused, naming the lease, and the VM stays down.
    refuse = true;
    adapter.crash(up.vm);
    await vi.waitFor(() => expect(types()).toContain('watchdog.gave-up'), { timeout: 60_000 });
    const events = agent.replay({ workspace: 'erp', types: ['watchdog.failed', 'watchdog.gave-up'] });
    expect(events.map((e) => e.data)).toEqual([
      expect.objectContaining({
        code: 'TANDEM_LEASE',
        message: expect.stringMatching(/disk key was not released for the restart.*offline lease.*ended/),
      }),
      expect.objectContaining({
        reason: expect.stringMatching(/disk key was refused for the restart: The offline lease/),
      }),
    ]);
    expect(agent.session('erp')?.state).toBe('crashed');
    expect(await adapter.state(up.vm)).toBe('crashed');
  });
});
