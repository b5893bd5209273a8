import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TandemError, type VmSpec } from '@tandem/core';
import { readDomainFacts } from './domain-facts.js';
import { buildDomainXml, type DomainXmlOptions } from './domain-xml.js';
import { child, children, parseXml } from './xml/tree.js';

const opts: DomainXmlOptions = { virtType: 'qemu', natNetwork: 'default', hostOnlyNetwork: 'tandem-hostonly' };
const base: VmSpec = {
  name: 'tandem-erp',
  memoryMiB: 2048,
  cpus: 2,
  disks: [{ path: '/var/lib/tandem/images/erp.qcow2', format: 'qcow2' }],
  network: { mode: 'nat' },
  graphics: { kind: 'rdp' },
  osFamily: 'windows',
  guestChannel: true,
  labels: { 'tandem.workspace': 'erp', 'tandem.version': '3.2.0' },
};

describe('domain XML', () => {
  it('carries memory, CPUs, disks, network, graphics, channel and labels', () => {
    const xml = buildDomainXml(base, opts);
    const root = parseXml(xml);
    expect(root.attrs['type']).toBe('qemu');
    expect(child(root, 'memory')?.text).toBe('2048');
    expect(child(root, 'memory')?.attrs['unit']).toBe('MiB');
    expect(child(root, 'vcpu')?.text).toBe('2');
    const devices = child(root, 'devices');
    expect(child(children(devices, 'disk')[0], 'target')?.attrs).toEqual({ dev: 'sda', bus: 'sata' });
    expect(child(child(devices, 'interface'), 'source')?.attrs['network']).toBe('default');
    expect(child(child(devices, 'interface'), 'model')?.attrs['type']).toBe('e1000e');
    expect(child(devices, 'graphics')?.attrs).toMatchObject({ type: 'vnc', listen: '127.0.0.1' });
    expect(child(root, 'clock')?.attrs['offset']).toBe('localtime');
    const facts = readDomainFacts(xml);
    expect(facts).toMatchObject({
      name: 'tandem-erp',
      osFamily: 'windows',
      hasAgentChannel: true,
      labels: base.labels,
    });
  });

  it('maps each network mode', () => {
    const iface = (network: VmSpec['network']): Record<string, string> | undefined => {
      const devices = child(parseXml(buildDomainXml({ ...base, osFamily: 'linux', network }, opts)), 'devices');
      const i = child(devices, 'interface');
      return (
        i && {
          type: i.attrs['type'] ?? '',
          ...child(i, 'source')?.attrs,
          model: child(i, 'model')?.attrs['type'] ?? '',
        }
      );
    };
    expect(iface({ mode: 'nat' })).toEqual({ type: 'network', network: 'default', model: 'virtio' });
    expect(iface({ mode: 'host-only' })).toEqual({ type: 'network', network: 'tandem-hostonly', model: 'virtio' });
    expect(iface({ mode: 'bridged', bridge: 'br0' })).toEqual({ type: 'bridge', bridge: 'br0', model: 'virtio' });
    expect(iface({ mode: 'none' })).toBeUndefined();
  });

  it('refers to a LUKS disk secret by the disk path and records the key id', () => {
    const spec: VmSpec = {
      ...base,
      disks: [{ path: '/img/a b.qcow2', format: 'qcow2', encryption: { keyId: 'k-1' } }],
    };
    const facts = readDomainFacts(buildDomainXml(spec, opts));
    expect(facts.disks).toEqual([
      { path: '/img/a b.qcow2', format: 'qcow2', encryption: { usage: '/img/a b.qcow2', keyId: 'k-1' } },
    ]);
  });

  it('round-trips any names, paths and labels through libvirt XML escaping', () => {
    // XML 1.0 cannot carry control characters at all (escapeXml refuses them; tested below).
    const representable = (s: string): boolean =>
      [...s].every((ch) => (ch.codePointAt(0) ?? 0) >= 0x20 && ch !== '\ufffe' && ch !== '\uffff');
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }).filter(representable);
    fc.assert(
      fc.property(text, text, fc.dictionary(text, text, { maxKeys: 3 }), text, (name, file, labels, keyId) => {
        const spec: VmSpec = {
          ...base,
          name,
          labels,
          disks: [{ path: `/images/${file}`, format: 'qcow2', encryption: { keyId } }],
        };
        const facts = readDomainFacts(buildDomainXml(spec, opts));
        expect(facts.name).toBe(name);
        expect(facts.labels).toEqual(labels);
        expect(facts.disks[0]).toEqual({
          path: `/images/${file}`,
          format: 'qcow2',
          encryption: { usage: `/images/${file}`, keyId },
        });
      }),
    );
  });

  it('keeps a label named __proto__ as a label (the counterexample fast-check found)', () => {
    const labels = Object.fromEntries([['__proto__', ' ']]) as Record<string, string>;
    const facts = readDomainFacts(buildDomainXml({ ...base, name: 'p', labels }, opts));
    expect(Object.keys(facts.labels)).toEqual(['__proto__']);
    expect(facts.labels).toEqual(labels);
    expect(Object.getPrototypeOf(facts.labels)).toBe(Object.prototype);
  });

  it('boots a kernel directly with <os><kernel/><initrd/><cmdline/>, and reads it back', () => {
    const boot = {
      kernel: '/var/cache/guest/vmlinuz',
      initrd: '/var/cache/guest/a&b initrd.gz',
      cmdline: "console=ttyS0 x='1'",
    };
    const xml = buildDomainXml({ ...base, osFamily: 'linux', boot }, opts);
    const os = child(parseXml(xml), 'os');
    expect(child(os, 'kernel')?.text).toBe(boot.kernel);
    expect(child(os, 'initrd')?.text).toBe(boot.initrd);
    expect(child(os, 'cmdline')?.text).toBe(boot.cmdline);
    // The kernel replaces the boot order; the disks stay attached.
    expect(children(os, 'boot')).toEqual([]);
    expect(children(child(parseXml(xml), 'devices'), 'disk')).toHaveLength(1);
    expect(readDomainFacts(xml).boot).toEqual(boot);
    // Only the kernel: no empty <initrd/> or <cmdline/>.
    const bare = child(parseXml(buildDomainXml({ ...base, boot: { kernel: '/k' } }, opts)), 'os');
    expect([child(bare, 'initrd'), child(bare, 'cmdline')]).toEqual([undefined, undefined]);
    expect(readDomainFacts(buildDomainXml(base, opts)).boot).toBeUndefined();
  });

  it('round-trips any kernel path and command line', () => {
    const representable = (s: string): boolean =>
      [...s].every((ch) => (ch.codePointAt(0) ?? 0) >= 0x20 && ch !== '\ufffe' && ch !== '\uffff');
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).filter(representable);
    fc.assert(
      fc.property(text, text, text, (kernel, initrd, cmdline) => {
        const boot = { kernel: `/k/${kernel}`, initrd: `/i/${initrd}`, cmdline };
        expect(readDomainFacts(buildDomainXml({ ...base, boot }, opts)).boot).toEqual(boot);
      }),
    );
  });

  it('rejects bad specs with a typed error naming the field', () => {
    const bad = (spec: Partial<VmSpec>, path: string): void => {
      try {
        buildDomainXml({ ...base, ...spec }, opts);
        expect.fail('accepted a bad spec');
      } catch (err) {
        expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
        expect((err as TandemError).details['path'] ?? 'control').toBe(path);
      }
    };
    bad({ memoryMiB: 0 }, 'memoryMiB');
    bad({ cpus: 1.5 }, 'cpus');
    bad({ disks: [{ path: 'relative.qcow2', format: 'qcow2' }] }, 'disks[0].path');
    bad({ disks: [{ path: '/a.raw', format: 'raw', encryption: { keyId: 'k' } }] }, 'disks[0].format');
    bad({ network: { mode: 'bridged' } }, 'network.bridge');
    bad({ network: { mode: 'nat', macAddress: 'nope' } }, 'network.macAddress');
    bad({ name: 'bell\u0007' }, 'control');
    bad({ boot: { kernel: 'vmlinuz' } }, 'boot.kernel');
    bad({ boot: { kernel: '/vmlinuz', initrd: 'initrd.gz' } }, 'boot.initrd');
  });
});
