import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import { SessionManager } from '../session/manager.js';
import { brokenCopy } from '../testing/conformance-collector.test-helper.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { assertCapabilitiesMatchMembers, capabilityMismatches } from './capability-check.js';
import { loadAdapterModule } from './registry.js';
import type { HypervisorAdapter } from './types.js';

/** The mock without save()/restore(), its capabilities still claiming save. */
function saveless(): HypervisorAdapter {
  return brokenCopy(new MockAdapter(), { name: 'saveless', save: undefined, restore: undefined });
}

describe('capabilities against members', () => {
  it('finds nothing wrong with the mock, and every missing member of a wrong one', () => {
    expect(capabilityMismatches(new MockAdapter())).toEqual([]);
    expect(capabilityMismatches(saveless())).toEqual([
      { capability: 'suspend.save', member: 'save()' },
      { capability: 'suspend.save', member: 'restore()' },
    ]);
    const noSnapshots = brokenCopy(new MockAdapter(), {
      snapshots: { list: async () => [] } as unknown as HypervisorAdapter['snapshots'],
    });
    expect(capabilityMismatches(noSnapshots).map((m) => m.member)).toEqual([
      'snapshots.create()',
      'snapshots.revert()',
      'snapshots.delete()',
    ]);
  });

  it('an adapter claiming encrypted overlays without their members is caught', () => {
    const noOverlays = brokenCopy(new MockAdapter(), { name: 'no-overlays', encryptedOverlays: undefined });
    expect(capabilityMismatches(noOverlays)).toEqual([
      { capability: 'encryptedOverlays', member: 'encryptedOverlays.create()' },
      { capability: 'encryptedOverlays', member: 'encryptedOverlays.discard()' },
      { capability: 'encryptedOverlays', member: 'encryptedOverlays.list()' },
    ]);
  });

  it('an adapter claiming a live network change without setNetwork() is caught', () => {
    const live = new MockAdapter({ capabilities: { liveNetwork: true } });
    expect(capabilityMismatches(live)).toEqual([]);
    const noSetNetwork = brokenCopy(live, { name: 'no-live-network' });
    expect(capabilityMismatches(noSetNetwork)).toEqual([{ capability: 'liveNetwork', member: 'setNetwork()' }]);
  });

  it('an adapter that claims less than it has is fine', () => {
    const a = new MockAdapter({ capabilities: { snapshots: false, seamlessWindows: [], diskEncryption: false } });
    expect(() => assertCapabilitiesMatchMembers(a)).not.toThrow();
  });

  it('loadAdapterModule checks every adapter its module creates, naming the adapter and the member', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-adapter-pkg-'));
    const file = join(dir, 'index.mjs');
    writeFileSync(
      file,
      `export const tandemAdapter = { name: 'qmp', create: () => ({ name: 'qmp', capabilities: {
        snapshots: false, suspend: { pause: true, save: true }, seamlessWindows: [], guestChannel: ['vsock'],
        sharedFolders: false, usb: false, diskEncryption: false, remoteHost: false } }) };\n`,
    );
    const module = await loadAdapterModule(pathToFileURL(file).href);
    expect(module.name).toBe('qmp');
    const err = (() => {
      try {
        module.create();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((err as Error).message).toContain('The qmp adapter claims capabilities it does not implement');
    expect((err as Error).message).toContain('suspend.save needs save()');
    expect((err as Error).message).toContain('guestChannel needs guestChannel.open()');
    expect((err as TandemError).details['adapter']).toBe('qmp');
  });

  it("Session.suspend({ mode: 'save' }) on an adapter claiming save without the members is a typed error", async () => {
    const workspace = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware:
    memory: { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 }
`);
    const manager = new SessionManager({ adapter: saveless(), events: new EventBus() });
    const session = await manager.open(workspace);
    await session.start();
    const err = await session.suspend({ mode: 'save' }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((err as Error).message).toMatch(/saveless adapter claims suspend\.save but has no save\(\), restore\(\)/);
    expect(err).not.toBeInstanceOf(TypeError);
  });
});
