// Encrypted per-session overlays on real QEMU (issue 11): libvirt cannot snapshot a LUKS disk, so
// a revertible session on an encrypted image writes into a fresh LUKS overlay backed by the
// encrypted base, discarded at the end (the base's bytes unchanged), and a session that ends
// with a snapshot keeps its overlay and writes on it again next time. The guest has no OS, so
// the session's writes are made through the VM's disk chain with qemu-io between starts, the key
// on a named pipe as everywhere else.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionManager, parseWorkspace } from '@tandem/core';
import { LibvirtAdapter } from './adapter.js';
import { luksPassphrase } from './encryption.js';
import { withPipedSecret } from './handover.js';
import { imageDir, itName, purge, QEMU_URI, qemuGate, virsh } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const gate = await qemuGate();
const MIB = 1024 * 1024;

const sha256 = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

async function imageInfo(path: string): Promise<{ encrypted?: boolean; 'backing-filename'?: string }> {
  return JSON.parse((await run('qemu-img', ['info', '--output=json', '-U', path])).stdout) as {
    encrypted?: boolean;
    'backing-filename'?: string;
  };
}

/** Runs one qemu-io command on an encrypted image (and its encrypted backing file, if any). */
async function qemuIo(path: string, key: Uint8Array, command: string): Promise<{ ok: boolean; output: string }> {
  return withPipedSecret(luksPassphrase(key), async (fifo) => {
    const backing = (await imageInfo(path))['backing-filename'] ? ',backing.encrypt.key-secret=k' : '';
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
    const output = String(r.all ?? '');
    return { ok: r.exitCode === 0 && !/Pattern verification failed|failed/i.test(output), output };
  });
}

/** Every process's argv on this machine, joined. */
async function allArgv(): Promise<string> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    out.push(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''));
  }
  return out.join('\n');
}

describe.skipIf(!gate.enabled)('encrypted overlays per session on qemu:///system', () => {
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
    expect((await qemuIo(base, key, 'write -P 0x11 0 64k')).ok).toBe(true);
    return base;
  }

  it('a revertible session writes only into a fresh LUKS overlay, discarded at the end with the base unchanged', async () => {
    const vm = itName('ovl-rev');
    vms.push(vm);
    const key = randomBytes(32);
    const base = await encryptedBase(vm, key);
    const before = await sha256(base);
    const diskKeys = new Map([['disk-key', key]]);
    const manager = new SessionManager({ adapter });
    const s = await manager.open(workspace(vm, base, '{ mode: revertible }'), { vmName: vm, diskKeys });
    // No baseline snapshot: libvirt could not take it; the untouched base is the baseline.
    expect(await s.snapshots()).toEqual([]);

    await s.start();
    expect(await adapter.state(vm)).toBe('running');
    const [on] = await adapter.encryptedOverlays.list(vm);
    expect(on?.base).toBe(base);
    const overlay = on!.overlay;
    expect(await imageInfo(overlay)).toMatchObject({ encrypted: true, 'backing-filename': base });
    // QEMU runs the overlay with the base as its backing store, both opened with one secret.
    const live = await virsh('dumpxml', '--domain', vm);
    expect(live).toContain(`<source file='${overlay}'`);
    expect(live).toMatch(/<backingStore type='file'[^>]*>[\s\S]*?<source file='[^']*base\.qcow2'/);
    // The key never reached any process's argv, in hex or in base64.
    const argv = await allArgv();
    expect(argv.includes(luksPassphrase(key))).toBe(false);
    expect(argv.includes(Buffer.from(key).toString('hex'))).toBe(false);
    // The VM reports its image, not the overlay: nothing looks like an update.
    expect((await adapter.list()).find((v) => v.name === vm)?.disks?.[0]?.path).toBe(base);

    // The session's writes land in the overlay only.
    await s.stop({ force: true });
    expect((await qemuIo(overlay, key, 'write -P 0x5a 0 64k')).ok).toBe(true);
    expect((await qemuIo(overlay, key, 'read -P 0x5a 0 64k')).ok).toBe(true);
    expect(await sha256(base)).toBe(before);
    await s.start();

    expect(await s.end()).toBe('revert');
    expect(await adapter.state(vm)).toBe('stopped');
    await expect(stat(overlay)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await adapter.encryptedOverlays.list(vm)).toEqual([]);
    expect(await virsh('dumpxml', '--inactive', '--domain', vm)).not.toContain('backingStore type');
    expect(await sha256(base)).toBe(before);
    expect((await qemuIo(base, key, 'read -P 0x11 0 64k')).ok).toBe(true);
    // (The check can fail: the session's pattern is not in the base.)
    expect((await qemuIo(base, key, 'read -P 0x5a 0 64k')).ok).toBe(false);
    await s.close();

    // The next session starts clean, from a new overlay on the same base.
    const s2 = await new SessionManager({ adapter }).open(workspace(vm, base, '{ mode: revertible }'), {
      vmName: vm,
      diskKeys,
    });
    expect(s2.pendingUpdate).toBeUndefined();
    await s2.start();
    const [next] = await adapter.encryptedOverlays.list(vm);
    expect(next?.overlay).not.toBe(overlay);
    await s2.end();
    expect(await sha256(base)).toBe(before);
    await s2.close();
  });

  it('a session that ends with a snapshot keeps its encrypted overlay and runs from it again', async () => {
    const vm = itName('ovl-snap');
    vms.push(vm);
    const key = randomBytes(32);
    const base = await encryptedBase(vm, key);
    const before = await sha256(base);
    const diskKeys = new Map([['disk-key', key]]);
    const ws = workspace(vm, base, '{ onSessionEnd: snapshot }');
    const s = await new SessionManager({ adapter }).open(ws, { vmName: vm, diskKeys });
    await s.start();
    const kept = await adapter.encryptedOverlays.list(vm);
    expect(kept).toHaveLength(1);
    const overlay = kept[0]!.overlay;
    await s.stop({ force: true });
    expect((await qemuIo(overlay, key, 'write -P 0x77 0 64k')).ok).toBe(true);
    await s.start();
    expect(await s.end({ force: true })).toBe('snapshot');
    expect(await adapter.state(vm)).toBe('stopped');
    // Kept: still encrypted, still holding the session's writes; the base as delivered.
    expect(await adapter.encryptedOverlays.list(vm)).toEqual(kept);
    expect(await imageInfo(overlay)).toMatchObject({ encrypted: true, 'backing-filename': base });
    expect((await qemuIo(overlay, key, 'read -P 0x77 0 64k')).ok).toBe(true);
    expect(await sha256(base)).toBe(before);
    await s.close();

    // The next session runs from the kept overlay.
    const s2 = await new SessionManager({ adapter }).open(ws, { vmName: vm, diskKeys });
    expect(s2.pendingUpdate).toBeUndefined();
    await s2.start();
    expect(await adapter.state(vm)).toBe('running');
    expect(await adapter.encryptedOverlays.list(vm)).toEqual(kept);
    await s2.end({ force: true });
    expect((await qemuIo(overlay, key, 'read -P 0x77 0 64k')).ok).toBe(true);
    await s2.close();
  });
});
