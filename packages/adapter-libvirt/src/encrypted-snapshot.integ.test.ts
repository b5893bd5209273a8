// Snapshots and revert of an encrypted VM on real QEMU (issue 11). libvirt cannot snapshot a LUKS
// qcow2, so the adapter snapshots a stopped encrypted VM itself: a copy of each encrypted disk's
// ciphertext, copied back on revert. The test writes through the VM's disk with qemu-io between
// starts (the guest has no OS; the key on a named pipe), reverts, reads the old contents back,
// starts the VM on the reverted disk, and checks that no file on disk (the images, the overlay,
// the snapshot copies) ever holds the plaintext patterns.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionManager, parseWorkspace } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import { luksPassphrase } from './encryption.js';
import { withPipedSecret } from './handover.js';
import { imageDir, itName, purge, QEMU_URI, qemuGate } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const gate = await qemuGate();
const MIB = 1024 * 1024;

/** Runs one qemu-io command on an encrypted image (and its encrypted backing file, if any). */
async function qemuIo(path: string, key: Uint8Array, command: string): Promise<boolean> {
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', '-U', path])).stdout) as {
    'backing-filename'?: string;
  };
  return withPipedSecret(luksPassphrase(key), async (fifo) => {
    const backing = info['backing-filename'] ? ',backing.encrypt.key-secret=k' : '';
    const r = await execa(
      'qemu-io',
      [
        '--object',
        `secret,id=k,format=raw,file=${fifo}`,
        '--image-opts',
        `driver=qcow2,file.filename=${path},encrypt.key-secret=k${backing}`,
        '-c',
        command,
      ],
      { reject: false, all: true, stdin: 'ignore' },
    );
    // qemu-io reports a pattern mismatch on stdout and still exits 0.
    return r.exitCode === 0 && !/Pattern verification failed|failed/i.test(String(r.all ?? ''));
  });
}

/** Every file under `dir` (the images, overlays, snapshot copies and the index). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

/** True when some file under `dir` holds 4 KiB of `byte` in a row: plaintext of the test's patterns. */
async function plaintextOnDisk(dir: string, byte: number): Promise<string[]> {
  const needle = Buffer.alloc(4096, byte);
  const hits: string[] = [];
  for (const f of await filesUnder(dir)) if ((await readFile(f)).includes(needle)) hits.push(f);
  return hits;
}

describe.skipIf(!gate.enabled)('snapshots of an encrypted VM on qemu:///system', () => {
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu', luksIterTimeMs: 10 });
  let images: Awaited<ReturnType<typeof imageDir>>;
  const vms: string[] = [];

  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => {
    await adapter.close();
    for (const vm of vms) await purge(vm);
    await images.remove();
  });

  const workspace = (name: string, base: string, usage: string) =>
    parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: ${name}, version: 1.0.0 }
spec:
  guestOs: linux
  image: { source: ${base}, format: qcow2, encryption: { keyId: disk-key } }
  hardware: { memory: { fixedMiB: 64 }, cpus: 1, guestChannel: false }
  network: { mode: none }
  usage: ${usage}
