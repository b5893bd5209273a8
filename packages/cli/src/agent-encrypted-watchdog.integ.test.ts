// The watchdog of `tandem agent run` restarting an encrypted VM on a real libvirtd with QEMU,
// every piece a real process. The workspace is made the way an administrator and a device make
// one (keys, pack --encrypt, push, seal, pull --envelope into a LUKS qcow2), started with
// `tandem up` through the agent, which releases the disk key itself from the state directory's
// envelope. QEMU is killed: the watchdog releases the key again (the envelope and its lease
// checked again), restarts the VM and wipes the key. With the envelope's lease ended, the next
// restart is refused: `watchdog.failed` and `watchdog.gave-up` name the lease and the VM stays
// down. Then the key-leak search: no form of the data key or the disk key in the argv or
// environment of any tool run or process sampled during the starts, the agent's log, the
// commands' output, the events, libvirt's log of the VM, or any file of the flow.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diskKeyFor } from '@tandem/core';
import { DataKey } from '@tandem/core/crypto';
import { integrationGate } from '@tandem/core/testing';
import { startAgentProcess, type AgentProcess } from './commands/agent-process.test-helper.js';
import { filesUnder, keyLeaks, recordingShims, sampleProcesses } from './key-leak.test-helper.js';
import {
  QEMU_URI,
  followEvents,
  purgeVm,
  tandemProcess,
  until,
  virsh,
  type EventFollower,
  type TandemProcessRun,
} from './libvirt-cli.test-helper.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;

