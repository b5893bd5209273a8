// `tandem apps launch` (what the published launchers run) with the agent running: the session is
// brought up through the agent, so its checks apply. A locked session is not unlocked by the
// launch without the user's password (the agent checks it, as for `tandem unlock`); a stopped one
// is started by the agent, and the app then launches.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.test-helper.js';
import { startAgentProcess, type AgentProcess } from './commands/agent-process.test-helper.js';

let dir: string;
let agentProcess: AgentProcess | undefined;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-agent-apps-'));
});
afterEach(async () => {
  await agentProcess?.kill();
  agentProcess = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('tandem apps launch with the agent running', () => {
  it('refuses to unlock a locked session without the password, and has the agent start a stopped one', async () => {
    mkdirSync(join(dir, 'ws'));
    writeFileSync(join(dir, 'ws', 'disk.img'), Buffer.alloc(1 << 20));
    const file = join(dir, 'ws', 'tandem.workspace.yaml');
    writeFileSync(
      file,
      'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 512 } }\n  guestOs: linux\n  display: { mode: seamless }\n  publishedApps: [{ id: notes, name: Notes, command: /usr/bin/notes }]\n',
    );
    agentProcess = await startAgentProcess(join(dir, 'state'));
    expect((await tandem('up', file, '--adapter', 'mock')).code).toBe(0);
    expect((await tandem('--json', 'lock')).json).toMatchObject({ state: 'locked' });

    const locked = await tandem('apps', 'launch', 'notes', '--no-wait');
    expect(locked.code).not.toBe(0);
    expect(locked.stderr).toContain('--password-stdin');
    expect((await tandem('--json', 'status')).json.sessions).toEqual([
      expect.objectContaining({ workspace: 'erp', state: 'locked' }),
    ]);

    expect((await tandem('stop', '--force')).code).toBe(0);
    const started = await tandem('apps', 'launch', 'notes', '--no-wait');
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/notes: xpra: mock-seamless/);
    // The agent started it (its checks first), not the launch in-process.
    expect(started.stdout).not.toMatch(/^session started$/m);
    const transitions = await tandem('--json', 'events', '--type', 'session.transition', '-w', 'erp');
    expect(transitions.json.events.at(-1).data).toMatchObject({ to: 'running' });
  }, 300_000);
});
