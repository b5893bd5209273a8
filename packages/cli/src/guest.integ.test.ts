// `tandem up` of a workspace that boots the real Linux test guest (spec.boot, paths relative to
// the workspace file) on qemu:///system, then `tandem guest info --json` against its agent, as
// separate processes. The guest is scripts/test-guest's; .ci/run builds it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';

const run = promisify(execFile);
const URI = 'qemu:///system';
const BIN = fileURLToPath(new URL('../bin/tandem.js', import.meta.url));
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GUEST = resolve(process.env['TANDEM_TEST_GUEST'] ?? '/var/cache/tandem-ci/test-guest/current');

// Software emulation on a machine kept busy on purpose: hooks and tests get generous limits
// (the waits inside are event-driven; nothing asserts a timing).
const LONG = 600_000;

const gate = await integrationGate(
  'libvirt/QEMU with the real test guest (tandem CLI)',
  async () => {
    try {
      await run('virsh', ['-c', URI, 'version', '--daemon']);
      await run('qemu-img', ['--version']);
    } catch (err) {
      return `virsh cannot reach libvirtd at ${URI} or qemu-img is missing (${String((err as Error).message).trim()})`;
    }
    for (const f of [
      join(GUEST, 'vmlinuz'),
      join(GUEST, 'base.cpio.gz'),
      join(ROOT, 'packages/guest-agent/dist/main.js'),
    ]) {
      try {
        await access(f, constants.R_OK);
      } catch {
        return `${f} is missing`;
      }
    }
    return null;
  },
  'as root, start libvirtd and build the test guest with `node scripts/test-guest/build.mjs base` and `npx tsc -b` (bash .ci/run does both)',
);

