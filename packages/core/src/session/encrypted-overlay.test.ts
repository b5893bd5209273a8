// Encrypted per-session overlays (issue 11): on an encrypted disk a revertible workspace and the
// end-of-session snapshot use an overlay the adapter puts on the disk, not the hypervisor's
// snapshots. The mock models it: writes while an overlay is on are gone once it is discarded.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { SessionManager } from './manager.js';

const workspace = (usage: string) =>
  parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2, encryption: { keyId: erp-key } }
  hardware:
    memory: { minMiB: 512, maxMiB: 1024, hostFraction: 0.25 }
  usage: ${usage}
`);

function setup(adapterOptions: ConstructorParameters<typeof MockAdapter>[0] = {}) {
  const clock = new VirtualClock(Date.parse('2026-12-02T10:00:00Z'));
  const adapter = new MockAdapter({ clock, ...adapterOptions });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const manager = new SessionManager({ adapter, events });
  const diskKeys = new Map([['erp-key', randomBytes(32)]]);
  return { adapter, manager, seen, diskKeys };
}

describe('encrypted overlays per session', () => {
  it('gives a revertible session on an encrypted disk a fresh overlay and discards it at the end', async () => {
    const { adapter, manager, diskKeys, seen } = setup();
    const s = await manager.open(workspace('{ mode: revertible }'), { diskKeys });
    // No baseline snapshot: the untouched encrypted base is the baseline.
    expect(await s.snapshots()).toEqual([]);
    adapter.writeDisk(s.vm, 'as delivered');
    await s.start();
    const [on] = await adapter.encryptedOverlays.list(s.vm);
    expect(on?.base).toMatch(/erp\.qcow2$/);
    expect(on?.overlay).not.toBe(on?.base);
    await s.stop({ force: true });
    adapter.writeDisk(s.vm, 'written in the session');
    expect(await s.end()).toBe('revert');
    expect(await adapter.encryptedOverlays.list(s.vm)).toEqual([]);
    expect(adapter.readDisk(s.vm)).toBe('as delivered');
    expect(s.state).toBe('stopped');
    expect(seen.some((e) => e.type === 'snapshot.reverted')).toBe(true);
    expect(adapter.calls.some((c) => c.op === 'snapshot.create' || c.op === 'snapshot.revert')).toBe(false);
  });

  it('discards an overlay left by a revertible session that never ended before the next start', async () => {
    const { adapter, manager, diskKeys } = setup();
    const s = await manager.open(workspace('{ mode: revertible }'), { diskKeys });
    adapter.writeDisk(s.vm, 'as delivered');
    await s.start();
    const [first] = await adapter.encryptedOverlays.list(s.vm);
    await s.stop({ force: true });
    adapter.writeDisk(s.vm, 'left behind');
    await s.close();
    const again = await manager.open(workspace('{ mode: revertible }'), { diskKeys });
    await again.start();
    const [second] = await adapter.encryptedOverlays.list(again.vm);
    expect(second?.overlay).not.toBe(first?.overlay);
    await again.stop({ force: true });
    expect(adapter.readDisk(again.vm)).toBe('as delivered');
  });

  it('keeps the overlay at a snapshot end and writes on it again at the next start', async () => {
    const { adapter, manager, diskKeys } = setup();
    const s = await manager.open(workspace('{ onSessionEnd: snapshot }'), { diskKeys });
    await s.start();
    const kept = await adapter.encryptedOverlays.list(s.vm);
    expect(kept).toHaveLength(1);
    await s.stop({ force: true });
    adapter.writeDisk(s.vm, 'session one');
    await s.start();
    expect(await s.end()).toBe('snapshot');
    expect(s.state).toBe('stopped');
    expect(await adapter.encryptedOverlays.list(s.vm)).toEqual(kept);
    expect(adapter.readDisk(s.vm)).toBe('session one');
    await s.start();
    expect(await adapter.encryptedOverlays.list(s.vm)).toEqual(kept);
    expect(adapter.calls.filter((c) => c.op === 'encryptedOverlays.create')).toHaveLength(1);
    expect(adapter.calls.some((c) => c.op === 'snapshot.create')).toBe(false);
  });

  it('refuses to start without the disk key, before the VM is touched', async () => {
    const { adapter, manager } = setup();
    const s = await manager.open(workspace('{ mode: revertible }'));
    await expect(s.start()).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
    expect(await adapter.state(s.vm)).toBe('stopped');
    expect(await adapter.encryptedOverlays.list(s.vm)).toEqual([]);
  });

  it('falls back to the baseline snapshot when the adapter has no encrypted overlays', async () => {
    const { adapter, manager, diskKeys } = setup({ capabilities: { encryptedOverlays: false } });
    const s = await manager.open(workspace('{ mode: revertible }'), { diskKeys });
    expect((await s.snapshots()).map((x) => x.name)).toEqual(['tandem-baseline']);
    await s.start();
    expect(await adapter.encryptedOverlays.list(s.vm)).toEqual([]);
  });

  it('uses no overlay for a persistent workspace that shuts down at the end', async () => {
    const { adapter, manager, diskKeys } = setup();
    const s = await manager.open(workspace('{ onSessionEnd: shutdown }'), { diskKeys });
    await s.start();
    expect(await adapter.encryptedOverlays.list(s.vm)).toEqual([]);
  });
});
