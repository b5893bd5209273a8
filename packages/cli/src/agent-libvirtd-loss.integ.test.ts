// libvirtd going away under the host agent, every piece a real process: `tandem agent run` owns
// a session that `tandem up` started on a private libvirtd (its own, run as `nobody` in session
// mode, so stopping it disturbs no other test: the shared qemu:///system daemon is never
// stopped). libvirtd is killed mid-session: the agent reports `hypervisor.lost` (seen through
// `tandem events --follow`), keeps the session, and the VM runs on. libvirtd comes back: the
// agent reports `hypervisor.restored` with the VM's state read again, the same QEMU still running.
// Then QEMU dies while libvirtd is away: on libvirtd's return the watchdog restarts it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { alive, privateLibvirtd, privateLibvirtdProblem, type PrivateLibvirtd } from '@tandem/adapter-libvirt/testing';
import { startAgentProcess, type AgentProcess } from './commands/agent-process.test-helper.js';
import { followEvents, smallWorkspace, tandemProcess, until, type EventFollower } from './libvirt-cli.test-helper.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'a private libvirtd with QEMU (tandem agent when libvirtd goes away)',
  async () => {
    try {
      await run('qemu-img', ['--version']);
      await run('qemu-system-x86_64', ['--version']);
      await readFile(fileURLToPath(new URL('../dist/bin.js', import.meta.url)));
    } catch (err) {
      return `qemu-img or qemu-system-x86_64 is missing or the CLI is not built (${String((err as Error).message).trim()})`;
    }
    return privateLibvirtdProblem();
  },
  'as root, install libvirt-daemon-system, libvirt-clients, qemu-system-x86, qemu-utils and util-linux, and build with npx tsc -b (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('tandem agent when libvirtd goes away (a private libvirtd)', () => {
  const name = `agent-lvd-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let daemon: PrivateLibvirtd;
  let dir: string;
  let ws: string;
  let agent: AgentProcess | undefined;
  let follow: EventFollower | undefined;

  const state = (): string => join(dir, 'state');
  const tandem = (...args: string[]): ReturnType<typeof tandemProcess> => tandemProcess(state(), args);
  /** `tandem agent status`: the agent's view of its sessions. */
  const agentStatus = async (): Promise<{
    running: boolean;
    attached: number;
    sessions: { workspace: string; state: string; attached: boolean }[];
  }> => {
    const r = await tandem('agent', 'status');
    expect(r.code, r.stderr).toBe(0);
    return r.json;
  };

  beforeAll(async () => {
    daemon = await privateLibvirtd();
    await daemon.start();
    dir = await mkdtemp(join(tmpdir(), 'tandem-agent-lvd-'));
    // The image lives where the daemon's QEMU (user nobody) may read and write it.
    const images = join(daemon.images, name);
    await mkdir(images, { mode: 0o755 });
    ws = await smallWorkspace(images, name);
    await daemon.own(join(images, 'disk.qcow2'));
  }, 120_000);

  afterAll(async () => {
    await follow?.stop();
    await agent?.kill();
    await daemon?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('reports libvirtd lost and restored through the agent, keeps the session, and restarts a QEMU that died meanwhile', async () => {
    agent = await startAgentProcess(state());
    follow = followEvents(state(), name);
    const up = await tandem(
      'up',
      ws,
      '--adapter',
      'libvirt',
      '--adapter-option',
      `uri=${daemon.uri}`,
      '--adapter-option',
      'virtType=qemu',
      // A lost libvirtd is noticed within a second or two, and looked for again often.
      '--adapter-option',
      'keepaliveMs=500',
      '--adapter-option',
      'reconnectMs=250',
      '--adapter-option',
      'maxReconnectMs=1000',
    );
    expect(up.code, up.stderr).toBe(0);
    expect(up.json).toMatchObject({ vm, state: 'running' });
    // The agent owns the session (tandem up went through its socket).
    expect((await agentStatus()).sessions).toEqual([
      expect.objectContaining({ workspace: name, state: 'running', attached: true }),
    ]);
    const pid = await daemon.qemuPid(vm);

    // libvirtd dies: the agent says so, keeps the session, and QEMU runs on without it.
    await daemon.kill();
    const lost = await follow.next('hypervisor.lost');
    expect(lost).toMatchObject({ workspace: name, data: { adapter: 'libvirt', vm } });
    const away = await agentStatus();
    expect(away).toMatchObject({ running: true, attached: 1 });
    expect(away.sessions).toEqual([expect.objectContaining({ workspace: name, attached: true })]);
    expect(away.sessions[0]!.state).toMatch(/^unknown \(/); // it cannot be read while libvirtd is away
    expect(alive(pid)).toBe(true);

    // libvirtd returns: the state is read again, and the VM is the one that ran all along.
    await daemon.start();
    const restored = await follow.next('hypervisor.restored');
    expect(restored).toMatchObject({ workspace: name, data: { adapter: 'libvirt', vm, state: 'running' } });
    const back = await until('the agent to read the session as running', async () => {
      const s = await agentStatus();
      return s.sessions[0]?.state === 'running' ? s : undefined;
    });
    expect(back).toMatchObject({ running: true, attached: 1 });
    expect(await daemon.qemuPid(vm)).toBe(pid);
    expect(follow.types('watchdog.')).toEqual([]);

    // libvirtd goes again, and QEMU dies while it is away: on its return the watchdog restarts it.
    await daemon.kill();
    await follow.next('hypervisor.lost', 2);
    process.kill(pid, 'SIGKILL');
    await until('QEMU to be gone', async () => (alive(pid) ? undefined : true));
    await daemon.start();
    const restarted = await follow.next('watchdog.restarted', 1);
    expect(restarted).toMatchObject({ workspace: name, data: { vm, attempt: 1 } });
    await follow.next('hypervisor.restored', 2);
    const steps = follow.types('hypervisor.', 'watchdog.');
    // One detection and one restart; the return was reported once per loss.
    expect(steps.filter((t) => t === 'hypervisor.lost')).toHaveLength(2);
    expect(steps.filter((t) => t === 'hypervisor.restored')).toHaveLength(2);
    const after = steps.slice(steps.lastIndexOf('hypervisor.lost') + 1).filter((t) => t !== 'hypervisor.restored');
    expect(after).toEqual(['watchdog.detected', 'watchdog.scheduled', 'watchdog.restart', 'watchdog.restarted']);
    const again = await until('the agent to read the restarted session as running', async () => {
      const s = await agentStatus();
      return s.sessions[0]?.state === 'running' ? s : undefined;
    });
    expect(again).toMatchObject({ running: true, attached: 1 });
    const second = await daemon.qemuPid(vm);
    expect(second).not.toBe(pid);
    expect(alive(second)).toBe(true);

    const stop = await tandem('stop', name, '--force');
    expect(stop.code, stop.stderr).toBe(0);
    expect((await tandem('down', name)).code).toBe(0);
  }, 600_000);
});
