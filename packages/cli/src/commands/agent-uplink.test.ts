// The host agent of a device that signed in with `tandem login` ships its events to that
// management server on its own: no flag, signed by the device key, each event stored once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDeployment, type Deployment } from '@tandem/server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliHarness, erpWorkspace } from '../cli-harness.test-helper.js';
import { startAgentProcess, type AgentProcess } from './agent-process.test-helper.js';

let root: string;
let deployment: Deployment | undefined;
let agent: AgentProcess | undefined;
const tandem = cliHarness(() => join(root, 'endpoint'));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-agent-uplink-'));
});
afterAll(async () => {
  delete process.env['TANDEM_PASSWORD'];
  await agent?.kill();
  await deployment?.close();
  await rm(root, { recursive: true, force: true });
});

it('ships the events of the agent to the server of tandem login, each once', { timeout: 180_000 }, async () => {
  const serverDir = join(root, 'server');
  expect((await tandem('server', 'init', '--dir', serverDir, '--json')).code).toBe(0);
  process.env['TANDEM_PASSWORD'] = 'ana-secret-1';
  expect((await tandem('admin', 'user', 'add', 'ana', '--dir', serverDir, '--json')).code).toBe(0);
  deployment = await openDeployment(serverDir);
  const { url } = await deployment.serve({ host: '127.0.0.1', port: 0 });
  const login = await tandem('login', url, '--user', 'ana', '--ca', join(serverDir, 'tls', 'server.crt'), '--json');
  expect(login.code).toBe(0);

  agent = await startAgentProcess(join(root, 'endpoint'));
  expect(agent.stderr()).toContain(`events go to ${url}`);
  const file = erpWorkspace(join(root, 'ws'), '1.0.0', Buffer.alloc(1 << 20));
  const up = await tandem('up', file, '--adapter', 'mock');
  expect(up.code).toBe(0);
  expect(up.stdout).toContain('through the agent');
  expect((await tandem('suspend')).code).toBe(0);

  // The agent ships on its own schedule: wait for the suspend to arrive.
  type Row = { event: { id: string; type: string; workspace: string | null; data: { to?: string } } };
  let rows: Row[] = [];
  for (let i = 0; i < 600 && !rows.some((r) => r.event.data.to === 'suspended'); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 200));
    const report = await tandem(
      'admin',
      'report',
      'events',
      '--type',
      'session.transition',
      '--dir',
      serverDir,
      '--json',
    );
    rows = (report.json as { events: Row[] }).events;
  }
  const erp = rows.filter((r) => r.event.workspace === 'erp');
  expect(erp.map((r) => r.event.data.to)).toEqual(expect.arrayContaining(['starting', 'running', 'suspended']));
  expect(new Set(erp.map((r) => r.event.id)).size).toBe(erp.length);
});
