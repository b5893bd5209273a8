// `tandem` end to end on a real libvirtd with QEMU: the commands an administrator types, run as
// separate processes, checked against what raw virsh says about the VM.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { QEMU_URI as URI, purgeVm, smallWorkspace, tandemProcess, virsh } from './libvirt-cli.test-helper.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'libvirt/QEMU (tandem CLI)',
  async () => {
    try {
      await run('virsh', ['-c', URI, 'version', '--daemon']);
      await run('qemu-img', ['--version']);
    } catch (err) {
      return `virsh cannot reach libvirtd at ${URI} or qemu-img is missing (${String((err as Error).message).trim()})`;
    }
    return null;
  },
  'as root, install libvirt-daemon-system, libvirt-clients, qemu-system-x86 and qemu-utils and start virtlogd and libvirtd (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('tandem CLI on qemu:///system', () => {
  const name = `cli-it-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let dir: string;

  const tandem = (...args: string[]): ReturnType<typeof tandemProcess> =>
    tandemProcess(join(dir, 'state'), args, 120_000);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-cli-it-'));
    await chmod(dir, 0o755); // QEMU runs as libvirt-qemu and must reach the image
    await smallWorkspace(dir, name);
  });

  afterAll(async () => {
    await purgeVm(vm);
    await rm(dir, { recursive: true, force: true });
  });

  it('up, status, snapshot, suspend, resume, revert, stop and down drive a real QEMU VM', async () => {
    const up = await tandem('up', join(dir, 'ws.yaml'), '--adapter', 'libvirt', '--adapter-option', 'virtType=qemu');
    expect(up.code, up.stderr).toBe(0);
    expect(up.json).toMatchObject({ vm, adapter: 'libvirt', state: 'running' });
    expect(await virsh('domstate', vm)).toBe('running');
    expect((await virsh('dominfo', vm)).match(/Max memory:\s+(\d+) KiB/)?.[1]).toBe(String(64 * 1024));

    expect((await tandem('status', name)).json.sessions).toMatchObject([
      { workspace: name, state: 'running', adapter: 'libvirt' },
    ]);

    const snap = await tandem('snapshot', 'create', 'booted', '-w', name);
    expect(snap.code, snap.stderr).toBe(0);
    expect(snap.json).toMatchObject({ name: 'booted', vmState: 'running' });
    expect(await virsh('snapshot-list', vm, '--name')).toContain('booted');

    expect((await tandem('suspend', name)).json.state).toBe('suspended');
    expect(await virsh('domstate', vm)).toBe('paused');
    expect((await tandem('resume', name)).json.state).toBe('running');
    expect(await virsh('domstate', vm)).toBe('running');

    expect((await tandem('stop', name, '--force')).json.state).toBe('stopped');
    expect(await virsh('domstate', vm)).toBe('shut off');
    const revert = await tandem('snapshot', 'revert', 'booted', '-w', name);
    expect(revert.code, revert.stderr).toBe(0);
    expect(revert.json.state).toBe('running'); // a live snapshot brings the VM back running
    expect(await virsh('domstate', vm)).toBe('running');
    expect((await tandem('snapshot', 'list', '-w', name)).json.snapshots).toMatchObject([
      { name: 'booted', current: true },
    ]);

    // An empty disk has no OS to honour ACPI: the graceful stop times out and powers off.
    expect((await tandem('stop', name, '--timeout', '2')).json.state).toBe('stopped');
    expect(await virsh('domstate', vm)).toBe('shut off');

    const illegal = await tandem('resume', name);
    expect(illegal.code).toBe(5);
    expect(illegal.stderr).toMatch(/it is stopped/);

    expect((await tandem('snapshot', 'delete', 'booted', '-w', name)).code).toBe(0);
    expect((await tandem('down', name)).json).toMatchObject({ removed: true });
    await expect(virsh('dominfo', vm)).rejects.toThrow(/failed to get domain|Domain not found/);
  }, 300_000); // about twenty tandem processes against real QEMU: minutes on a busy machine

  it("up of a workspace with network: { mode: nat } starts it on libvirt's NAT network", async () => {
    // On a new machine libvirt's `default` network is defined but not running, and starting it
    // needs dnsmasq (Debian's dnsmasq-base, which .ci/run installs): `up` starts it when needed.
    const natName = `${name}-nat`;
    const natVm = `tandem-${natName}`;
    const natDir = join(dir, 'nat');
    await mkdir(natDir, { recursive: true });
    await smallWorkspace(natDir, natName, 'nat');
    try {
      const up = await tandem(
        'up',
        join(natDir, 'ws.yaml'),
        '--adapter',
        'libvirt',
        '--adapter-option',
        'virtType=qemu',
      );
      expect(up.code, up.stderr).toBe(0);
      expect(up.json).toMatchObject({ vm: natVm, state: 'running' });
      expect(await virsh('domstate', natVm)).toBe('running');
      expect(await virsh('domiflist', natVm)).toMatch(/\bnetwork\s+default\b/);
      expect(await virsh('net-info', 'default')).toMatch(/^Active:\s+yes$/m);
      expect((await tandem('stop', natName, '--force')).json.state).toBe('stopped');
      expect((await tandem('down', natName)).json).toMatchObject({ removed: true });
    } finally {
      await purgeVm(natVm);
    }
  }, 300_000);
});
