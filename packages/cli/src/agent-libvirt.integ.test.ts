// The host agent on a real libvirtd with QEMU, every piece a real process: `tandem agent run`
// owns the session that `tandem up` starts; its watchdog brings back a QEMU killed with SIGKILL;
// an agent killed with SIGKILL and started again re-attaches to the VM as it runs, without
// restarting it; another host user's suspended VM is started only after this user confirms.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { libvirtOwnership } from '@tandem/adapter-libvirt';
import {
  QEMU_URI as URI,
  TANDEM_BIN as BIN,
  purgeVm,
  smallWorkspace,
  tandemProcess,
  virsh,
} from './libvirt-cli.test-helper.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'libvirt/QEMU (tandem agent)',
  async () => {
    try {
      await run('virsh', ['-c', URI, 'version', '--daemon']);
      await run('qemu-img', ['--version']);
      await readFile(fileURLToPath(new URL('../dist/bin.js', import.meta.url)));
    } catch (err) {
      return `virsh cannot reach libvirtd at ${URI}, qemu-img is missing or the CLI is not built (${String((err as Error).message).trim()})`;
    }
    return null;
  },
  'as root, install libvirt-daemon-system, libvirt-clients, qemu-system-x86 and qemu-utils, start virtlogd and libvirtd, and build with npx tsc -b (bash .ci/run does)',
);

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 240_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!gate.enabled)('tandem agent on qemu:///system', () => {
  const name = `agent-it-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let dir: string;
  let agent: ChildProcess | undefined;

  const state = (): string => join(dir, 'state');
  const tandem = (...args: string[]): ReturnType<typeof tandemProcess> => tandemProcess(state(), args);

  function startAgent(): Promise<ChildProcess> {
    const env = { ...process.env };
    delete env['DBUS_SESSION_BUS_ADDRESS'];
    const child = spawn(process.execPath, [BIN, '--state-dir', state(), 'agent', 'run', '--no-desktop'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    agent = child;
    let err = '';
    return new Promise((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        if (err.includes('listening on')) resolve(child);
      });
      child.once('exit', (code) => reject(new Error(`tandem agent run exited (${code}): ${err}`)));
    });
  }

  async function killAgent(): Promise<void> {
    const child = agent;
    agent = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  const qemuPid = async (): Promise<number> => Number((await readFile(`/run/libvirt/qemu/${vm}.pid`, 'utf8')).trim());

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-agent-it-'));
    await chmod(dir, 0o755); // QEMU runs as libvirt-qemu and must reach the image
    await smallWorkspace(dir, name);
  });

  afterAll(async () => {
    await killAgent();
    await purgeVm(vm);
    await rm(dir, { recursive: true, force: true });
  });

  it('restarts a QEMU killed with SIGKILL, re-attaches after its own SIGKILL without touching the VM, and takes over the VM of another user only when confirmed', async () => {
    await startAgent();
    const up = await tandem('up', join(dir, 'ws.yaml'), '--adapter', 'libvirt', '--adapter-option', 'virtType=qemu');
    expect(up.code, up.stderr).toBe(0);
    expect(up.json).toMatchObject({ vm, state: 'running' });
    expect(await virsh('domstate', vm)).toBe('running');

    // The watchdog of the agent's session: a crash is seen and the VM started again.
    const first = await qemuPid();
    process.kill(first, 'SIGKILL');
    const second = await until('the watchdog to start QEMU again', async () => {
      const pid = await qemuPid();
      return pid !== first && (await virsh('domstate', vm)) === 'running' ? pid : undefined;
    });
    const restarted = await until('the watchdog.restarted event', async () => {
      const r = await tandem('events', '--type', 'watchdog.restarted', '-w', name);
      return Array.isArray(r.json?.events) && r.json.events.length > 0 ? r.json.events : undefined;
    });
    expect(restarted[0]).toMatchObject({ workspace: name, type: 'watchdog.restarted' });
    const status = await until('the session back to running', async () => {
      const s = await tandem('agent', 'status');
      return s.json?.sessions?.[0]?.state === 'running' ? s.json : undefined;
    });
    expect(status).toMatchObject({ running: true, attached: 1 });

    // The agent dies and comes back: it finds the VM as it runs and leaves it alone.
    await killAgent();
    await startAgent();
    const again = await tandem('agent', 'status');
    expect(again.json).toMatchObject({ running: true, attached: 1 });
    expect(again.json.sessions).toEqual([expect.objectContaining({ workspace: name, state: 'running' })]);
    expect(await qemuPid()).toBe(second);
    expect(await virsh('domstate', vm)).toBe('running');

    // The VM now holds a suspended session of another host user (as that user's agent records
    // it): starting it is refused until this user confirms, then that session is powered off.
    expect((await tandem('suspend', name)).json.state).toBe('suspended');
    await libvirtOwnership().claim(vm, 4242);
    const refused = await tandem('resume', name);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/another user \(uid 4242\)/);
    expect(await virsh('domstate', vm)).toBe('paused');
    const taken = await tandem('resume', name, '--take-over');
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.json.state).toBe('running');
    expect(await qemuPid()).not.toBe(second); // powered off and started afresh
    expect(await libvirtOwnership().owner(vm)).toBe(process.getuid!());
    const takeovers = await tandem('events', '--type', 'session.takeover', '-w', name);
    expect(takeovers.json.events.map((e: { data: { confirmed: boolean } }) => e.data.confirmed)).toEqual([false, true]);

    const stop = await tandem('stop', name, '--force');
    expect(stop.code, stop.stderr).toBe(0);
    expect(await virsh('domstate', vm)).toBe('shut off');
    expect((await tandem('down', name)).code).toBe(0);
  }, 600_000);
});
