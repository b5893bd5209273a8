// `tandem agent run` as the systemd unit runs it: a process of its own, found and driven by the
// other tandem commands through its socket, stopped by SIGTERM with the VMs left running.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliHarness, erpWorkspace } from '../cli-harness.test-helper.js';

const BIN = fileURLToPath(new URL('../bin.ts', import.meta.url));
let dir: string;
let child: ChildProcess | undefined;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-agent-run-'));
});
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
  child = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function agentRun(): Promise<{ exited: Promise<number | null>; stderr: () => string }> {
  const env = { ...process.env };
  delete env['DBUS_SESSION_BUS_ADDRESS'];
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tandem/source',
      BIN,
      '--state-dir',
      join(dir, 'state'),
      'agent',
      'run',
      '--no-desktop',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let err = '';
  const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child!.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('listening on')) resolve({ exited, stderr: () => err });
    });
    void exited.then((code) => reject(new Error(`tandem agent run exited (${code}): ${err}`)));
  });
}

describe('tandem agent run', () => {
  it('serves the other commands until SIGTERM, which leaves the VM running', async () => {
    const agent = await agentRun();
    expect(agent.stderr()).toContain(join(dir, 'state', 'agent.sock'));
    const file = erpWorkspace(join(dir, 'ws'), '1.0.0', Buffer.alloc(1 << 20));
    const up = await tandem('up', file, '--adapter', 'mock');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('through the agent');
    const status = await tandem('--json', 'agent', 'status');
    expect(status.json).toMatchObject({ running: true, attached: 1, queue: null });
    expect(status.json.sessions).toEqual([expect.objectContaining({ workspace: 'erp', state: 'running' })]);
    // Without a desktop to check a password against the agent's default check is unix_chkpwd:
    // an unlock without one is refused with the documented message.
    expect((await tandem('--json', 'lock')).json).toMatchObject({ state: 'locked' });
    const unlock = await tandem('unlock');
    expect(unlock.code).not.toBe(0);
    expect(unlock.stderr).toContain('--password-stdin');

    child!.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(existsSync(join(dir, 'state', 'agent.sock'))).toBe(false);
    // In-process again, and the VM kept running (locked) through the agent's stop.
    const after = await tandem('status');
    expect(after.stdout).toMatch(/^erp\tlocked\tmock/m);
    expect(after.stderr).toContain('no tandem agent runs');
  });
});
