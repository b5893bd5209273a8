// An encrypted workspace end to end on real QEMU (issue 11): packed encrypted, published, its key
// released to this device in an envelope, pulled into a LUKS-encrypted qcow2 through qemu-nbd,
// started under libvirt with the key handed over in memory, refused without it, with a wrong
// one, and from a truncated or swapped disk. A canary string in the image is looked for in every
// file of the flow after each step, and the key in every process's argv.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  diskKeyFor,
  initRepository,
  packWorkspace,
  pullWorkspace,
  pushPackage,
  DirectoryStore,
  TandemError,
  VirtualClock,
} from '@tandem/core';
import { DataKey, KeyReleaseAuthority, openEndpointKeys, openEnvelope } from '@tandem/core/crypto';
import { integrationGate } from '@tandem/core/testing';
import { LibvirtAdapter } from './adapter.js';
import { libvirtEncryptedImages } from './encrypted-images.js';
import { luksPassphrase } from './encryption.js';
import { imageDir, itName, purge, QEMU_URI, qemuGate, smallSpec } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const CANARY = Buffer.from('TANDEM-QEMU-CANARY-5d1c-PLAINTEXT');
const MIB = 1024 * 1024;

const nbdGate = await integrationGate(
  'qemu-img and qemu-nbd',
  async () => {
    for (const tool of ['qemu-img', 'qemu-nbd']) {
      try {
        await run(tool, ['--version']);
      } catch {
        return `${tool} is not installed`;
      }
    }
    return null;
  },
  'install qemu-utils (apt-get install -y qemu-utils)',
);
const gate = await qemuGate();

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

async function expectNoCanary(...dirs: string[]): Promise<void> {
  for (const dir of dirs)
    for (const file of await filesUnder(dir)) {
      const data = await readFile(file).catch(() => Buffer.alloc(0));
      expect(data.includes(CANARY.subarray(0, 16)), `${file} holds the canary`).toBe(false);
    }
}

describe.skipIf(!nbdGate.enabled)('encrypted images at rest (qemu-img, qemu-nbd)', () => {
  const store = libvirtEncryptedImages({ luksIterTimeMs: 10 });
  let images: Awaited<ReturnType<typeof imageDir>>;
  beforeAll(async () => {
    images = await imageDir();
  });
  afterAll(async () => images?.remove());

  it('writes and reads plaintext through qemu-nbd; the file holds only ciphertext; a wrong key is refused', async () => {
    const path = join(images.dir, 'rest.qcow2');
    const key = randomBytes(32);
    const image = await store.create(path, 8 * MIB, key);
    expect(image.size).toBe(8 * MIB);
    const data = Buffer.concat([CANARY, randomBytes(100_000)]);
    await image.write(12_345, data); // unaligned on purpose
    expect((await image.read(12_345, data.length)).equals(data)).toBe(true);
    // Many unaligned neighbours in flight at once, sharing sectors: QEMU orders them itself.
    const pieces = Array.from({ length: 48 }, (_, i) => randomBytes(3000 + ((i * 7919) % 70_000)));
    const base = 2 * MIB + 333;
    let at = base;
    const writes: Promise<void>[] = [];
    for (const p of pieces) {
      writes.push(image.write(at, p));
      at += p.length;
    }
    await Promise.all(writes);
    const back = await Promise.all([
      image.read(base, (at - base) >> 1),
      image.read(base + ((at - base) >> 1), at - base - ((at - base) >> 1)),
    ]);
    expect(Buffer.concat(back).equals(Buffer.concat(pieces))).toBe(true);
    await image.close();
    expect((await readFile(path)).includes(CANARY)).toBe(false);
    const again = await store.open(path, key, { readOnly: true });
    expect((await again.read(12_345, data.length)).equals(data)).toBe(true);
    expect((await again.read(6 * MIB, 4096)).every((b) => b === 0)).toBe(true);
    await again.close();
    const err = await store.open(path, randomBytes(32)).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_HYPERVISOR')).toBe(true);
  });
});

// Both at-rest layouts: libvirt starts the data-file one (a qcow2 and its raw data file) as well.
const layouts = [{ layout: 'nbd' as const }, { layout: 'data-file' as const }];

