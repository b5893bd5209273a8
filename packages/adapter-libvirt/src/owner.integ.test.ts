// The owner record of the host agent's "another user" rule, on a real libvirtd: written into the
// domain's metadata, read back by any connection, on a stopped and on a running domain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtAdapter } from './adapter.js';
import { libvirtOwnership } from './owner.js';
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

describe.skipIf(!gate.enabled)('libvirtOwnership on qemu:///system', () => {
  const name = itName('owner');
  let images: Awaited<ReturnType<typeof imageDir>>;
  const adapter = new LibvirtAdapter({ uri: QEMU_URI });
  beforeAll(async () => {
    images = await imageDir();
    await adapter.define(smallSpec(name, await emptyDisk(images.dir, `${name}.qcow2`)));
  });
  afterAll(async () => {
    await purge(name);
    await images?.remove();
  });

  it('a stopped domain has no owner until claimed; a claim replaces the last one', async () => {
    const owners = libvirtOwnership({ uri: QEMU_URI });
    expect(await owners.owner(name)).toBeUndefined();
    await owners.claim(name, 1000);
    expect(await owners.owner(name)).toBe(1000);
    await owners.claim(name, 1001);
    expect(await owners.owner(name)).toBe(1001);
    expect(await virsh('dumpxml', '--domain', name, '--inactive')).toContain(
      '<tandem:owner xmlns:tandem="https://tandem.dev/xmlns/owner/1" uid="1001"/>',
    );
  });

  it('a running domain is claimed live and in its persistent definition', async () => {
    const owners = libvirtOwnership({ uri: QEMU_URI });
    await adapter.start(name);
    await owners.claim(name, 1002);
    expect(await owners.owner(name)).toBe(1002);
    expect(await virsh('dumpxml', '--domain', name, '--inactive')).toContain('uid="1002"');
    await adapter.stop(name, { force: true });
    expect(await owners.owner(name)).toBe(1002);
  });
});
