// The `data-file` layout of libvirtEncryptedImages on real qemu-img, qemu-io and qemu-nbd
// (issue 11): Tandem writes the LUKS ciphertext of a qcow2's raw data file itself, with the
// master key it recovers from the header qemu-img wrote; QEMU reads back exactly the plaintext,
// a sector QEMU writes is byte for byte what Tandem's XTS makes, zero runs are qcow2 zero clusters
// and holes in the data file, the image moves with qemu-img amend, and another key is refused.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { recoverLuks1MasterKey, XtsCipher } from '@tandem/core/crypto';
import { integrationGate } from '@tandem/core/testing';
import { dataFileOf } from './encrypted-data-file.js';
import { libvirtEncryptedImages } from './encrypted-images.js';
import { luksPassphrase } from './encryption.js';
import { withPipedSecret } from './handover.js';
import { readQcow2Facts, readRegion } from './qcow2-header.js';
import { imageDir } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const CANARY = Buffer.from('TANDEM-DATAFILE-CANARY-5be1-PLAINTEXT');

const gate = await integrationGate(
  'qemu-img, qemu-io and qemu-nbd',
  async () => {
    for (const tool of ['qemu-img', 'qemu-io', 'qemu-nbd']) {
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

/** Runs qemu tool `tool` on the image with the key on a pipe; `args` after the secret object. */
async function withKeyRun(tool: string, key: Uint8Array, args: (secret: string) => string[]): Promise<string> {
  return withPipedSecret(luksPassphrase(key), async (fifo) => {
    const r = await execa(tool, args(`secret,id=k,format=raw,file=${fifo}`), {
      reject: false,
      all: true,
      stdin: 'ignore',
    });
    const output = String(r.all ?? '');
    if (r.exitCode !== 0 || /Pattern verification failed|failed/i.test(output)) throw new Error(`${tool}: ${output}`);
    return output;
  });
}

const opts = (path: string): string => `driver=qcow2,file.filename=${path},encrypt.key-secret=k`;

describe.skipIf(!gate.enabled)('encrypted images at rest, data-file layout (qemu-img, qemu-io, qemu-nbd)', () => {
  const images = libvirtEncryptedImages({ layout: 'data-file', luksIterTimeMs: 10 });
  let tmp: Awaited<ReturnType<typeof imageDir>>;
  beforeAll(async () => {
    tmp = await imageDir();
  });
  afterAll(async () => tmp?.remove());

  it('QEMU reads what Tandem wrote and Tandem what QEMU wrote; zero runs stay holes; the image moves; another key is refused', async () => {
    const key = randomBytes(32);
    // Not a whole number of sectors; data at unaligned offsets around a 2 MiB zero run.
    const size = 4 * MIB + 700;
    const plain = Buffer.alloc(size);
    randomBytes(MIB - 1000).copy(plain, 1000);
    randomBytes(size - 3 * MIB - 123).copy(plain, 3 * MIB + 123);
    CANARY.copy(plain, 5000);
    CANARY.copy(plain, 3 * MIB + 9000);
    const path = join(tmp.dir, 'a', 'disk.qcow2');
    await execa('mkdir', ['-p', join(tmp.dir, 'a')]);
    const image = await images.create(path, size, key);
    expect(image.size).toBe(Math.ceil(size / 512) * 512);
    // As a pull does: the zero runs first, in order, then the data in pieces that split sectors.
    await image.writeZeroes!(0, 1000);
    await image.writeZeroes!(MIB, MIB);
    await image.writeZeroes!(2 * MIB, MIB + 123); // adjacent: one run from 1 MiB to 3 MiB + 123
    for (const [from, to] of [
      [1000, MIB],
      [3 * MIB + 123, size],
    ] as const)
      for (let at = from; at < to; at += 77_777) await image.write(at, plain.subarray(at, Math.min(to, at + 77_777)));
    // Hashed as written (the pull's final check), then Tandem's own read-back (its decryption of
    // the data file): both are the plaintext.
    expect(await image.digest!(size)).toBe(createHash('sha256').update(plain).digest('hex'));
    expect((await image.read(0, size)).equals(plain)).toBe(true);
    await image.close();

    // QEMU reads the plaintext (through qemu-nbd), the run is zero clusters, the data file has holes there.
    const viaQemu = await images.open(path, key, { readOnly: true });
    try {
      expect((await viaQemu.read(0, size)).equals(plain)).toBe(true);
    } finally {
      await viaQemu.close();
    }
    const map = JSON.parse(
      await withKeyRun('qemu-img', key, (s) => ['map', '--output=json', '--object', s, '--image-opts', opts(path)]),
    ) as { start: number; length: number; zero: boolean }[];
    const zeroBytes = map.filter((m) => m.zero).reduce((n, m) => n + m.length, 0);
    expect(zeroBytes).toBe(2 * MIB); // clusters 16 to 47, whole; the run's edges are encrypted zeros
    expect(map.find((m) => m.zero)!.start).toBe(MIB);
    const data = await stat(dataFileOf(path));
    expect(data.blocks * 512).toBeLessThanOrEqual(size - 2 * MIB + 64 * 1024);

    // A sector qemu-io writes is byte for byte Tandem's XTS under the master key from the header.
    await withKeyRun('qemu-io', key, (s) => [
      '--object',
      s,
      '--image-opts',
      opts(path),
      '-c',
      'write -P 0x5a 1536 1024',
    ]);
    const facts = await readQcow2Facts(path);
    const master = await recoverLuks1MasterKey(
      await readRegion(path, facts.crypto!.offset, facts.crypto!.length),
      luksPassphrase(key),
    );
    const onDisk = (await readFile(dataFileOf(path))).subarray(1536, 2560);
    master.use((k) => {
      using xts = new XtsCipher(k);
      expect(xts.encrypt(3, Buffer.alloc(1024, 0x5a)).equals(onDisk)).toBe(true);
    });
    master.dispose();
    const reopened = await images.open(path, key);
    try {
      expect((await reopened.read(1536, 1024)).equals(Buffer.alloc(1024, 0x5a))).toBe(true);
      expect((await reopened.read(3 * MIB, 9100)).equals(plain.subarray(3 * MIB, 3 * MIB + 9100))).toBe(true);
    } finally {
      await reopened.close();
    }
    Buffer.alloc(1024, 0x5a).copy(plain, 1536);

    // Moved (as a pull moves a version into place): amended first, then the directory renamed.
    const moved = join(tmp.dir, 'b', 'disk.qcow2');
    await images.relocate!(path, moved, key);
    await rename(join(tmp.dir, 'a'), join(tmp.dir, 'b'));
    const after = await images.open(moved, key, { readOnly: true });
    try {
      expect((await after.read(0, size)).equals(plain)).toBe(true);
    } finally {
      await after.close();
    }

    // No file holds plaintext; another key opens nothing.
    for (const f of await readdir(tmp.dir, { recursive: true, withFileTypes: true }))
      if (f.isFile()) expect((await readFile(join(f.parentPath, f.name))).includes(CANARY)).toBe(false);
    const err = await images.open(moved, randomBytes(32)).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_AUTH'), String(err)).toBe(true);
  });
});
