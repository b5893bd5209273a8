import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '@tandem/cli';
import { keysDirOf, openEndpointKeys } from '@tandem/core/crypto';
import { CredentialCache } from '@tandem/core/identity';
import { AgentProcess, ChannelRelay } from './relay.test-helper.js';

// `tandem guest sign-in` end to end on the mock hypervisor whose guest channel reaches a real
// agent process (as cli.test.ts): the password is checked against the device's cached verifier
// (what tandem login keeps) before it goes to the guest; this agent's scratch /etc has no account,
// so the guest refuses, in its own words, and the password appears in no stored event.
const ADAPTER = fileURLToPath(new URL('./relay-adapter.test-helper.ts', import.meta.url));
const PASSWORD = 'ana-cached-Passw0rd';

let dir: string;
let relay: ChannelRelay;
let agent: AgentProcess;
let out: string[] = [];
let err: string[] = [];

async function tandem(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  out = [];
  err = [];
  const code = await runCli(['--state-dir', join(dir, 'state'), ...args]);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

async function up(guestSignIn: boolean): Promise<void> {
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
  guestSignIn: ${guestSignIn}
`,
  );
  const r = await tandem(
    'up',
    join(dir, 'erp.yaml'),
    '--adapter',
    ADAPTER,
    '--adapter-option',
    `socket=${join(relay.dir, 'host.sock')}`,
    '--adapter-option',
    `stateFile=${join(dir, 'mock.json')}`,
  );
  expect(r.code, r.stderr).toBe(0);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-guest-sign-in-'));
  relay = await new ChannelRelay().start();
  agent = new AgentProcess(relay).start();
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => (err.push(String(c)), true));
  // What tandem login leaves: the verifier of ana's password in the credential cache.
  const stateDir = join(dir, 'state');
  const { trustedTime } = await openEndpointKeys(keysDirOf(stateDir));
  const cache = await CredentialCache.open({ stateDir, trustedTime });
  await cache.remember('ana', PASSWORD, {
    user: { name: 'ana', dn: 'uid=ana', state: { disabled: false, locked: false, expired: false } },
    groups: [],
  });
});

afterEach(async () => {
  vi.restoreAllMocks();
  delete process.env['TANDEM_PASSWORD'];
  await agent.kill();
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Every byte the state directory holds (the event store, the records, the cache). */
function stateBytes(): Buffer {
  const chunks: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) chunks.push(readFileSync(p));
    }
  };
  walk(join(dir, 'state'));
  return Buffer.concat(chunks);
}

describe('tandem guest sign-in', () => {
  it('is refused when the workspace does not ask for it', async () => {
    await up(false);
    process.env['TANDEM_PASSWORD'] = PASSWORD;
    const r = await tandem('guest', 'sign-in', '--user', 'ana');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.guestSignIn: true');
  });

  it('a password Tandem would refuse never reaches the guest', async () => {
    await up(true);
    process.env['TANDEM_PASSWORD'] = 'not-it';
    const r = await tandem('--json', 'guest', 'sign-in', '--user', 'ana');
    expect(r.code).not.toBe(0);
    expect(agent.log).not.toContain('sign-in of ana');
    const events = await tandem('--json', 'events', '-t', 'guest.sign-in-failed');
    expect(JSON.parse(events.stdout)).toEqual({ events: [] });
  });

  it("the cached user's password goes to the agent, which answers in the guest's words; it is stored nowhere", async () => {
    await up(true);
    process.env['TANDEM_PASSWORD'] = PASSWORD;
    const r = await tandem('guest', 'sign-in', '--user', 'ana', '--timeout', 'PT60S');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`no account "ana" in the guest's /etc/passwd`);
    expect(agent.log).toContain('sign-in of ana failed');
    const events = await tandem('--json', 'events', '-t', 'guest.sign-in-failed');
    expect((JSON.parse(events.stdout) as { events: Array<{ data: unknown }> }).events[0]?.data).toMatchObject({
      user: 'ana',
    });
    expect(stateBytes().includes(Buffer.from(PASSWORD))).toBe(false);
    expect(agent.log).not.toContain(PASSWORD);
  });
});
