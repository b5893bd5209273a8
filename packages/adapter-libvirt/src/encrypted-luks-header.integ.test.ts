// Tandem's own LUKS header in a new encrypted qcow2 (issue 11), on real qemu-img and qemu-io:
// outside the LUKS region the file is byte for byte what `qemu-img create -o encrypt.format=luks`
// makes, `qemu-img check` finds nothing, QEMU reads and writes through it with the key and
// refuses another, qemu-img never sees the key, and a qcow2 layout Tandem does not know is left
// to qemu-img (in all three forms: external data file, plain, overlay on an encrypted base).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { createLuksQcow2 } from './encrypted-luks-header.js';
import { createEncryptedOverlay, luksPassphrase } from './encryption.js';
import { withPipedSecret } from './handover.js';
import { readQcow2Facts } from './qcow2-header.js';
import { imageDir } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;

const gate = await integrationGate(
  'qemu-img and qemu-io',
  async () => {
    for (const tool of ['qemu-img', 'qemu-io']) {
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

/**
 * Runs `tool` with the key on a pipe as secret `k`: qemu-io takes the secret object first, qemu-img
 * after its subcommand (`args[0]`). Returns its output and exit code.
 */
async function withKey(tool: string, key: Uint8Array, args: string[]): Promise<{ output: string; code: number }> {
  return withPipedSecret(luksPassphrase(key), async (fifo) => {
    const object = ['--object', `secret,id=k,format=raw,file=${fifo}`];
    const argv = tool === 'qemu-img' ? [args[0]!, ...object, ...args.slice(1)] : [...object, ...args];
    const r = await execa(tool, argv, {
      reject: false,
      all: true,
      stdin: 'ignore',
    });
    return { output: String(r.all ?? ''), code: r.exitCode ?? -1 };
  });
}

describe.skipIf(!gate.enabled)("Tandem's LUKS header in a qcow2 (qemu-img, qemu-io)", () => {
  let tmp: Awaited<ReturnType<typeof imageDir>>;
  let shim: string;
  let argvLog: string;
  beforeAll(async () => {
    tmp = await imageDir();
    // qemu-img through a recording shim: every argv it is given lands in argv.log.
    argvLog = join(tmp.dir, 'argv.log');
    shim = join(tmp.dir, 'qemu-img-shim');
    await writeFile(shim, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec qemu-img "$@"\n`);
    await chmod(shim, 0o755);
  });
  afterAll(async () => tmp?.remove());

  it("with a data file: qemu-img's own layout outside the LUKS region, checked clean, read and written by QEMU, another key refused", async () => {
    const key = randomBytes(32);
    const size = 64 * MIB + 512;
    for (const d of ['t', 'q']) await mkdir(join(tmp.dir, d));
    const ours = join(tmp.dir, 't', 'disk.qcow2');
    const theirs = join(tmp.dir, 'q', 'disk.qcow2');
    const dataOpts = (p: string) => ['-o', `data_file=${p}.data,data_file_raw=on`];
    expect(await createLuksQcow2(shim, ours, size, key, dataOpts(ours))).toBe(true);
    const made = await withKey('qemu-img', key, [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      `encrypt.format=luks,encrypt.key-secret=k,encrypt.iter-time=10,data_file=${theirs}.data,data_file_raw=on`,
      theirs,
      String(size),
    ]);
    expect(made.code, made.output).toBe(0);
    const [a, b] = [await readFile(ours), await readFile(theirs)];
    const [fa, fb] = [await readQcow2Facts(ours), await readQcow2Facts(theirs)];
    expect(fa.crypto).toEqual(fb.crypto);
    expect(fa.dataFile).toBe(`${ours}.data`);
    expect(a.length).toBe(b.length);
    // The metadata before the LUKS region, with the directory's name (t, q) the only difference.
    const meta = (buf: Buffer, from: string) =>
      Buffer.from(buf.subarray(0, fa.crypto!.offset).toString('latin1').replace(from, '@'), 'latin1');
    expect(meta(a, ours).equals(meta(b, theirs))).toBe(true);

    const opts = `driver=qcow2,file.filename=${ours},encrypt.key-secret=k`;
    const check = await withKey('qemu-img', key, ['check', '--image-opts', opts]);
    expect(check.output).toContain('No errors were found on the image.');
    expect(check.code).toBe(0);
    const io = await withKey('qemu-io', key, [
      '--image-opts',
      opts,
      '-c',
      'write -P 0x6b 1000000 300000',
      '-c',
      'read -P 0x6b 1000000 300000',
    ]);
    expect(io.output).not.toMatch(/fail|error/i);
    expect(io.output).toContain('read 300000/300000 bytes');
    const other = await withKey('qemu-io', randomBytes(32), ['--image-opts', opts, '-c', 'read 0 512']);
    expect(other.output).toMatch(/Invalid password|cannot unlock/i);
    const info = JSON.parse(
      (await withKey('qemu-img', key, ['info', '--output=json', '--image-opts', opts])).output,
    ) as {
      encrypted: boolean;
      'format-specific': { data: { encrypt: { format: string; slots: { active: boolean; iters?: number }[] } } };
    };
    expect(info.encrypted).toBe(true);
    expect(info['format-specific'].data.encrypt.format).toBe('luks');
    expect(info['format-specific'].data.encrypt.slots[0]).toMatchObject({ active: true, iters: 1000 });

    // qemu-img never saw the key: no secret object, no key in any spelling.
    const argv = await readFile(argvLog, 'utf8');
    expect(argv).toContain('create');
    expect(argv).not.toContain('--object');
    for (const spelling of [key.toString('hex'), key.toString('base64'), luksPassphrase(key)])
      expect(argv).not.toContain(spelling);
    // Nothing is left beside the image but its data file.
    expect((await readdir(join(tmp.dir, 't'))).sort()).toEqual(['disk.qcow2', 'disk.qcow2.data']);
  });

  it('without a data file and as an overlay on an encrypted base: QEMU reads the base through the overlay', async () => {
    const key = randomBytes(32);
    const base = join(tmp.dir, 'base.qcow2');
    const overlay = join(tmp.dir, 'overlay.qcow2');
    expect(await createLuksQcow2('qemu-img', base, 8 * MIB, key)).toBe(true);
    const baseOpts = `driver=qcow2,file.filename=${base},encrypt.key-secret=k`;
    await withKey('qemu-io', key, ['--image-opts', baseOpts, '-c', 'write -P 0x33 0 1M']);
    await createEncryptedOverlay('qemu-img', overlay, base, 8 * MIB, key);
    expect((await readQcow2Facts(overlay)).crypto).toBeDefined();
    const opts = `driver=qcow2,file.filename=${overlay},encrypt.key-secret=k,backing.encrypt.key-secret=k`;
    const io = await withKey('qemu-io', key, [
      '--image-opts',
      opts,
      '-c',
      'read -P 0x33 0 1M',
      '-c',
      'write -P 0x44 4096 512',
      '-c',
      'read -P 0x44 4096 512',
    ]);
    expect(io.output).not.toMatch(/fail|error/i);
    expect(io.output).toContain('read 1048576/1048576 bytes');
    for (const image of [baseOpts, opts]) {
      const check = await withKey('qemu-img', key, ['check', '--image-opts', image]);
      expect(check.code, check.output).toBe(0);
    }
    // The base is unchanged by the overlay's write.
    const still = await withKey('qemu-io', key, ['--image-opts', baseOpts, '-c', 'read -P 0x33 4096 512']);
    expect(still.output).not.toMatch(/fail|error/i);
  });

  it('leaves a qcow2 layout it does not know to qemu-img (false, nothing left behind)', async () => {
    const path = join(tmp.dir, 'odd', 'disk.qcow2');
    await mkdir(join(tmp.dir, 'odd'));
    expect(await createLuksQcow2('qemu-img', path, 8 * MIB, randomBytes(32), ['-o', 'refcount_bits=8'])).toBe(false);
    expect(await readdir(join(tmp.dir, 'odd'))).toEqual([]);
  });
});
