// `tandem doctor`'s network modes against the real libvirtd of this host, as a separate process:
// what it says matches what virsh and /sys say.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';

const run = promisify(execFile);
const URI = 'qemu:///system';
const BIN = fileURLToPath(new URL('../bin/tandem.js', import.meta.url));

const gate = await integrationGate(
  'libvirt (tandem doctor network modes)',
  async () => {
    try {
      await run('virsh', ['-c', URI, 'version', '--daemon']);
    } catch (err) {
      return `virsh cannot reach libvirtd at ${URI} (${String((err as Error).message).trim()})`;
    }
    return null;
  },
  'as root, install libvirt-daemon-system and libvirt-clients and start libvirtd (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('tandem doctor network modes on this host', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('says which modes can work, in agreement with virsh, dnsmasq and the host bridges', async () => {
    const state = await mkdtemp(join(tmpdir(), 'tandem-doctor-'));
    dirs.push(state);
    const r = await run(process.execPath, [BIN, '--state-dir', state, '--json', 'doctor']).catch(
      (err: { stdout: string }) => err,
    );
    const modes = (
      JSON.parse(r.stdout) as { networks: { modes: Array<{ mode: string; works: boolean; why: string }> } }
    ).networks.modes;
    const by = Object.fromEntries(modes.map((m) => [m.mode, m]));
    expect(Object.keys(by)).toEqual(['nat', 'bridged', 'host-only', 'none']);

    const netInfo = await run('virsh', ['-c', URI, 'net-info', '--network', 'default'], {
      env: { ...process.env, LC_ALL: 'C' },
    }).then(
      (x) => x.stdout,
      () => '',
    );
    const active = /^Active:\s+yes/m.test(netInfo);
    const defined = netInfo !== '';
    const dnsmasq = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq'].some((p) => existsSync(p));
    expect(by['nat']?.works).toBe(active || (defined && dnsmasq));
    if (!dnsmasq && !active) expect(by['nat']?.why).toMatch(/dnsmasq/);

    const bridges = readdirSync('/sys/class/net').filter(
      (n) => existsSync(join('/sys/class/net', n, 'bridge')) && !/^virbr\d+$/.test(n),
    );
    expect(by['bridged']?.works).toBe(bridges.length > 0);
    expect(by['none']?.works).toBe(true);
  });
});