describe.skipIf(!gate.enabled)('tandem up and tandem guest on the real test guest', () => {
  const name = `guest-it-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let dir: string;

  async function tandem(...args: string[]): Promise<{ code: number; json: any; stderr: string }> {
    try {
      const r = await run(process.execPath, [BIN, '--state-dir', join(dir, 'state'), '--json', ...args], {
        timeout: 400_000,
      });
      return { code: 0, json: JSON.parse(r.stdout), stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, json: e.stdout ? JSON.parse(e.stdout) : undefined, stderr: e.stderr };
    }
  }

  beforeAll(async () => {
    // QEMU runs as libvirt-qemu: the files sit beside the cache, not in a private /tmp.
    const runs = join(dirname(GUEST), 'runs');
    await mkdir(runs, { recursive: true, mode: 0o755 });
    dir = await mkdtemp(join(runs, 'cli-'));
    await chmod(dir, 0o755);
    await copyFile(join(GUEST, 'vmlinuz'), join(dir, 'vmlinuz'));
    await run(process.execPath, [
      join(ROOT, 'scripts/test-guest/build.mjs'),
      'initrd',
      '--guest',
      GUEST,
      '--out',
      join(dir, 'initrd.gz'),
    ]);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'state.qcow2'), '64M']);
    await chmod(join(dir, 'state.qcow2'), 0o644);
    await writeFile(
      join(dir, 'ws.yaml'),
      [
        'apiVersion: tandem/v1',
        'kind: Workspace',
        `metadata: { name: ${name}, version: 1.0.0 }`,
        'spec:',
        '  image: { source: ./state.qcow2, format: qcow2 }',
        '  boot: { kernel: ./vmlinuz, initrd: ./initrd.gz, cmdline: "console=ttyS0 panic=-1" }',
        '  guestOs: linux',
        '  hardware: { memory: { fixedMiB: 512 } }',
        '  network: { mode: nat }',
        '  firstTimeSetup: { computerName: "cli-{random4}" }',
        '',
      ].join('\n'),
    );
  }, LONG);

  afterAll(async () => {
    await tandem('down', name).catch(() => undefined);
    await run('virsh', ['-c', URI, 'destroy', vm]).catch(() => undefined);
    await run('virsh', ['-c', URI, 'undefine', vm]).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'boots the workspace by direct kernel boot, and tandem guest info --json reports the packed kernel',
    async () => {
      const up = await tandem('up', join(dir, 'ws.yaml'), '--adapter', 'libvirt');
      expect(up.code, up.stderr).toBe(0);
      // The kernel and initramfs paths were resolved against the workspace file.
      const xml = (await run('virsh', ['-c', URI, 'dumpxml', vm])).stdout;
      expect(xml).toContain(`<kernel>${join(dir, 'vmlinuz')}</kernel>`);
      expect(xml).toContain(`<initrd>${join(dir, 'initrd.gz')}</initrd>`);

      const manifest = JSON.parse(await readFile(join(GUEST, 'manifest.json'), 'utf8')) as { kernelRelease: string };
      const info = await tandem('guest', 'info', '-w', name, '--timeout', 'PT300S');
      expect(info.code, info.stderr).toBe(0);
      expect(info.json.os.kernel).toBe(manifest.kernelRelease);
      expect(info.json.os.family).toBe('linux');
      expect(info.json.hostname).toBe('tandem-guest');
    },
    LONG,
  );

  it(
    'tandem guest setup names the computer once; a second run says it was already done',
    async () => {
      const setup = await tandem('guest', 'setup', '-w', name, '--timeout', 'PT300S');
      expect(setup.code, setup.stderr).toBe(0);
      expect(setup.json.status).toBe('done');
      const computerName = setup.json.record.computerName as string;
      expect(computerName).toMatch(/^cli-[0-9a-z]{4}$/i);
      const info = await tandem('guest', 'info', '-w', name, '--timeout', 'PT300S');
      expect(info.json.hostname).toBe(computerName);
      const again = await tandem('guest', 'setup', '-w', name, '--timeout', 'PT300S');
      expect(again.json.status).toBe('already-done');
      expect(again.json.record.computerName).toBe(computerName);
    },
    LONG,
  );

  it(
    'tandem apps publish --discovered installs launchers for the apps the agent finds; unpublish removes them',
    async () => {
      const where = ['--data-home', join(dir, 'xdg', 'data'), '--config-home', join(dir, 'xdg', 'config')];
      const pub = await tandem('apps', 'publish', name, '--discovered', '--guest-timeout', 'PT300S', ...where);
      expect(pub.code, pub.stderr).toBe(0);
      const ids = (pub.json.discovered as { id: string }[]).map((a) => a.id);
      // The image's two shown apps, and never the one marked NoDisplay.
      expect(ids).toEqual(
        expect.arrayContaining(['tandem-clock', 'tandem-notes'].map((a) => expect.stringContaining(a))),
      );
      expect(ids.some((id) => id.includes('tandem-hidden'))).toBe(false);
      const entries = (pub.json.written as string[]).filter((f) => f.endsWith('.desktop'));
      expect(entries.length).toBe(ids.length);
      for (const f of entries) {
        const text = await readFile(f, 'utf8');
        expect(text).toMatch(new RegExp(`^Exec=.* apps launch --workspace ${name} `, 'm'));
      }
      let validator = true;
      await run('desktop-file-validate', ['--help']).catch(() => (validator = false));
      if (validator) {
        for (const f of entries) {
          const out = await run('desktop-file-validate', [f]).catch((e: { stdout?: string }) => ({
            stdout: `FAILED ${e.stdout ?? ''}`,
          }));
          expect(
            out.stdout.split('\n').filter((l) => l.trim() && !/: hint: /.test(l)),
            f,
          ).toEqual([]);
        }
      } else if (process.env['TANDEM_IT'] === 'required') throw new Error('desktop-file-validate is not installed');

      const un = await tandem('apps', 'unpublish', name, ...where);
      expect(un.code, un.stderr).toBe(0);
      expect([...(un.json.removed as string[])].sort()).toEqual([...(pub.json.written as string[])].sort());
    },
    LONG,
  );
});
