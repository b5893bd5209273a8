import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '@tandem/cli';
import { AgentProcess, ChannelRelay } from './relay.test-helper.js';

// `tandem guest ...` end to end: a session made by `tandem up` on a mock hypervisor whose guest
// channel reaches a real agent process (relay-adapter.test-helper.ts), as libvirt's does.
const ADAPTER = fileURLToPath(new URL('./relay-adapter.test-helper.ts', import.meta.url));

let dir: string;
let relay: ChannelRelay;
let agent: AgentProcess;
let out: string[] = [];
let err: string[] = [];

async function tandem(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: unknown }> {
  out = [];
  err = [];
  const code = await runCli(['--state-dir', join(dir, 'state'), ...args]);
  const stdout = out.join('');
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr: err.join(''), json };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-guest-cli-'));
  relay = await new ChannelRelay().start();
  agent = new AgentProcess(relay).start();
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => (err.push(String(c)), true));
  writeFileSync(
    join(dir, 'erp.yaml'),
    `apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: none }
  firstTimeSetup: { computerName: "erp-{random4}" }
`,
  );
  const up = await tandem(
    'up',
    join(dir, 'erp.yaml'),
    '--adapter',
    ADAPTER,
    '--adapter-option',
    `socket=${join(relay.dir, 'host.sock')}`,
    '--adapter-option',
    `stateFile=${join(dir, 'mock.json')}`,
  );
  expect(up.code, up.stderr).toBe(0);
});

afterEach(async () => {
  vi.restoreAllMocks();
  await agent.kill();
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tandem guest', () => {
  it('status, info and apps answer with --json', async () => {
    const status = await tandem('--json', 'guest', 'status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.json).toMatchObject({
      reachable: true,
      agent: { software: '@tandem/guest-agent', protocol: 1 },
      setup: null,
    });
    writeFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'guest-cli\n');
    const info = await tandem('guest', 'info', '--json');
    expect(info.json).toMatchObject({ hostname: 'guest-cli', os: { family: 'linux' } });
    const text = await tandem('guest', 'info');
    expect(text.stdout).toMatch(/hostname guest-cli/);
    const apps = await tandem('--json', 'guest', 'apps');
    expect(apps.code, apps.stderr).toBe(0);
    expect(Array.isArray((apps.json as { apps: unknown[] }).apps)).toBe(true);
  });

  it('setup runs once: the computer name reaches the guest, a second run says already done', async () => {
    const first = await tandem('--json', 'guest', 'setup');
    expect(first.code, first.stderr).toBe(0);
    const r = first.json as { status: string; record: { computerName: string } };
    expect(r.status).toBe('done');
    expect(readFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'utf8').trim()).toBe(r.record.computerName);
    const again = await tandem('guest', 'setup');
    expect(again.stdout).toMatch(/already done/);
    const status = await tandem('--json', 'guest', 'status');
    expect(status.json).toMatchObject({ setup: { computerName: r.record.computerName } });
  });

  it('an agent that does not answer is reported as unreachable, exit code 1', async () => {
    await agent.kill();
    const status = await tandem('--json', 'guest', 'status', '--timeout', 'PT2S');
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ reachable: false });
    const info = await tandem('guest', 'info', '--timeout', 'PT2S');
    expect(info.code).not.toBe(0);
    expect(info.stderr).toMatch(/No guest agent answered/);
  });
});
