import { parseWorkspace } from '@tandem/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chooseNetwork, cidrContains, parseProcNetRoute, parseResolvConf } from './location.js';
import { currentOrNextWindow } from './maintenance.js';

// /proc/net/route as Linux prints it (tabs, little-endian hex, trailing padding).
const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
wlan0\t00000000\t0100140A\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
virbr0\t007AA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

describe('where the host is', () => {
  it('reads search and domain from resolv.conf, lower case, without comments or the final dot', () => {
    expect(
      parseResolvConf(
        '# generated\nnameserver 10.0.0.1\ndomain Corp.Example.com.\nsearch eng.corp.example.com corp.example.com ; x\n',
      ),
    ).toEqual(['corp.example.com', 'eng.corp.example.com']);
    expect(parseResolvConf('')).toEqual([]);
  });

  it('finds the default route with the lowest metric and the subnet of its interface', () => {
    expect(parseProcNetRoute(ROUTE)).toEqual({ iface: 'eth0', gateway: '192.0.2.1', subnet: '192.0.2.0/24' });
    expect(parseProcNetRoute(ROUTE.replace('\t100\t', '\t900\t'))).toEqual({
      iface: 'wlan0',
      gateway: '10.20.0.1',
      subnet: '10.20.0.0/16',
    });
    expect(
      parseProcNetRoute(
        ROUTE.split('\n')
          .filter((l) => !l.includes('\t00000000\t0'))
          .join('\n'),
      ),
    ).toBeUndefined();
  });

  it('a prefix contains exactly the addresses and longer prefixes inside it', () => {
    expect(cidrContains('10.20.0.0/16', '10.20.4.0/24')).toBe(true);
    expect(cidrContains('10.20.0.0/16', '10.21.0.0/24')).toBe(false);
    expect(cidrContains('10.20.0.0/24', '10.20.0.0/16')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '8.8.8.8')).toBe(true);
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, prefix) => {
        // Every address is inside each prefix built from it.
        const n = ip.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const net = (n & mask) >>> 0;
        const dotted = [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.');
        return cidrContains(`${dotted}/${prefix}`, ip);
      }),
    );
  });

  it('the first matching network profile wins; no match is the workspace default', () => {
    const ws = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  network:
    mode: nat
    profiles:
      - { when: { subnet: 10.20.0.0/16 }, mode: host-only }
      - { when: { dnsSuffix: corp.example.com }, mode: bridged, bridge: br0 }
`);
    const home = chooseNetwork(ws, { dnsSuffixes: ['home.arpa'] });
    expect(home).toMatchObject({ mode: 'nat', profile: null });
    expect(chooseNetwork(ws, { dnsSuffixes: ['corp.example.com'] })).toMatchObject({
      mode: 'bridged',
      bridge: 'br0',
      profile: 1,
    });
    expect(chooseNetwork(ws, { dnsSuffixes: ['notcorp.example.com'] }).profile).toBeNull(); // label boundary
    expect(
      chooseNetwork(ws, {
        dnsSuffixes: ['corp.example.com'],
        defaultRoute: { iface: 'wlan0', gateway: '10.20.0.1', subnet: '10.20.0.0/16' },
      }),
    ).toMatchObject({ mode: 'host-only', profile: 0 });
  });
});

describe('maintenance windows', () => {
  const policy = { windows: [{ days: ['sun' as const], at: '03:00', duration: 'PT2H' }], timeZone: 'utc' as const };
  it('finds the open window, else the next one on the days it is set for', () => {
    // 2026-11-22 is a Sunday.
    expect(currentOrNextWindow(policy, Date.parse('2026-11-22T04:00:00Z'))).toEqual({
      start: Date.parse('2026-11-22T03:00:00Z'),
      end: Date.parse('2026-11-22T05:00:00Z'),
    });
    expect(currentOrNextWindow(policy, Date.parse('2026-11-22T05:00:00Z'))!.start).toBe(
      Date.parse('2026-11-29T03:00:00Z'),
    );
    expect(currentOrNextWindow(policy, Date.parse('2026-11-24T12:00:00Z'))!.start).toBe(
      Date.parse('2026-11-29T03:00:00Z'),
    );
  });
  it('a window that spans midnight is still open the next day', () => {
    const late = { windows: [{ days: ['sat' as const], at: '23:00', duration: 'PT3H' }], timeZone: 'utc' as const };
    expect(currentOrNextWindow(late, Date.parse('2026-11-22T01:00:00Z'))).toEqual({
      start: Date.parse('2026-11-21T23:00:00Z'),
      end: Date.parse('2026-11-22T02:00:00Z'),
    });
  });
});
