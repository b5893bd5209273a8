import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkNetworkModes, gatherNetworkFacts, type NetworkFacts, type RunProgram } from './doctor-network.js';

const healthy: NetworkFacts = {
  uri: 'qemu:///system',
  local: true,
  libvirtUnreachable: null,
  dnsmasq: '/usr/sbin/dnsmasq',
  natNetwork: { name: 'default', state: 'active', bridge: 'virbr0' },
  hostOnlyNetwork: { name: 'tandem-hostonly', state: 'absent' },
  hostBridges: ['br0'],
  libvirtBridges: ['virbr0'],
};

const byMode = (f: NetworkFacts): Record<string, { works: boolean; why: string; fix?: string }> =>
  Object.fromEntries(checkNetworkModes(f).map((c) => [c.mode, c]));

// `virsh net-info` as libvirt 9 prints it.
const NET_INFO = (name: string, active: 'yes' | 'no', bridge: string): string =>
  `Name:           ${name}\nUUID:           4d1d2f4e-0d0c-4a6c-9b9e-5a8f2c1b7e11\nActive:         ${active}\nPersistent:     yes\nAutostart:      no\nBridge:         ${bridge}\n\n`;
const NOT_FOUND = (name: string): string =>
  `error: failed to get network '${name}'\nerror: Network not found: no network with matching name '${name}'\n`;

function fakeVirsh(nets: Record<string, string | null>, reachable = true): RunProgram {
  return async (file, args) => {
    expect(file).toBe('virsh');
    if (args.includes('version')) {
      if (reachable) return 'Running against daemon: 9.0.0\n';
      throw Object.assign(new Error('exit 1'), {
        stderr:
          "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused\n",
      });
    }
    const name = args[args.indexOf('--network') + 1] ?? '';
    const out = nets[name];
    if (out === undefined || out === null) throw Object.assign(new Error('exit 1'), { stderr: NOT_FOUND(name) });
    return out;
  };
}

describe('tandem doctor: network modes', () => {
  it('says every mode works on a host with dnsmasq, an active default network and a bridge', () => {
    const m = byMode(healthy);
    expect(Object.keys(m)).toEqual(['nat', 'bridged', 'host-only', 'none']);
    expect(Object.values(m).every((c) => c.works)).toBe(true);
    expect(m['nat']?.why).toMatch(/"default" is active/);
    expect(m['bridged']?.why).toMatch(/br0/);
    expect(m['host-only']?.why).toMatch(/defines the isolated libvirt network "tandem-hostonly" on first use/);
  });

  it('names missing dnsmasq as why nat and host-only cannot start their network', () => {
    const m = byMode({ ...healthy, dnsmasq: null, natNetwork: { name: 'default', state: 'inactive' } });
    expect(m['nat']).toMatchObject({ works: false, why: expect.stringMatching(/dnsmasq is not installed/) });
    expect(m['nat']?.fix).toMatch(/dnsmasq-base/);
    expect(m['host-only']?.works).toBe(false);
    expect(m['none']?.works).toBe(true);
    // A network that is already running has its dnsmasq: nat works even if the binary went away.
    expect(byMode({ ...healthy, dnsmasq: null })['nat']?.works).toBe(true);
  });

  it('says nat cannot work when libvirt has no network "default", and how to define it', () => {
    const m = byMode({ ...healthy, natNetwork: { name: 'default', state: 'absent' } });
    expect(m['nat']).toMatchObject({ works: false, why: expect.stringMatching(/no network "default"/) });
    expect(m['nat']?.fix).toMatch(/net-define .*default\.xml/);
    expect(byMode({ ...healthy, natNetwork: { name: 'default', state: 'inactive' } })['nat']).toMatchObject({
      works: true,
      why: expect.stringMatching(/inactive: tandem up starts it/),
    });
  });

  it('says bridged cannot work without a host bridge, libvirt own virbr0 not counting', () => {
    const m = byMode({ ...healthy, hostBridges: [] });
    expect(m['bridged']).toMatchObject({ works: false, why: expect.stringMatching(/no network bridge.*virbr0/) });
    expect(m['bridged']?.fix).toMatch(/network\.bridge/);
  });

  it('says nat and host-only cannot work while libvirt is unreachable', () => {
    const m = byMode({
      ...healthy,
      libvirtUnreachable: 'Connection refused',
      natNetwork: { name: 'default', state: 'unknown' },
      hostOnlyNetwork: { name: 'tandem-hostonly', state: 'unknown' },
    });
    expect(m['nat']).toMatchObject({ works: false, why: expect.stringMatching(/not reachable.*Connection refused/) });
    expect(m['host-only']?.works).toBe(false);
  });

  it('gathers the facts from virsh net-info, /sys/class/net and the dnsmasq paths', async () => {
    const sys = mkdtempSync(join(tmpdir(), 'tandem-net-'));
    for (const [name, bridge] of [
      ['eth0', false],
      ['br0', true],
      ['virbr0', true],
      ['lo', false],
    ] as const) {
      mkdirSync(join(sys, name, ...(bridge ? ['bridge'] : [])), { recursive: true });
    }
    const dnsmasq = join(sys, 'dnsmasq');
    writeFileSync(dnsmasq, '');
    const facts = await gatherNetworkFacts({
      uri: 'qemu:///system',
      run: fakeVirsh({ default: NET_INFO('default', 'no', 'virbr0') }),
      sysClassNet: sys,
      dnsmasqPaths: [join(sys, 'missing'), dnsmasq],
    });
    expect(facts).toEqual({
      uri: 'qemu:///system',
      local: true,
      libvirtUnreachable: null,
      dnsmasq,
      natNetwork: { name: 'default', state: 'inactive', bridge: 'virbr0' },
      hostOnlyNetwork: { name: 'tandem-hostonly', state: 'absent' },
      hostBridges: ['br0'],
      libvirtBridges: ['virbr0'],
    });
  });

  it('reports an unreachable libvirtd with its own words, and does not look at a remote host', async () => {
    const down = await gatherNetworkFacts({ uri: 'qemu:///system', run: fakeVirsh({}, false), dnsmasqPaths: [] });
    expect(down.libvirtUnreachable).toMatch(/Connection refused/);
    expect(down.natNetwork.state).toBe('unknown');
    const remote = await gatherNetworkFacts({
      uri: 'qemu+ssh://admin@hv1/system',
      run: fakeVirsh({ default: NET_INFO('default', 'yes', 'virbr0') }),
    });
    expect(remote.local).toBe(false);
    expect(remote.hostBridges).toEqual([]);
    expect(byMode(remote)['bridged']).toMatchObject({
      works: true,
      why: expect.stringMatching(/not checked from here/),
    });
  });
});
