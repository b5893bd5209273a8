import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent, type RunningAgent } from '@tandem/agent';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openAdapter } from '../adapters.js';
import { cliHarness, erpWorkspace } from '../cli-harness.test-helper.js';
import { StateDir } from '../state.js';

let dir: string;
let running: RunningAgent | undefined;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-cli-agent-'));
});
afterEach(async () => {
  await running?.stop();
  running = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** The agent for the harness's state directory, in this process, on the CLI's adapters. */
async function startAgent(): Promise<RunningAgent> {
  const stateDir = join(dir, 'state');
  const state = new StateDir(stateDir);
  running = await runAgent({
    stateDir,
    socketPath: join(stateDir, 'agent.sock'),
    openAdapter: (name, options) => openAdapter(state, name, options),
    version: '0.1.0',
  });
  return running;
}

describe('tandem with an agent', () => {
  it('routes the session commands through the agent, which then owns the session', async () => {
    const agent = await startAgent();
    const file = erpWorkspace(join(dir, 'ws'), '1.0.0', Buffer.alloc(1 << 20));
    const up = await tandem('up', file, '--adapter', 'mock');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('through the agent');
    expect(up.stderr).not.toContain('in-process');
    expect(agent.agent.session('erp')?.state).toBe('running');

    expect((await tandem('--json', 'lock')).json).toMatchObject({ state: 'locked' });
    expect(agent.agent.session('erp')?.state).toBe('locked');
    const status = await tandem('--json', 'status');
    expect(status.json.sessions).toEqual([
      expect.objectContaining({ workspace: 'erp', state: 'locked', adapter: 'mock' }),
    ]);
    expect((await tandem('--json', 'unlock')).json).toMatchObject({ state: 'running' });
    expect((await tandem('--json', 'snapshot', 'create', 's1')).json).toMatchObject({ name: 's1' });
    expect((await tandem('--json', 'snapshot', 'list')).json.snapshots).toEqual([
      expect.objectContaining({ name: 's1' }),
    ]);
    expect((await tandem('--json', 'suspend')).json).toMatchObject({ state: 'suspended' });
    expect((await tandem('--json', 'resume')).json).toMatchObject({ state: 'running' });

    const st = await tandem('--json', 'agent', 'status');
    expect(st.code).toBe(0);
    expect(st.json).toMatchObject({
      running: true,
      version: '0.1.0',
      apiVersion: '1.1',
      sessions: [expect.objectContaining({ workspace: 'erp' })],
    });

    // --follow through the agent: the stored events since a time, then live ones, n of them.
    const follow = await tandem(
      '--json',
      'events',
      '--follow',
      '--since',
      '2000-01-01T00:00:00Z',
      '--type',
      'session.transition',
      '--count',
      '3',
    );
    expect(follow.code).toBe(0);
    const lines = follow.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; workspace: string });
    expect(lines).toHaveLength(3);
    expect(lines.every((e) => e.type === 'session.transition' && e.workspace === 'erp')).toBe(true);

    const down = await tandem('--json', 'down');
    expect(down.json).toMatchObject({ workspace: 'erp', removed: true });
    expect(agent.agent.session('erp')).toBeUndefined();
    expect(new StateDir(join(dir, 'state')).list()).toEqual([]);
  });
});

describe('tandem without an agent', () => {
  it('runs in-process with one note, and agent status says none runs (exit 4)', async () => {
    const file = erpWorkspace(join(dir, 'ws'), '1.0.0', Buffer.alloc(1 << 20));
    const up = await tandem('up', file, '--adapter', 'mock');
    expect(up.code).toBe(0);
    expect(up.stderr.match(/no tandem agent runs/g)).toHaveLength(1);
    const st = await tandem('--json', 'agent', 'status');
    expect(st.code).toBe(4);
    expect(st.json).toMatchObject({ running: false });
    const follow = await tandem('--json', 'events', '--follow', '--since', '2000-01-01T00:00:00Z', '--count', '2');
    expect(follow.stdout.trim().split('\n')).toHaveLength(2);
    // A session made in-process is the agent's once it starts: it re-attaches to the running VM.
    const agent = await startAgent();
    expect(agent.agent.session('erp')?.state).toBe('running');
    expect((await tandem('--json', 'lock')).json).toMatchObject({ state: 'locked' });
  });
});

describe('tandem agent install', () => {
  it('prints the unit with this tandem in ExecStart', async () => {
    const r = await tandem('agent', 'install', '--print');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ExecStart=.*bin\/tandem\.js --state-dir .* agent run$/m);
    expect(r.stdout).toContain('[Install]');
  });

  it('writes the unit under XDG_CONFIG_HOME and says how the agent starts', async () => {
    const old = process.env['XDG_CONFIG_HOME'];
    process.env['XDG_CONFIG_HOME'] = join(dir, 'config');
    try {
      const r = await tandem('--json', 'agent', 'install');
      expect(r.code).toBe(0);
      const unit = join(dir, 'config', 'systemd', 'user', 'tandem-agent.service');
      expect(r.json.unit).toBe(unit);
      expect(existsSync(unit)).toBe(true);
      expect(readFileSync(unit, 'utf8')).toMatch(/^ExecStart=.* agent run$/m);
      expect(typeof r.json.systemd).toBe('boolean');
      if (!r.json.systemd) expect(r.json.reason).toEqual(expect.any(String));
    } finally {
      if (old === undefined) delete process.env['XDG_CONFIG_HOME'];
      else process.env['XDG_CONFIG_HOME'] = old;
    }
  });
});
