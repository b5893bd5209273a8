// A running VM's network switched without a restart (setNetwork, for the host agent's network by
// location), on a real libvirtd with QEMU, checked against what virsh says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtAdapter } from './adapter.js';
import {
  emptyDisk,
  imageDir,
  itName,
  purge,
  QEMU_URI,
  qemuGate,
  smallSpec,
  virsh,
} from './testing/fixtures.test.helpers.js';

const gate = await qemuGate();

describe.skipIf(!gate.enabled)('libvirt setNetwork on qemu:///system', () => {
  let images: Awaited<ReturnType<typeof imageDir>>;
  const name = itName('livenet');
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });

  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => {
    await adapter.close();
    await purge(name);
    await images.remove();
  });

  it('switches a running VM between NAT and none and back, keeping its MAC, without a restart', async () => {
    expect(adapter.capabilities.liveNetwork).toBe(true);
    await adapter.define(smallSpec(name, await emptyDisk(images.dir, name), { network: { mode: 'nat' } }));
    await adapter.start(name);
    const id = await virsh('domid', name);
    const before = await virsh('domiflist', name);
    expect(before).toMatch(/\bnetwork\s+default\b/);
    const mac = /([0-9a-f]{2}(:[0-9a-f]{2}){5})/.exec(before)?.[1];
    expect(mac).toBeDefined();

    await adapter.setNetwork(name, { mode: 'none' });
    expect(await virsh('domif-getlink', name, mac!)).toMatch(/down/);
    expect(await virsh('domid', name)).toBe(id); // the same QEMU: no restart

    await adapter.setNetwork(name, { mode: 'nat' });
    expect(await virsh('domif-getlink', name, mac!)).toMatch(/up/);
    const after = await virsh('domiflist', name);
    expect(after).toMatch(/\bnetwork\s+default\b/);
    expect(after).toContain(mac!);
    expect(await virsh('domid', name)).toBe(id);
    // The persistent definition has the mode too: the next start keeps it.
    const inactive = await virsh('dumpxml', '--inactive', name);
    expect(inactive).toContain(mac!);
    expect(inactive).toMatch(/<tandem:vm [^>]*network=["']nat["']/);
    expect(inactive).toMatch(/<tandem:disk |<tandem:vm [^>]*osFamily=["']other["']/);

    await adapter.stop(name, { force: true });
    await expect(adapter.setNetwork(name, { mode: 'none' })).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
  }, 300_000);
});
