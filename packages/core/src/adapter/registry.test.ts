import { describe, expect, it } from 'vitest';
import { MockAdapter, mockAdapterModule } from '../testing/mock-adapter.js';
import { TandemError } from '../errors.js';
import { brokenCopy } from '../testing/conformance-collector.test-helper.js';
import { AdapterRegistry, loadAdapterModule, requireCapability, requireSnapshots } from './registry.js';
import { buildSnapshotTree, formatSnapshotTree } from './snapshot-tree.js';
import type { AdapterModule, HypervisorAdapter, SnapshotInfo } from './types.js';

const NO_CAPABILITIES = new MockAdapter({
  capabilities: {
    snapshots: false,
    suspend: { pause: true, save: false },
    seamlessWindows: [],
    guestChannel: [],
    diskEncryption: false,
    encryptedOverlays: false,
  },
}).capabilities;

const unusable = (name: string, reason: string, fix?: string): AdapterModule => ({
  name,
  create: () =>
    ({
      name,
      capabilities: NO_CAPABILITIES,
      probe: async () => ({ usable: false, adapter: name, reason, ...(fix ? { fix } : {}) }),
    }) as unknown as HypervisorAdapter,
});

/** A mock whose capabilities claim save but which has no save()/restore(), as a buggy adapter would. */
const claimsSaveWithoutMembers = (): HypervisorAdapter =>
  brokenCopy(new MockAdapter(), { name: 'saveless', version: '1.0.0', save: undefined, restore: undefined });

describe('AdapterRegistry', () => {
  it('detects the first usable adapter in order, keeping every report', async () => {
    const registry = new AdapterRegistry([
      unusable('hyperv', 'not Windows'),
      mockAdapterModule,
      unusable('virtualbox', 'never asked'),
    ]);
    const found = await registry.detect();
    expect(found.adapter.name).toBe('mock');
    expect(found.reports.map((r) => r.adapter)).toEqual(['hyperv', 'mock']);
  });

  it('lists every reason in one error when nothing fits', async () => {
    const registry = new AdapterRegistry([
      unusable('libvirt', 'libvirtd is not running', 'start libvirtd'),
      unusable('virtualbox', 'VBoxManage not found'),
      {
        name: 'broken',
        create: () =>
          ({
            name: 'broken',
            capabilities: NO_CAPABILITIES,
            probe: () => Promise.reject(new Error('boom')),
          }) as unknown as HypervisorAdapter,
      },
    ]);
    const err = await registry.detect().catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_NO_ADAPTER')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain('libvirt: libvirtd is not running (fix: start libvirtd)');
    expect(message).toContain('virtualbox: VBoxManage not found');
    expect(message).toContain('broken: probe failed: boom');
    expect(message).toContain('probe() must never throw; return a reason');
  });

  it('names the known adapters when asked for an unknown one', () => {
    const registry = new AdapterRegistry([mockAdapterModule]);
    expect(() => registry.create('vmware')).toThrow(/No adapter named "vmware". Known adapters: mock/);
  });

  it('loads third-party adapters by package name and explains bad packages', async () => {
    await expect(loadAdapterModule('tandem-adapter-that-does-not-exist')).rejects.toMatchObject({
      code: 'TANDEM_NOT_FOUND',
    });
    await expect(loadAdapterModule('node:path')).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    const mod = await loadAdapterModule('@tandem/core/testing').catch((e: unknown) => e);
    // @tandem/core/testing exports mockAdapterModule, not tandemAdapter: it is not an adapter package.
    expect(TandemError.is(mod, 'TANDEM_INVALID_INPUT')).toBe(true);
  });

  it('throws UnsupportedCapabilityError instead of probing for missing features', () => {
    const adapter = new MockAdapter({ capabilities: { snapshots: false } });
    expect(() => requireSnapshots(adapter)).toThrow(expect.objectContaining({ code: 'TANDEM_UNSUPPORTED' }));
  });

  it('refuses, when it creates one, an adapter whose capabilities claim a member it lacks', () => {
    const registry = new AdapterRegistry([{ name: 'saveless', create: claimsSaveWithoutMembers }]);
    const err = (() => {
      try {
        registry.create('saveless');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((err as TandemError).fault).toBe('adapter');
    expect((err as Error).message).toContain('The saveless adapter');
    expect((err as Error).message).toContain('suspend.save needs save()');
    expect((err as Error).message).toContain('restore()');
  });

  it('reports a mismatched adapter as unusable during detection, and moves on', async () => {
    const registry = new AdapterRegistry([{ name: 'saveless', create: claimsSaveWithoutMembers }, mockAdapterModule]);
    const found = await registry.detect();
    expect(found.adapter.name).toBe('mock');
    const first = found.reports[0]?.result;
    expect(first?.usable === false && first.reason).toContain('suspend.save needs save()');
  });

  it('requireCapability names the adapter and the missing member instead of a TypeError later', () => {
    const err = (() => {
      try {
        requireCapability(claimsSaveWithoutMembers(), 'save');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((err as Error).message).toMatch(/saveless adapter claims suspend\.save but has no save\(\), restore\(\)/);
    expect(() => requireCapability(new MockAdapter(), 'save')).not.toThrow();
  });
});

describe('snapshot trees', () => {
  const s = (id: string, parentId: string | null, createdAt: string, current = false): SnapshotInfo => ({
    id,
    name: id,
    parentId,
    createdAt,
    current,
    vmState: 'stopped',
  });
  it('nests by parent, orders by time, and keeps orphans as roots', () => {
    const roots = buildSnapshotTree([
      s('c', 'a', '2026-01-03'),
      s('a', null, '2026-01-01'),
      s('b', 'a', '2026-01-02', true),
      s('orphan', 'gone', '2026-01-04'),
    ]);
    expect(roots.map((r) => r.id)).toEqual(['a', 'orphan']);
    expect(roots[0]?.children.map((c) => c.id)).toEqual(['b', 'c']);
    expect(formatSnapshotTree(roots)).toEqual([
      'a  [stopped, 2026-01-01]',
      '├─ b  [stopped, 2026-01-02] (current)',
      '└─ c  [stopped, 2026-01-03]',
      'orphan  [stopped, 2026-01-04]',
    ]);
  });
});