describe.skipIf(!gate.enabled).each(layouts)(
  'an encrypted workspace on qemu:///system (layout $layout)',
  ({ layout }) => {
    const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu', luksIterTimeMs: 10 });
    // libvirt 9.0 does not label a qcow2's data file: it is given to the QEMU user.
    const qemuUser = (): { uid: number; gid: number } | undefined => {
      try {
        const id = (flag: string): number =>
          Number(execFileSync('id', [flag, 'libvirt-qemu'], { encoding: 'utf8' }).trim());
        return { uid: id('-u'), gid: id('-g') };
      } catch {
        return undefined; // no such user: the gate skips this suite anyway
      }
    };
    const owner = layout === 'data-file' ? qemuUser() : undefined;
    const encryptedImages = libvirtEncryptedImages({
      luksIterTimeMs: 10,
      layout,
      ...(owner ? { dataFileOwner: owner } : {}),
    });
    let images: Awaited<ReturnType<typeof imageDir>>;
    const vms: string[] = [];
    beforeAll(async () => {
      images = await imageDir();
    });
    afterAll(async () => {
      await adapter.close();
      for (const vm of vms) await purge(vm);
      await images?.remove();
    });

    it('packs, publishes, releases, pulls encrypted at rest and starts only with the key', async () => {
      const root = images.dir;
      const dirs = {
        ws: join(root, 'ws'),
        pkg: join(root, 'pkg'),
        repo: join(root, 'repo'),
        state: join(root, 'state'),
        install: join(root, 'install'),
      };
      // A 32 MiB raw disk, mostly zeros, the canary in a few places.
      const disk = Buffer.alloc(32 * MIB);
      randomBytes(2 * MIB).copy(disk, 0);
      for (const at of [512, 1 * MIB + 7, 20 * MIB]) CANARY.copy(disk, at);
      await mkdir(join(dirs.ws, 'images'), { recursive: true });
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(dirs.ws, 'images', 'disk.img'), disk);
      await writeFile(
        join(dirs.ws, 'tandem.workspace.yaml'),
        'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 128 } }\n',
      );
      using dataKey = DataKey.generate();
      const pkg = await packWorkspace({
        workspaceFile: join(dirs.ws, 'tandem.workspace.yaml'),
        out: join(dirs.pkg, 'erp.tandem'),
        encryption: { dataKey },
      });
      await expectNoCanary(dirs.pkg);
      const repo = new DirectoryStore(dirs.repo);
      const init = await initRepository({ store: repo });
      await pushPackage({ package: pkg.path, store: repo, keys: init.keys, channels: ['stable'] });
      await expectNoCanary(dirs.pkg, dirs.repo);

      const clock = new VirtualClock(Date.now());
      const authority = KeyReleaseAuthority.generate({ clock });
      const endpoint = await openEndpointKeys(join(dirs.state, 'keys'), { clock });
      const envelope = await authority.seal({
        dataKey,
        device: endpoint.device.publicKey,
        imageId: 'erp',
        notAfter: 'P1D',
      });
      const key = async (need: { imageId: string; version: string }): Promise<DataKey> =>
        (
          await openEnvelope(envelope, {
            trustedAuthorities: [authority.publicKey],
            device: endpoint.device,
            trustedTime: endpoint.trustedTime,
            imageId: need.imageId,
            version: need.version,
            clock,
          })
        ).dataKey;
      const pulled = await pullWorkspace({
        repo: dirs.repo,
        workspace: 'erp',
        dir: dirs.install,
        trustedRoot: init.root,
        key,
        encryptedImages,
      });
      await expectNoCanary(dirs.pkg, dirs.repo, dirs.state, dirs.install);
      const info = JSON.parse((await run('qemu-img', ['info', '--output=json', pulled.image])).stdout) as {
        format: string;
        encrypted?: boolean;
        'virtual-size': number;
        'actual-size': number;
      };
      expect(info).toMatchObject({ format: 'qcow2', encrypted: true, 'virtual-size': 32 * MIB });
      // Mostly zeros, mostly unallocated.
      expect(info['actual-size']).toBeLessThan(16 * MIB);

      const vm = itName('encws');
      vms.push(vm);
      const diskSpec = { path: pulled.image, format: 'qcow2' as const, encryption: { keyId: 'erp' } };
      await adapter.define({ ...smallSpec(vm, pulled.image), disks: [diskSpec] });
      await expect(adapter.start(vm)).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
      const wrong = await adapter.start(vm, { diskKeys: new Map([['erp', randomBytes(32)]]) }).catch((e: unknown) => e);
      expect(TandemError.is(wrong, 'TANDEM_HYPERVISOR')).toBe(true);
      expect(await adapter.state(vm)).toBe('stopped');

      const diskKey = diskKeyFor(dataKey);
      await adapter.start(vm, { diskKeys: new Map([['erp', diskKey]]) });
      expect(await adapter.state(vm)).toBe('running');
      // The key is in no process's argv, and plaintext on no disk, while the VM runs.
      const { stdout: argv } = await run('ps', ['-eo', 'args']);
      for (const form of [
        diskKey.toString('hex'),
        diskKey.toString('base64'),
        luksPassphrase(diskKey),
        dataKey.use((b) => b.toString('hex')),
        dataKey.use((b) => b.toString('base64')),
      ])
        expect(argv).not.toContain(form);
      await expectNoCanary(dirs.pkg, dirs.repo, dirs.state, dirs.install);
      await adapter.stop(vm, { force: true });

      // A truncated disk, and another encrypted disk swapped in, are refused at start.
      const saved = join(root, 'saved.qcow2');
      await copyFile(pulled.image, saved);
      await truncate(pulled.image, Math.floor((await stat(pulled.image)).size / 2));
      const truncated = await adapter.start(vm, { diskKeys: new Map([['erp', diskKey]]) }).catch((e: unknown) => e);
      expect(TandemError.is(truncated, 'TANDEM_INTEGRITY')).toBe(true);
      expect(await adapter.state(vm)).not.toBe('running');
      const other = await encryptedImages.create(join(root, 'other.qcow2'), 32 * MIB, randomBytes(32));
      await other.close();
      await copyFile(join(root, 'other.qcow2'), pulled.image);
      const swapped = await adapter.start(vm, { diskKeys: new Map([['erp', diskKey]]) }).catch((e: unknown) => e);
      expect(TandemError.is(swapped, 'TANDEM_HYPERVISOR')).toBe(true);
      expect(await adapter.state(vm)).toBe('stopped');
      await copyFile(saved, pulled.image);
      diskKey.fill(0);
    });
  },
);
