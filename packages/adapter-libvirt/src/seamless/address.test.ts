import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDomIfAddr, pickGuestAddress } from './address.js';

// Recorded from `virsh domifaddr --source lease` (libvirt 9.0) for a PXE-booting guest.
const RECORDED = ` Name       MAC address          Protocol     Address
-------------------------------------------------------------------------------
 vnet0      52:54:00:e0:0b:d3    ipv4         192.168.122.35/24
 -          -                    ipv6         fd00::5054:ff:fee0:bd3/64
 vnet1      52:54:00:aa:bb:cc    ipv6         fe80::1/64
`;

describe('domifaddr parsing', () => {
  it('reads recorded output, continuation lines included', () => {
    expect(parseDomIfAddr(RECORDED)).toEqual([
      { iface: 'vnet0', mac: '52:54:00:e0:0b:d3', protocol: 'ipv4', address: '192.168.122.35', prefix: 24 },
      { iface: 'vnet0', mac: '52:54:00:e0:0b:d3', protocol: 'ipv6', address: 'fd00::5054:ff:fee0:bd3', prefix: 64 },
      { iface: 'vnet1', mac: '52:54:00:aa:bb:cc', protocol: 'ipv6', address: 'fe80::1', prefix: 64 },
    ]);
    expect(pickGuestAddress(parseDomIfAddr(RECORDED))).toBe('192.168.122.35');
  });

  it('prefers IPv4, never picks link-local IPv6, and finds nothing in an empty table', () => {
    expect(pickGuestAddress(parseDomIfAddr(RECORDED.replace(/.*ipv4.*\n/, '')))).toBe('fd00::5054:ff:fee0:bd3');
    expect(pickGuestAddress(parseDomIfAddr(' Name MAC address Protocol Address\n----\n'))).toBeUndefined();
  });

  it('finds every IPv4 row it is given', () => {
    fc.assert(
      fc.property(fc.array(fc.ipV4(), { maxLength: 5 }), fc.stringMatching(/^vnet\d{1,2}$/), (ips, iface) => {
        const text = ips.map((ip) => ` ${iface}      52:54:00:00:00:01    ipv4         ${ip}/24`).join('\n');
        expect(parseDomIfAddr(text).map((a) => a.address)).toEqual(ips);
      }),
    );
  });
});
