import { describe, expect, it } from 'vitest';
import { diffVmSpec, type VmSpec } from '@tandem/core';
import { readDomainFacts } from './domain-facts.js';
import { buildDomainXml, type DomainXmlOptions } from './domain-xml.js';
import { definedView, disksStay, withUuid } from './redefine.js';
import { child, parseXml, path } from './xml/tree.js';

const opts: DomainXmlOptions = { virtType: 'qemu', natNetwork: 'default', hostOnlyNetwork: 'tandem-hostonly' };
const spec: VmSpec = {
  name: 'tandem-erp',
  memoryMiB: 1024,
  cpus: 1,
  disks: [
    { path: '/images/erp-1.qcow2', format: 'qcow2', encryption: { keyId: 'k1' } },
    { path: '/images/data.raw', format: 'raw' },
  ],
  network: { mode: 'bridged', bridge: 'br0' },
  graphics: { kind: 'vnc' },
  osFamily: 'linux',
  labels: { 'tandem.version': '1.0.0' },
};
const UUID = '406be7a8-e9d5-4934-afc7-96f9915d1c80';

describe('redefinition', () => {
  it('reads back what an update compares, so an unchanged spec shows no change', () => {
    const view = definedView(readDomainFacts(buildDomainXml(spec, opts)));
    expect(view).toEqual({
      disks: [
        { path: '/images/erp-1.qcow2', format: 'qcow2', encryption: { keyId: 'k1' } },
        { path: '/images/data.raw', format: 'raw' },
      ],
      network: { mode: 'bridged', bridge: 'br0' },
      labels: { 'tandem.version': '1.0.0' },
      boot: null,
    });
    expect(diffVmSpec(view, spec)).toEqual([]);
    expect(diffVmSpec(view, { ...spec, network: { mode: 'nat' } }).map((c) => c.field)).toEqual(['network']);
  });

  it('reads direct kernel boot back, so a new kernel or command line is an update and an unchanged one is not', () => {
    const booted: VmSpec = {
      ...spec,
      boot: { kernel: '/guest/vmlinuz', initrd: '/guest/initrd.img', cmdline: 'console=ttyS0' },
    };
    const view = definedView(readDomainFacts(buildDomainXml(booted, opts)));
    expect(view.boot).toEqual(booted.boot);
    expect(diffVmSpec(view, booted)).toEqual([]);
    const changed = diffVmSpec(view, { ...booted, boot: { ...booted.boot!, cmdline: 'console=ttyS0 quiet' } });
    expect(changed).toEqual([
      {
        field: 'boot',
        from: 'kernel /guest/vmlinuz, initrd /guest/initrd.img, cmdline "console=ttyS0"',
        to: 'kernel /guest/vmlinuz, initrd /guest/initrd.img, cmdline "console=ttyS0 quiet"',
      },
    ]);
    expect(diffVmSpec(view, spec).map((c) => c.field)).toEqual(['boot']);
  });

  it('a MAC address kept from libvirt is not taken for one the spec asked for', () => {
    const nat: VmSpec = { ...spec, network: { mode: 'nat' } };
    const xml = buildDomainXml(nat, { ...opts, keptMacAddress: '52:54:00:aa:bb:cc' });
    expect(path(parseXml(xml), 'devices', 'interface', 'mac')?.attrs['address']).toBe('52:54:00:aa:bb:cc');
    expect(diffVmSpec(definedView(readDomainFacts(xml)), nat)).toEqual([]);
    const asked: VmSpec = { ...spec, network: { mode: 'nat', macAddress: '52:54:00:12:34:56' } };
    const view = definedView(readDomainFacts(buildDomainXml(asked, opts)));
    expect(view.network).toEqual({ mode: 'nat', macAddress: '52:54:00:12:34:56' });
    expect(diffVmSpec(view, nat).map((c) => c.field)).toEqual(['network']);
  });

  it('keeps the UUID, so libvirt replaces the domain instead of refusing a second one', () => {
    const xml = withUuid(buildDomainXml(spec, opts), UUID);
    const root = parseXml(xml);
    expect(child(root, 'uuid')?.text).toBe(UUID);
    expect(child(root, 'name')?.text).toBe('tandem-erp');
    expect(readDomainFacts(xml).uuid).toBe(UUID);
  });

  it('snapshots fit the new definition only when every disk stays', () => {
    const disks = readDomainFacts(buildDomainXml(spec, opts)).disks;
    expect(disksStay(disks, { ...spec, memoryMiB: 4096, cpus: 4 })).toBe(true);
    expect(disksStay(disks, { ...spec, disks: [spec.disks[0]!] })).toBe(false);
    expect(disksStay(disks, { ...spec, disks: [...spec.disks].reverse() })).toBe(false);
    expect(
      disksStay(disks, { ...spec, disks: [{ path: '/images/erp-2.qcow2', format: 'qcow2' }, spec.disks[1]!] }),
    ).toBe(false);
    expect(disksStay(disks, { ...spec, disks: [spec.disks[0]!, { path: '/images/data.raw', format: 'qcow2' }] })).toBe(
      false,
    );
  });
});
