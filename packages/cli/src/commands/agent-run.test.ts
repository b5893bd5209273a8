// `tandem agent run` as the systemd unit runs it: a process of its own, found and driven by the
// other tandem commands through its socket, stopped by SIGTERM with the VMs left running.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliHarness, erpWorkspace } from '../cli-harness.test-helper.js';
import { startAgentProcess, type AgentProcess } from './agent-process.test-helper.js';

let dir: string;
let agentProcess: AgentProcess | undefined;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-agent-run-'));
});
afterEach(async () => {
  await agentProcess?.kill();
  agentProcess = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('tandem agent run', () => {
  it('serves the other commands until SIGTERM, which leaves the VM running', async () => {
    const agent = (agentProcess = await startAgentProcess(join(dir, 'state')));
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

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(existsSync(join(dir, 'state', 'agent.sock'))).toBe(false);
    // In-process again, and the VM kept running (locked) through the agent's stop.
    const after = await tandem('status');
    expect(after.stdout).toMatch(/^erp\tlocked\tmock/m);
    expect(after.stderr).toContain('no tandem agent runs');
  });
});
