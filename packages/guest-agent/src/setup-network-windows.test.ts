import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuestOperationError } from '@tandem/core/guest';
import type { ProgramRunner } from './run.js';
import { applyWindowsNetwork, firstInterface, parseNetshConfig, prefixToMask } from './setup-network-windows.js';
import { windowsSetup } from './windows.js';

// netsh's English output as Windows 10/11 print it: CRLF line ends, column-aligned values, the
// second DNS server on a continuation line, errors on stdout with exit code 1.
const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'netsh', name), 'utf8');

function netsh(config: string, failOn?: string): { run: ProgramRunner; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    run: async (command, args) => {
      expect(command).toBe('netsh.exe');
      calls.push([...args]);
      const line = args.join(' ');
      if (failOn && line.includes(failOn))
        return { exitCode: 1, stdout: fixture('bad-name.txt'), stderr: '', truncated: false };
      if (line === 'interface ipv4 show interfaces')
        return { exitCode: 0, stdout: fixture('show-interfaces.txt'), stderr: '', truncated: false };
      if (line.startsWith('interface ipv4 show config'))
        return { exitCode: 0, stdout: fixture(config), stderr: '', truncated: false };
      return { exitCode: 0, stdout: 'Ok.\r\n\r\n', stderr: '', truncated: false };
    },
  };
}

describe('netsh parsing', () => {
  it('reads the first connected interface that is not loopback, and show config', () => {
    expect(firstInterface(fixture('show-interfaces.txt'))).toBe('Ethernet');
    expect(parseNetshConfig(fixture('show-config-dhcp.txt'))).toEqual({
      dhcp: true,
      addresses: ['10.0.2.15'],
      masks: ['255.255.255.0'],
      gateways: ['10.0.2.2'],
      dns: ['10.0.2.3'],
    });
    expect(parseNetshConfig(fixture('show-config-static.txt'))).toMatchObject({
      dhcp: false,
      dns: ['10.0.2.3', '10.0.2.4'],
    });
    expect([prefixToMask(24), prefixToMask(16), prefixToMask(30), prefixToMask(0)]).toEqual([
      '255.255.255.0',
      '255.255.0.0',
      '255.255.255.252',
      '0.0.0.0',
    ]);
  });
});

describe('applyWindowsNetwork', () => {
  it('sets a static address, gateway and DNS servers with netsh, arguments as an array', async () => {
    const { run, calls } = netsh('show-config-dhcp.txt');
    const message = await applyWindowsNetwork(
      { address: '10.0.2.15/24', gateway: '10.0.2.2', dns: ['10.0.2.3', '10.0.2.4'], dnsSuffix: 'corp.example' },
      run,
    );
    expect(calls).toEqual([
      ['interface', 'ipv4', 'show', 'interfaces'],
      ['interface', 'ipv4', 'show', 'config', 'name=Ethernet'],
      [
        'interface',
        'ipv4',
        'set',
        'address',
        'name=Ethernet',
        'source=static',
        'address=10.0.2.15',
        'mask=255.255.255.0',
        'gateway=10.0.2.2',
        'gwmetric=0',
      ],
      [
        'interface',
        'ipv4',
        'set',
        'dnsservers',
        'name=Ethernet',
        'source=static',
        'address=10.0.2.3',
        'register=primary',
        'validate=no',
      ],
      ['interface', 'ipv4', 'add', 'dnsservers', 'name=Ethernet', 'address=10.0.2.4', 'index=2', 'validate=no'],
    ]);
    expect(message).toContain('Ethernet: address 10.0.2.15/24 set (static, gateway 10.0.2.2)');
    expect(message).toContain('DNS 10.0.2.3 10.0.2.4 set');
    expect(message).toContain('DNS suffix corp.example not applied');
  });

  it('is idempotent: a guest already configured so is left alone and says so', async () => {
    const { run, calls } = netsh('show-config-static.txt');
    const message = await applyWindowsNetwork(
      { interface: 'Ethernet', address: '10.0.2.15/24', gateway: '10.0.2.2', dns: ['10.0.2.3', '10.0.2.4'] },
      run,
    );
    expect(calls).toEqual([['interface', 'ipv4', 'show', 'config', 'name=Ethernet']]);
    expect(message).toBe('Ethernet: address 10.0.2.15/24 already set; DNS 10.0.2.3 10.0.2.4 already set');
  });

  it('turns DHCP on only when it is off', async () => {
    const off = netsh('show-config-static.txt');
    expect(await applyWindowsNetwork({ dhcp: true }, off.run)).toBe('Ethernet: DHCP turned on');
    expect(off.calls.at(-1)).toEqual(['interface', 'ipv4', 'set', 'address', 'name=Ethernet', 'source=dhcp']);
    const on = netsh('show-config-dhcp.txt');
    expect(await applyWindowsNetwork({ dhcp: true }, on.run)).toBe('Ethernet: DHCP already on');
    expect(on.calls).toHaveLength(2);
  });

  it("a netsh failure is a GuestOperationError with netsh's own words", async () => {
    const { run } = netsh('show-config-dhcp.txt', 'set address');
    const err = await applyWindowsNetwork({ address: '10.0.2.15/24' }, run).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as Error).message).toContain('The filename, directory name, or volume label syntax is incorrect.');
  });

  it("windowsSetup's network step applies the settings, and ignores them in mode none", async () => {
    const { run, calls } = netsh('show-config-dhcp.txt');
    const setup = windowsSetup(run);
    const signal = new AbortController().signal;
    const done = await setup.network(
      { instance: 'i-1', step: 'network', mode: 'nat', settings: { dhcp: true } },
      signal,
    );
    expect(done.message).toBe('Ethernet: DHCP already on');
    const none = await setup.network(
      { instance: 'i-1', step: 'network', mode: 'none', settings: { dhcp: true } },
      signal,
    );
    expect(none.message).not.toContain('Ethernet');
    expect(calls).toHaveLength(2);
  });
});