const gate = await integrationGate(
  'libvirt/QEMU with qemu-nbd (the agent watchdog on an encrypted workspace)',
  async () => {
    try {
      await run('virsh', ['-c', QEMU_URI, 'version', '--daemon']);
      await run('qemu-img', ['--version']);
      await run('qemu-nbd', ['--version']);
      await readFile(fileURLToPath(new URL('../dist/bin.js', import.meta.url)));
    } catch (err) {
      return `virsh cannot reach libvirtd at ${QEMU_URI}, qemu-img/qemu-nbd is missing or the CLI is not built (${String((err as Error).message).trim()})`;
    }
    return null;
  },
  'as root, install libvirt-daemon-system, libvirt-clients, qemu-system-x86 and qemu-utils, start virtlogd and libvirtd, and build with npx tsc -b (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('the agent watchdog on an encrypted workspace (qemu:///system)', () => {
  const name = `agent-enc-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let dir: string;
  let path: string | undefined;
  let agent: AgentProcess | undefined;
  let follow: EventFollower | undefined;
  const outputs: string[] = [];

  const state = (): string => join(dir, 'state');
  const argvLog = (): string => join(dir, 'argv.log');
  const tandem = async (...args: string[]): Promise<TandemProcessRun> => {
    const r = await tandemProcess(state(), args);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const step = async (...args: string[]): Promise<TandemProcessRun['json']> => {
    const r = await tandem(...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };
  const qemuPid = async (): Promise<number> => Number((await readFile(`/run/libvirt/qemu/${vm}.pid`, 'utf8')).trim());

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-agent-enc-'));
    await chmod(dir, 0o755); // QEMU runs as libvirt-qemu and must reach the image
    const shims = join(dir, 'shims');
    await mkdir(shims);
    await recordingShims(shims, argvLog());
    // Every tandem process and the agent (this file's own worker) run their tools through the shims.
    path = process.env['PATH'];
    process.env['PATH'] = `${shims}:${path ?? ''}`;
  });

  afterAll(async () => {
    await follow?.stop();
    await agent?.kill();
    if (path !== undefined) process.env['PATH'] = path;
    await purgeVm(vm);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restarts a killed encrypted VM with its key released again, refuses once the lease ended, and leaks no key', async () => {
    // The administrator's side and the pull, as in encrypted-up.integ.test.ts.
    const admin = join(dir, 'admin');
    const install = join(dir, 'install');
    const repo = join(dir, 'repo');
    const repoKeys = join(admin, 'repo-keys');
    const ws = join(dir, 'ws');
    await mkdir(join(ws, 'images'), { recursive: true });
    const disk = Buffer.alloc(16 * MIB);
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
        '',
      ].join('\n'),
    );
    await mkdir(admin, { recursive: true, mode: 0o700 });
    const keyFile = join(admin, 'image.key');
    const authority = join(admin, 'authority.pem');
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
    const seal = async (out: string, ...lease: string[]): Promise<string> => {
      await step(
        'keys',
        'seal',
        '--key',
        keyFile,
        '--authority-key',
        authority,
        '--device',
        device,
        ...lease,
        '--out',
        out,
      );
      return out;
    };
    const envelope = await seal(join(dir, 'image.envelope'), '--not-after', 'P1D');
    const expired = await seal(
      join(dir, 'expired.envelope'),
      '--not-before',
      '2020-01-01T00:00:00Z',
      '--not-after',
      '2020-01-15T00:00:00Z',
    );
    const pull = await tandem(
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
    expect(pull.code, pull.stderr).toBe(0);
    // JSON lines of progress, then the result as one document.
    const lines = pull.stdout.trimEnd().split('\n');
    const workspaceFile = (JSON.parse(lines.slice(lines.lastIndexOf('{')).join('\n')) as { workspaceFile: string })
      .workspaceFile;
    // The agent releases the key from the state directory's envelope (the CLI sends none).
    await mkdir(join(state(), 'envelopes'), { recursive: true });
    const kept = join(state(), 'envelopes', `${name}.envelope`);
    await copyFile(envelope, kept);

    agent = await startAgentProcess(state());
    follow = followEvents(state(), name);
    const sampler = sampleProcesses();
    let seen: Awaited<ReturnType<ReturnType<typeof sampleProcesses>['stop']>>;
    try {
      const up = await tandem('up', workspaceFile, '--adapter', 'libvirt', '--adapter-option', 'virtType=qemu');
      expect(up.code, up.stderr).toBe(0);
      expect(up.json).toMatchObject({ vm, adapter: 'libvirt', state: 'running' });
      const status = await step('agent', 'status');
      expect(status.sessions).toEqual([expect.objectContaining({ workspace: name, state: 'running', attached: true })]);

      // QEMU dies: the watchdog releases the key again and the VM runs again.
      const first = await qemuPid();
      process.kill(first, 'SIGKILL');
      const restarted = await follow.next('watchdog.restarted');
      expect(restarted).toMatchObject({ workspace: name, data: { vm, attempt: 1 } });
      const second = await until('QEMU started again', async () => {
        const pid = await qemuPid();
        return pid !== first && (await virsh('domstate', vm)) === 'running' ? pid : undefined;
      });
      expect(second).not.toBe(first);
      expect(follow.types('watchdog.')).toEqual([
        'watchdog.detected',
        'watchdog.scheduled',
        'watchdog.restart',
        'watchdog.restarted',
      ]);
      await until('the agent to record the session running', async () => {
        const s = await step('agent', 'status');
        return s.sessions?.[0]?.state === 'running' ? true : undefined;
      });
    } finally {
      seen = await sampler.stop();
    }
    // The disk secret of each start was ephemeral and is gone.
    expect(await virsh('secret-list')).not.toContain(vm);

    // The envelope's lease has ended (an administrator's shorter one replaced it): the next
    // restart is refused, naming the lease, and the VM is left down for the user to see.
    await copyFile(expired, kept);
    process.kill(await qemuPid(), 'SIGKILL');
    const gaveUp = await follow.next('watchdog.gave-up');
    const failed = await follow.next('watchdog.failed');
    // The second restart within the watchdog's window: attempt 2.
    expect(failed.data).toMatchObject({ vm, attempt: 2, code: 'TANDEM_LEASE', retryable: false });
    expect(failed.data.message).toMatch(
      /disk key was not released for the restart.*offline lease.*ended at 2020-01-15/s,
    );
    expect(gaveUp.data.reason).toMatch(/disk key was refused for the restart: The offline lease.*ended at 2020-01-15/s);
    expect(follow.types('watchdog.').slice(4)).toEqual([
      'watchdog.detected',
      'watchdog.scheduled',
      'watchdog.restart',
      'watchdog.failed',
      'watchdog.gave-up',
    ]);
    expect(await virsh('domstate', vm)).toMatch(/^shut off/);
    const down = await until('the agent to record the session crashed', async () => {
      const s = await step('agent', 'status');
      return s.sessions?.[0]?.state === 'crashed' ? s : undefined;
    });
    expect(down).toMatchObject({ running: true, attached: 1 });

    // The key-leak search.
    const events = await tandem('events', '-w', name);
    expect(events.code, events.stderr).toBe(0);
    const keyText = JSON.parse(await readFile(keyFile, 'utf8')) as { key: string };
    const dataKeyBytes = Buffer.from(keyText.key, 'base64url');
    using dataKey = new DataKey(dataKeyBytes);
    const diskKey = diskKeyFor(dataKey);
    const keys = [dataKeyBytes, diskKey];
    // The search finds what it looks for: the administrator's key file holds the data key.
    expect(await keyLeaks(keys, { texts: [['the key file', keyText.key]], files: [keyFile] })).toEqual([
      'the key file',
      keyFile,
    ]);
    const recorded = await readFile(argvLog(), 'utf8');
    // The recording worked: the shims saw the secret hand-overs, the sampler saw QEMU run.
    expect(recorded.match(/secret-set-value/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect([...seen.cmdlines].some((c) => c.includes('qemu-system') && c.includes(vm))).toBe(true);
    const texts: [string, string][] = [
      ['argv and environment of every tool run', recorded],
      ['argv of the processes sampled during the starts', [...seen.cmdlines].join('\n')],
      ['environment of the processes sampled during the starts', [...seen.environs].join('\n')],
      ["the agent's log (its stderr)", agent.stderr()],
      ["the commands' output", outputs.join('\n')],
      ['the events, followed live', JSON.stringify(follow.events)],
      ['the event store (tandem events)', JSON.stringify(events.json)],
      ["libvirt's log of the VM", await readFile(`/var/log/libvirt/qemu/${vm}.log`, 'utf8').catch(() => '')],
    ];
    const files = [
      ...(await filesUnder(state())),
      ...(await filesUnder(install)),
      ...(await filesUnder(repo)),
      ...(await filesUnder('/etc/libvirt/secrets')),
      ...(await filesUnder('/run/libvirt/secrets')),
    ];
    expect(files.some((f) => f.endsWith('.sqlite'))).toBe(true);
    expect(await keyLeaks(keys, { texts, files })).toEqual([]);
    diskKey.fill(0);
    dataKeyBytes.fill(0);

    expect((await tandem('down', name)).code).toBe(0);
  }, 900_000); // a dozen tandem processes, a pull through qemu-nbd and three QEMU starts, on a busy machine
});
