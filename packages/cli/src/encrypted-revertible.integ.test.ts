// A revertible encrypted workspace through the `tandem` command on a real libvirtd with QEMU
// (issue 11): pulled with an envelope into a LUKS qcow2, `tandem up` starts it writing into a
// fresh LUKS overlay on the encrypted base (libvirt cannot snapshot the base), `tandem end`
// discards the overlay, and the base's bytes are those the pull installed.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';

const run = promisify(execFile);
const URI = 'qemu:///system';
const BIN = fileURLToPath(new URL('../bin/tandem.js', import.meta.url));
const MIB = 1024 * 1024;

const gate = await integrationGate(
  'libvirt/QEMU with qemu-nbd (a revertible encrypted workspace through tandem)',
  async () => {
    try {
      await run('virsh', ['-c', URI, 'version', '--daemon']);
      await run('qemu-img', ['--version']);
      await run('qemu-nbd', ['--version']);
    } catch (err) {
      return `virsh cannot reach libvirtd at ${URI}, or qemu-img/qemu-nbd is missing (${String((err as Error).message).trim()})`;
    }
    return null;
  },
  'as root, install libvirt-daemon-system, libvirt-clients, qemu-system-x86 and qemu-utils and start virtlogd and libvirtd (bash .ci/run does)',
);

const sha256 = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map((f) => join(dir, f));
}

describe.skipIf(!gate.enabled)('tandem up and end of a revertible encrypted workspace on qemu:///system', () => {
  const name = `cli-ovl-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let dir: string;

  async function tandem(...args: string[]): Promise<{ code: number; json: any; stderr: string }> {
    try {
      const ok = await run(process.execPath, [BIN, '--state-dir', join(dir, 'state'), '--json', ...args], {
        timeout: 180_000,
      });
      const lines = ok.stdout.split('\n');
      const from = lines.lastIndexOf('{');
      return { code: 0, json: JSON.parse(from > 0 ? lines.slice(from).join('\n') : ok.stdout), stderr: ok.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, json: undefined, stderr: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }
  const step = async (...args: string[]): Promise<any> => {
    const r = await tandem(...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-cli-ovl-'));
    await chmod(dir, 0o755); // QEMU runs as libvirt-qemu and must reach the image
  });
  afterAll(async () => {
    await run('virsh', ['-c', URI, 'destroy', vm]).catch(() => undefined);
    await run('virsh', ['-c', URI, 'undefine', vm, '--nvram']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('starts on a fresh encrypted overlay and ends with it discarded, the installed image unchanged', async () => {
    const admin = join(dir, 'admin');
    const install = join(dir, 'install');
    const ws = join(dir, 'ws');
    await mkdir(join(ws, 'images'), { recursive: true });
    const disk = Buffer.alloc(8 * MIB);
    randomBytes(MIB).copy(disk, 0);
    await writeFile(join(ws, 'images', 'disk.img'), disk);
    await writeFile(
      join(ws, 'tandem.workspace.yaml'),
      [
        'apiVersion: tandem/v1',
        'kind: Workspace',
        `metadata: { name: ${name}, version: 1.0.0 }`,
        'spec:',
        '  image: { source: ./images/disk.img, format: raw }',
        '  guestOs: other',
        '  hardware: { memory: { fixedMiB: 64 }, cpus: 1 }',
        '  network: { mode: none }',
        '  usage: { mode: revertible }',
        '',
      ].join('\n'),
    );
    await mkdir(admin, { recursive: true, mode: 0o700 });
    const keyFile = join(admin, 'image.key');
    const authority = join(admin, 'authority.pem');
    const repoKeys = join(admin, 'repo-keys');
    const repo = join(dir, 'repo');
    await step('keys', 'image', 'new', '--image', name, '--out', keyFile);
    await step('keys', 'authority', 'new', '--out', authority);
    await step(
      'pack',
      join(ws, 'tandem.workspace.yaml'),
      '--out',
      join(dir, 'pkg.tandem'),
      '--encrypt',
      '--key',
      keyFile,
    );
    await step('repo', 'init', repo, '--keys', repoKeys);
    await step('push', join(dir, 'pkg.tandem'), repo, '--keys', repoKeys, '--channel', 'stable');
    const device = (await step('keys', 'device', 'show')).publicKey as string;
    await step('keys', 'trust', `${authority}.pub`);
    const envelope = join(dir, 'image.envelope');
    await step(
      'keys',
      'seal',
      '--key',
      keyFile,
      '--authority-key',
      authority,
      '--device',
      device,
      '--not-after',
      'P1D',
      '--out',
      envelope,
    );
    const pulled = await step(
      'pull',
      repo,
      name,
      '--root',
      join(repoKeys, 'root.json'),
      '--dir',
      install,
      '--envelope',
      envelope,
      '--luks-iter-time',
      '10',
    );
    // The installed encrypted image, as the pull recorded it beside the workspace file.
    const versionDir = dirname(pulled.workspaceFile as string);
    const meta = (await files(versionDir)).find((f) => f.endsWith('encryption.json'));
    expect(meta).toBeDefined();
    const base = join(versionDir, ...(JSON.parse(await readFile(meta!, 'utf8')) as { image: string }).image.split('/'));
    const before = await sha256(base);

    const up = await step(
      'up',
      pulled.workspaceFile as string,
      '--adapter',
      'libvirt',
      '--adapter-option',
      'virtType=qemu',
      '--envelope',
      envelope,
    );
    expect(up).toMatchObject({ vm, state: 'running' });
    const overlays = (await files(install)).filter((f) => f.includes('.tandem-overlay-'));
    expect(overlays).toHaveLength(1);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', '-U', overlays[0]!])).stdout) as {
      encrypted?: boolean;
      'backing-filename'?: string;
    };
    expect(info).toMatchObject({ encrypted: true, 'backing-filename': base });
    expect((await run('virsh', ['-c', URI, 'domblklist', vm])).stdout).toContain(overlays[0]!);

    const end = await step('end', name, '--timeout', '1');
    expect(end).toMatchObject({ action: 'revert', state: 'stopped' });
    expect((await files(install)).filter((f) => f.includes('.tandem-overlay-'))).toEqual([]);
    expect((await run('virsh', ['-c', URI, 'domblklist', vm])).stdout).toContain(base);
    expect(await sha256(base)).toBe(before);

    await step('down', name);
    expect(await sha256(base)).toBe(before);
  });
});
