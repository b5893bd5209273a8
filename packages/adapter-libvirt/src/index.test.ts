import { describe, expect, it } from 'vitest';
import { AdapterRegistry, loadAdapterModule } from '@tandem/core';
import { LibvirtAdapter, libvirt, tandemAdapter } from './index.js';
import { probeLibvirt } from './probe.js';
import { LibvirtConnection } from './connection.js';
import { Virsh } from './virsh/runner.js';

describe('adapter module', () => {
  it('is found by name, by the registry and by package name', async () => {
    expect(tandemAdapter.name).toBe('libvirt');
    const adapter = new AdapterRegistry([tandemAdapter]).create('libvirt', { uri: 'test:///default' });
    expect(adapter).toBeInstanceOf(LibvirtAdapter);
    expect((adapter as LibvirtAdapter).uri).toBe('test:///default');
    const loaded = await loadAdapterModule('@tandem/adapter-libvirt');
    expect(loaded.name).toBe('libvirt');
  });

  it('declares its capabilities as data', () => {
    const a = libvirt({ uri: 'qemu:///system' });
    expect(a.capabilities).toMatchObject({
      snapshots: { live: true, deleteWithChildren: true },
      suspend: { pause: true, save: true },
      seamlessWindows: ['rdp-remoteapp', 'xpra'],
      guestChannel: ['virtio-serial'],
      diskEncryption: true,
      remoteHost: true,
      directKernelBoot: true,
    });
    expect(
      a.snapshots && a.guestChannel && a.diskEncryption && a.seamless && a.save && a.restore && a.watch,
    ).toBeTruthy();
  });

  it('takes the URI from TANDEM_LIBVIRT_URI when none is given', () => {
    const before = process.env['TANDEM_LIBVIRT_URI'];
    process.env['TANDEM_LIBVIRT_URI'] = 'qemu+ssh://admin@hv1/system';
    try {
      expect((tandemAdapter.create() as LibvirtAdapter).uri).toBe('qemu+ssh://admin@hv1/system');
    } finally {
      if (before === undefined) delete process.env['TANDEM_LIBVIRT_URI'];
      else process.env['TANDEM_LIBVIRT_URI'] = before;
    }
  });

  it('says plainly when the binding is missing and how to fix it', async () => {
    const result = await probeLibvirt(
      new LibvirtConnection('qemu:///system'),
      new Virsh('qemu:///system'),
      async () => 'qemu',
      {
        ok: false,
        reason: "Cannot find package '@unraid/libvirt'",
      },
    );
    expect(result.usable).toBe(false);
    if (result.usable) return;
    expect(result.reason).toContain('@unraid/libvirt is not installed');
    expect(result.reason).toContain("Cannot find package '@unraid/libvirt'");
    expect(result.fix).toContain('libvirt-dev');
    expect(result.fix).toContain('npm rebuild @unraid/libvirt');
  });
});
