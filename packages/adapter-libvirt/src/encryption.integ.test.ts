// LUKS-encrypted qcow2 disks on a real libvirtd: the key reaches libvirt as a private,
// ephemeral secret only for the start, and without it the disk cannot be opened.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import {
  emptyDisk,
  imageDir,
  itName,
  purge,
  QEMU_URI,
  qemuGate,
  smallSpec,
  virsh,
} from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const gate = await qemuGate();

async function imageInfo(path: string): Promise<{ encrypted?: boolean; 'virtual-size': number }> {
  return JSON.parse((await run('qemu-img', ['info', '--output=json', path])).stdout) as {
    encrypted?: boolean;
    'virtual-size': number;
  };
}

describe.skipIf(!gate.enabled)('encrypted disks on qemu:///system', () => {
  // A short key-derivation time keeps the test quick; the default is qemu-img's 2 s.
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

  it('starts with the key, refuses without it or with a wrong one, and leaves no secret behind', async () => {
    const vm = itName('luks');
    vms.push(vm);
    const path = join(images.dir, `${vm} disk é.qcow2`);
    const key = randomBytes(32);
    const disk = { path, format: 'qcow2' as const, encryption: { keyId: 'workspace-key' } };
    await adapter.diskEncryption.encrypt(disk, key, { sizeBytes: 64 * 1024 * 1024 });
    expect(await imageInfo(path)).toMatchObject({ encrypted: true, 'virtual-size': 64 * 1024 * 1024 });
    await adapter.define({ ...smallSpec(vm, path), disks: [disk] });

    // Without a key Tandem refuses before asking libvirt, naming the key it needs...
    await expect(adapter.start(vm)).rejects.toMatchObject({
      code: 'TANDEM_INVALID_INPUT',
      details: { keyId: 'workspace-key' },
    });
    // ...and libvirt itself cannot open the disk without the secret.
    const raw = await virsh('start', '--domain', vm).catch((e: { stderr?: string }) => e.stderr ?? '');
    expect(raw).toMatch(/Secret not found|no secret with matching usage/);

    // A wrong key: QEMU cannot unlock any keyslot.
    const wrong = await adapter
      .start(vm, { diskKeys: new Map([['workspace-key', randomBytes(32)]]) })
      .catch((e: unknown) => e);
    expect(TandemError.is(wrong, 'TANDEM_HYPERVISOR')).toBe(true);
    expect(String((wrong as TandemError).details['libvirtMessage'])).toMatch(/keyslot|password|decrypt/i);
    expect(await adapter.state(vm)).toBe('stopped');

    // A secret left behind by an interrupted start is replaced, not a reason to fail.
    const stale = join(images.dir, 'stale-secret.xml');
    await writeFile(
      stale,
      `<secret ephemeral='yes' private='yes'><usage type='volume'><volume>${path}</volume></usage></secret>`,
    );
    await virsh('secret-define', '--file', stale);
    await adapter.start(vm, { diskKeys: new Map([['workspace-key', key]]) });
    expect(await adapter.state(vm)).toBe('running');
    // The secret was private, ephemeral, and is gone again now that QEMU holds the key.
    expect(await virsh('secret-list')).not.toContain(path);

    // libvirt cannot snapshot a LUKS disk (a live internal snapshot even kills QEMU): a running
    // encrypted VM is refused with a typed error, and keeps running; a stopped one is snapshotted
    // by Tandem (encrypted-snapshot.integ.test.ts).
    await expect(adapter.snapshots.create(vm, { name: 'live' })).rejects.toMatchObject({
      code: 'TANDEM_INVALID_STATE',
    });
    expect(await adapter.state(vm)).toBe('running');
    await adapter.stop(vm, { force: true });
    await adapter.snapshots.create(vm, { name: 'cold' });
    await adapter.snapshots.delete(vm, 'cold');
    expect(await virsh('secret-list')).not.toContain(path);
  });

  it('encrypts an existing image in place', async () => {
    const name = itName('luksconvert');
    const path = await emptyDisk(images.dir, name, 32);
    expect((await imageInfo(path)).encrypted).toBeFalsy();
    const key = randomBytes(32);
    await adapter.diskEncryption.encrypt({ path, format: 'qcow2' }, key);
    expect(await imageInfo(path)).toMatchObject({ encrypted: true, 'virtual-size': 32 * 1024 * 1024 });
    // The key that opens it is the one given (qemu-img check needs it to read the image).
    const secret = `secret,id=k,format=raw,data=${Buffer.from(key).toString('base64')}`;
    await run('qemu-img', [
      'check',
      '-q',
      '--object',
      secret,
      '--image-opts',
      `driver=qcow2,file.filename=${path},encrypt.key-secret=k`,
    ]);
    await expect(adapter.diskEncryption.encrypt({ path, format: 'qcow2' }, key)).rejects.toMatchObject({
      code: 'TANDEM_CONFLICT',
    });
  });
});
