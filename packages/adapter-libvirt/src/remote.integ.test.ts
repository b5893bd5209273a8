// The same operations against libvirtd reached over SSH (an OpenSSH server on loopback,
// started by .ci/sshd.sh, logged in as its unprivileged account): qemu+ssh:// through OpenSSH's client, and qemu+libssh:// with a
// pinned known_hosts file. Host keys are always verified.
import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TandemError, type HypervisorEvent } from '@tandem/core';
import { integrationGate, loopbackSshd } from '@tandem/core/testing';
import { LibvirtAdapter } from './adapter.js';
import { emptyDisk, imageDir, itName, purge, qemuGate, smallSpec, until } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
// The loopback sshd of .ci/sshd.sh logs in as an unprivileged account in the libvirt group.
const sshd = await loopbackSshd('OpenSSH on 127.0.0.1:2222');
const KEY = sshd.privateKeyPath;
const KNOWN_HOSTS = sshd.knownHostsPath;
const USER = sshd.username;

const qemu = await qemuGate();
const ssh = await integrationGate(
  `OpenSSH on 127.0.0.1:2222 as ${USER}, with access to qemu:///system`,
  async () => {
    if (!sshd.gate.enabled) return `the loopback sshd is not usable`;
    await run('ssh', [
      '-q',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${KNOWN_HOSTS}`,
      '-i',
      KEY,
      '-p',
      '2222',
      `${USER}@127.0.0.1`,
      'virsh -c qemu:///system version',
    ]);
    return null;
  },
  'run bash .ci/run as root (it starts libvirtd for the libvirt group and .ci/sshd.sh)',
);

describe.skipIf(!qemu.enabled || !ssh.enabled)('libvirt over SSH', () => {
  let images: Awaited<ReturnType<typeof imageDir>>;
  const vms: string[] = [];

  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => {
    for (const vm of vms) await purge(vm);
    await images.remove();
  });

  it('qemu+libssh:// with a pinned known_hosts: lifecycle, snapshots, events, guest channel', async () => {
    const uri = `qemu+libssh://${USER}@127.0.0.1:2222/system?keyfile=${KEY}&known_hosts=${KNOWN_HOSTS}&sshauth=privkey`;
    const adapter = new LibvirtAdapter({ uri, virtType: 'qemu' });
    const vm = itName('libssh');
    vms.push(vm);
    const events: HypervisorEvent[] = [];
    const off = adapter.watch((e) => {
      if (e.vm === vm) events.push(e);
    });
    try {
      const probe = await adapter.probe();
      expect(probe).toMatchObject({ usable: true, details: { uri } });
      // The disk path is on the libvirt host (here the same machine).
      await adapter.define(smallSpec(vm, await emptyDisk(images.dir, vm), { guestChannel: true }));
      await adapter.start(vm);
      await adapter.suspend(vm);
      expect(await adapter.state(vm)).toBe('paused');
      await adapter.resume(vm);
      const snap = await adapter.snapshots.create(vm, { name: 'over ssh', description: 'über SSH' });
      expect(snap).toMatchObject({ name: 'over ssh', vmState: 'running', current: true });
      await adapter.snapshots.revert(vm, 'over ssh');
      expect((await adapter.snapshots.list(vm)).map((s) => s.name)).toEqual(['over ssh']);

      // The guest channel's socket is on the libvirt host: reached through SSH forwarding.
      const channel = await adapter.guestChannel.open(vm);
      expect(channel.writable).toBe(true);
      channel.destroy();

      // A QEMU dying on the remote host reaches watch() through the remote event stream.
      const pid = Number((await readFile(`/run/libvirt/qemu/${vm}.pid`, 'utf8')).trim());
      process.kill(pid, 'SIGKILL');
      await until('the crash event over SSH', () => events.some((e) => e.state === 'crashed'));
      expect(await adapter.state(vm)).toBe('crashed');
      await adapter.destroy(vm);
      await expect(adapter.state(vm)).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
    } finally {
      off();
      await adapter.close();
    }
  }, 120_000); // over libssh every virsh call is a new SSH session, and crashed ones run again

  it('qemu+ssh:// through the OpenSSH client: lifecycle and save/restore', async () => {
    // libvirt runs `ssh` for this transport; `command=` points it at a wrapper that adds the
    // pinned known_hosts file (an admin would list the host in ~/.ssh/known_hosts instead).
    const wrapper = join(images.dir, 'ssh-pinned');
    await writeFile(
      wrapper,
      `#!/bin/sh\nexec ssh -o UserKnownHostsFile='${KNOWN_HOSTS}' -o StrictHostKeyChecking=yes "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    const uri = `qemu+ssh://${USER}@127.0.0.1:2222/system?keyfile=${KEY}&command=${wrapper}`;
    const adapter = new LibvirtAdapter({ uri, virtType: 'qemu' });
    const vm = itName('ssh');
    vms.push(vm);
    try {
      await adapter.define(smallSpec(vm, await emptyDisk(images.dir, vm)));
      await adapter.start(vm);
      expect(await adapter.state(vm)).toBe('running');
      await adapter.save(vm);
      expect(await adapter.state(vm)).toBe('saved');
      await adapter.restore(vm);
      expect(await adapter.state(vm)).toBe('running');
      await adapter.stop(vm, { force: true });
      await adapter.destroy(vm);
    } finally {
      await adapter.close();
    }
  });

  it('an unknown host key is refused, not trusted', async () => {
    const empty = join(images.dir, 'empty_known_hosts');
    await writeFile(empty, '');
    const uri = `qemu+libssh://${USER}@127.0.0.1:2222/system?keyfile=${KEY}&known_hosts=${empty}&sshauth=privkey&known_hosts_verify=normal`;
    const adapter = new LibvirtAdapter({ uri });
    try {
      const probe = await adapter.probe();
      expect(probe.usable).toBe(false);
      const err = await adapter.list().catch((e: unknown) => e);
      expect(TandemError.is(err)).toBe(true);
      expect(String((err as TandemError).details['libvirtMessage'])).toMatch(/host key|known_hosts|verif/i);
    } finally {
      await adapter.close();
    }
  });
});
