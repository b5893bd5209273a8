// `tandem guest setup`'s restart path against the real Linux test guest (scripts/test-guest) on
// qemu:///system, the CLI run as separate processes: a guest that says a restart is pending
// after its steps (/run/reboot-required, which the test guest writes when its kernel command line
// has tandem.reboot-required) is stopped gracefully and started again, and setup ends once its
// agent said hello again; with --no-restart the VM is left running as it was. Two workspaces,
// one VM each, booted side by side.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { purgeVm, TANDEM_BIN, tandemProcess, virsh } from './libvirt-cli.test-helper.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GUEST = resolve(process.env['TANDEM_TEST_GUEST'] ?? '/var/cache/tandem-ci/test-guest/current');
const LONG = 900_000;

const gate = await integrationGate(
  'libvirt/QEMU with the real test guest (tandem guest setup restart)',
  async () => {
    try {
      await run('virsh', ['-c', 'qemu:///system', 'version', '--daemon']);
      await run('qemu-img', ['--version']);
    } catch (err) {
      return `virsh cannot reach libvirtd at qemu:///system or qemu-img is missing (${String((err as Error).message).trim()})`;
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

describe.skipIf(!gate.enabled)('tandem guest setup restarts a guest that asks for it (real test guest)', () => {
  const tag = randomBytes(3).toString('hex');
  const names = { restart: `gr-${tag}`, keep: `gk-${tag}` };
  let dir: string;
  const state = (name: string): string => join(dir, name, 'state');

  /** `tandem` without --json, for the words a person reads. */
  async function tandemText(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await run(process.execPath, [TANDEM_BIN, '--state-dir', state(name), ...args], { timeout: 800_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  async function workspace(name: string): Promise<string> {
    const d = join(dir, name);
    await mkdir(d, { recursive: true, mode: 0o755 });
    await chmod(d, 0o755);
    await copyFile(join(GUEST, 'vmlinuz'), join(d, 'vmlinuz'));
    await copyFile(join(dir, 'initrd.gz'), join(d, 'initrd.gz'));
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(d, 'state.qcow2'), '64M']);
    await chmod(join(d, 'state.qcow2'), 0o644);
    const file = join(d, 'ws.yaml');
    await writeFile(
      file,
      [
        'apiVersion: tandem/v1',
        'kind: Workspace',
        `metadata: { name: ${name}, version: 1.0.0 }`,
        'spec:',
        '  image: { source: ./state.qcow2, format: qcow2 }',
        '  boot: { kernel: ./vmlinuz, initrd: ./initrd.gz, cmdline: "console=ttyS0 panic=-1 tandem.reboot-required" }',
        '  guestOs: linux',
        '  hardware: { memory: { fixedMiB: 512 } }',
        '  network: { mode: none }',
        '  firstTimeSetup: { computerName: "rs-{random4}" }',
        '',
      ].join('\n'),
    );
    return file;
  }

  beforeAll(async () => {
    const runs = join(dirname(GUEST), 'runs');
    await mkdir(runs, { recursive: true, mode: 0o755 });
    dir = await mkdtemp(join(runs, 'cli-restart-'));
    await chmod(dir, 0o755);
    await run(process.execPath, [
      join(ROOT, 'scripts/test-guest/build.mjs'),
      'initrd',
      '--guest',
      GUEST,
      '--out',
      join(dir, 'initrd.gz'),
    ]);
    const files = await Promise.all(Object.values(names).map((n) => workspace(n)));
    const ups = await Promise.all(
      Object.values(names).map((n, i) => tandemProcess(state(n), ['up', files[i]!, '--adapter', 'libvirt'], 600_000)),
    );
    for (const up of ups) expect(up.code, up.stderr).toBe(0);
  }, LONG);

  afterAll(async () => {
    for (const n of Object.values(names)) {
      if (dir) await tandemProcess(state(n), ['down', n]).catch(() => undefined);
      await purgeVm(`tandem-${n}`);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'runs the steps, restarts the VM, waits for the agent to say hello again, and says so',
    async () => {
      const name = names.restart;
      const vm = `tandem-${name}`;
      const domidBefore = await virsh('domid', vm);
      const setup = await tandemText(name, ['guest', 'setup', '-w', name, '--timeout', 'PT600S']);
      expect(setup.code, setup.stderr).toBe(0);
      expect(setup.stdout).toMatch(
        /first-time setup done: computer name rs-[0-9a-z]{4}; the VM restarted and its agent is back/i,
      );
      // A new QEMU process: libvirt gives a domain a new id at every start.
      expect(await virsh('domstate', vm)).toBe('running');
      expect(await virsh('domid', vm)).not.toBe(domidBefore);

      const events = await tandemProcess(state(name), ['events', '-t', 'guest.setup-step']);
      const steps = (events.json.events as Array<{ data: { step: string; status: string; message?: string } }>).map(
        (e) => e.data,
      );
      expect(steps.filter((s) => s.step === 'restart').map((s) => s.status)).toEqual(['started', 'done']);
      expect(steps.find((s) => s.step === 'computer-name' && s.status === 'done')?.message).toContain(
        'restart pending',
      );
      // The agent of the restarted guest answers, with the name the setup gave (kept on its disk).
      const status = await tandemProcess(state(name), ['guest', 'status', '-w', name, '--timeout', 'PT300S']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.json.setup.completedAt).toBeTruthy();
      expect(status.json.setup.rebootRequired).toBe(false);
      const info = await tandemProcess(state(name), ['guest', 'info', '-w', name, '--timeout', 'PT300S']);
      expect(info.json.hostname).toBe(status.json.setup.computerName);
    },
    LONG,
  );

  it(
    'with --no-restart the VM keeps running as it was, and the CLI says a restart is still needed',
    async () => {
      const name = names.keep;
      const vm = `tandem-${name}`;
      const domidBefore = await virsh('domid', vm);
      const setup = await tandemText(name, ['guest', 'setup', '-w', name, '--no-restart', '--timeout', 'PT600S']);
      expect(setup.code, setup.stderr).toBe(0);
      expect(setup.stdout).toMatch(
        /first-time setup done: computer name rs-[0-9a-z]{4}; restart the VM for it to take effect/i,
      );
      expect(await virsh('domid', vm)).toBe(domidBefore);
      const events = await tandemProcess(state(name), ['events', '-t', 'guest.setup-step']);
      const steps = (events.json.events as Array<{ data: { step: string } }>).map((e) => e.data.step);
      expect(steps).toContain('computer-name');
      expect(steps).not.toContain('restart');
      // The host's record keeps the pending restart for the caller.
      const status = await tandemProcess(state(name), ['guest', 'status', '-w', name, '--timeout', 'PT300S']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.json.setup).toMatchObject({ rebootRequired: true });
      expect(status.json.setup.completedAt).toBeTruthy();
      expect(await virsh('domid', vm)).toBe(domidBefore);
    },
    LONG,
  );
});