`);

  async function encryptedBase(vm: string, key: Uint8Array): Promise<string> {
    const base = join(images.dir, `${vm} base.qcow2`);
    await adapter.diskEncryption.encrypt({ path: base, format: 'qcow2', encryption: { keyId: 'disk-key' } }, key, {
      sizeBytes: 64 * MIB,
    });
    // The image as delivered: a known pattern at the start of the disk.
    expect(await qemuIo(base, key, 'write -P 0x11 0 64k')).toBe(true);
    return base;
  }

  it('snapshots a stopped encrypted VM, reverts its disk after a write, and stays encrypted at rest', async () => {
    const vm = itName('enc-snap');
    vms.push(vm);
    const key = randomBytes(32);
    const base = await encryptedBase(vm, key);
    const diskKeys = new Map([['disk-key', key]]);
    const s = await new SessionManager({ adapter }).open(workspace(vm, base, '{ onSessionEnd: shutdown }'), {
      vmName: vm,
      diskKeys,
    });
    await s.start();
    // Running: refused with a typed error, and the VM keeps running.
    await expect(s.snapshot('live')).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
    expect(await adapter.state(vm)).toBe('running');
    await s.stop({ force: true });

    const taken = await s.snapshot('before', 'the image as delivered');
    expect(taken).toMatchObject({ name: 'before', current: true, vmState: 'stopped', parentId: null });
    expect(await s.snapshots()).toEqual([expect.objectContaining({ name: 'before', current: true })]);

    // The session changes the disk.
    expect(await qemuIo(base, key, 'write -P 0x5a 0 64k')).toBe(true);
    expect(await qemuIo(base, key, 'read -P 0x5a 0 64k')).toBe(true);
    expect(await plaintextOnDisk(images.dir, 0x5a)).toEqual([]);
    expect(await plaintextOnDisk(images.dir, 0x11)).toEqual([]);

    // A running VM is not reverted under QEMU's feet.
    await s.start();
    await expect(s.revert('before')).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
    await s.stop({ force: true });

    await s.revert('before');
    expect(await adapter.state(vm)).toBe('stopped');
    expect(await qemuIo(base, key, 'read -P 0x11 0 64k')).toBe(true);
    expect(await qemuIo(base, key, 'read -P 0x5a 0 64k')).toBe(false);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', '-U', base])).stdout) as {
      encrypted?: boolean;
    };
    expect(info.encrypted).toBe(true);
    // QEMU opens the reverted disk with the key (libvirt's ownership of the file is kept).
    await s.start();
    expect(await adapter.state(vm)).toBe('running');
    await s.stop({ force: true });

    // A child snapshot; deleting the parent moves it up; deleting it removes its copies.
    expect(await qemuIo(base, key, 'write -P 0x66 0 64k')).toBe(true);
    await s.snapshot('after');
    expect((await s.snapshots()).find((x) => x.name === 'after')).toMatchObject({ parentId: 'before', current: true });
    await s.deleteSnapshot('before');
    expect(await s.snapshots()).toEqual([expect.objectContaining({ name: 'after', parentId: null, current: true })]);
    expect(await plaintextOnDisk(images.dir, 0x66)).toEqual([]);
    await s.deleteSnapshot('after');
    expect(await s.snapshots()).toEqual([]);
    expect((await filesUnder(images.dir)).filter((f) => f.includes('.tandem-snapshot-'))).toEqual([]);
    await expect(s.revert('after')).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
    await s.close();
  });

  it('snapshots the kept encrypted overlay of a session, leaving the base untouched', async () => {
    const vm = itName('enc-snap-ovl');
    vms.push(vm);
    const key = randomBytes(32);
    const base = await encryptedBase(vm, key);
    const baseBytes = await readFile(base);
    const diskKeys = new Map([['disk-key', key]]);
    const s = await new SessionManager({ adapter }).open(workspace(vm, base, '{ onSessionEnd: snapshot }'), {
      vmName: vm,
      diskKeys,
    });
    await s.start();
    await s.stop({ force: true });
    const [on] = await adapter.encryptedOverlays.list(vm);
    const overlay = on!.overlay;
    expect(await qemuIo(overlay, key, 'write -P 0x22 0 64k')).toBe(true);
    await s.snapshot('mine');
    expect(await qemuIo(overlay, key, 'write -P 0x77 0 64k')).toBe(true);
    await s.revert('mine');
    expect(await qemuIo(overlay, key, 'read -P 0x22 0 64k')).toBe(true);
    expect(await qemuIo(overlay, key, 'read -P 0x77 0 64k')).toBe(false);
    // Only the overlay was copied and restored: the base is byte for byte as delivered.
    expect((await readFile(base)).equals(baseBytes)).toBe(true);
    expect((await filesUnder(images.dir)).filter((f) => f.includes(`.tandem-snapshot-`))).toHaveLength(1);
    for (const b of [0x11, 0x22, 0x77]) expect(await plaintextOnDisk(images.dir, b)).toEqual([]);
    await s.start();
    expect(await adapter.state(vm)).toBe('running');
    await s.stop({ force: true });

    // The overlay discarded: the snapshot was of a file the VM no longer uses.
    await adapter.encryptedOverlays.discard(vm);
    await expect(s.revert('mine')).rejects.toMatchObject({
      code: 'TANDEM_INVALID_STATE',
      message: expect.stringMatching(/no longer uses/),
    });
    await s.deleteSnapshot('mine');
    expect(await s.snapshots()).toEqual([]);
    await s.close();
  });
});
