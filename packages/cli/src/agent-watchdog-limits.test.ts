// `tandem agent run --watchdog-restarts N --watchdog-window S`: the watchdog's budget is set
// where the agent runs. The agent re-attaches (after its own SIGKILL) to a VM that crashed while
// it was away and handles it at once: with a budget of 0 it gives up instead of restarting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StateDir } from './state.js';
import { MockAdapter } from '@tandem/core/testing';
import { cliHarness, erpWorkspace } from './cli-harness.test-helper.js';
import { startAgentProcess, type AgentProcess } from './commands/agent-process.test-helper.js';

let dir: string;
let agentProcess: AgentProcess | undefined;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-agent-watchdog-'));
});
afterEach(async () => {
  await agentProcess?.kill();
  agentProcess = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('tandem agent run: the watchdog limits', () => {
  it('refuses a budget that is not a whole number, naming the flag', async () => {
    const bad = await tandem('agent', 'run', '--no-desktop', '--watchdog-restarts', 'three');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--watchdog-restarts "three" is not a whole number of 0 or more/);
    const window = await tandem('agent', 'run', '--no-desktop', '--watchdog-window', '0');
    expect(window.code).not.toBe(0);
    expect(window.stderr).toMatch(/--watchdog-window "0" is not a whole number of 1 or more/);
  });

  it.each([
    ['the default budget restarts it', [], 'watchdog.restarted'],
    [
      '--watchdog-restarts 0 gives up at once',
      ['--watchdog-restarts', '0', '--watchdog-window', '3600'],
      'watchdog.gave-up',
    ],
  ] as const)(
    'a VM found crashed when the agent starts: %s',
    async (_, flags, outcome) => {
      const state = join(dir, 'state');
      agentProcess = await startAgentProcess(state, flags);
      const up = await tandem(
        '--json',
        'up',
        erpWorkspace(join(dir, 'ws'), '1.0.0', Buffer.alloc(1 << 20)),
        '--adapter',
        'mock',
      );
      expect(up.code, up.stderr).toBe(0);
      await agentProcess.kill();
      // The VM's process dies while no agent runs (the mock hypervisor's state outlives processes).
      new MockAdapter({ stateFile: new StateDir(state).mockStateFile }).crash(up.json.vm);
      agentProcess = await startAgentProcess(state, flags);
      const types = async (): Promise<string[]> =>
        (await tandem('--json', 'events', '-w', 'erp')).json.events
          .map((e: { type: string }) => e.type)
          .filter((t: string) => t.startsWith('watchdog.'));
      await vi.waitFor(async () => expect(await types()).toContain(outcome), { timeout: 180_000, interval: 500 });
      const seen = await types();
      if (outcome === 'watchdog.gave-up') {
        expect(seen).not.toContain('watchdog.restart');
        const gaveUp = await tandem('--json', 'events', '--type', 'watchdog.gave-up', '-w', 'erp');
        expect(gaveUp.json.events[0].data).toMatchObject({ restarts: 0, windowMs: 3_600_000 });
      } else expect(seen).not.toContain('watchdog.gave-up');
    },
    300_000,
  );
});
