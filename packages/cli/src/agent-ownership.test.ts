// The another-user rule through `tandem agent run` on VirtualBox and Hyper-V (libvirt's is in
// agent-libvirt.integ.test.ts, on real QEMU): the agent records this host user as the VM's owner
// where every user's agent sees it (VirtualBox extradata, Hyper-V Notes), and a VM another user's
// session left suspended is shut down only after this user confirms (`resume --take-over`),
// never attached silently. Both run against the adapters' fakes (test/fake/VBoxManage and
// test/fake/pwsh, real processes that replay the tools' recorded outputs), reached the way the
// agent reaches them: through the session's --adapter-option values.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hypervOwnership } from '@tandem/adapter-hyperv';
import { FAKE_PWSH, fakeHyperVHome } from '@tandem/adapter-hyperv/testing';
import { virtualboxOwnership } from '@tandem/adapter-virtualbox';
import { FAKE_VBOXMANAGE, fakeVBoxHome } from '@tandem/adapter-virtualbox/testing';
import { cliHarness } from './cli-harness.test-helper.js';
import { startAgentProcess, type AgentProcess } from './commands/agent-process.test-helper.js';

let dir: string;
let agentProcess: AgentProcess | undefined;
const cleanup: (() => void)[] = [];
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-agent-owner-'));
});
afterEach(async () => {
  await agentProcess?.kill();
  agentProcess = undefined;
  for (const c of cleanup.splice(0)) c();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Writes workspace `erp` on an image the fake hypervisor attaches (a VDI beside the file for
 * VirtualBox; for Hyper-V a VHDX path on the Hyper-V host, which is Windows); returns the file.
 */
function workspace(format: 'vdi' | 'vhdx'): string {
  mkdirSync(join(dir, 'ws'), { recursive: true });
  writeFileSync(join(dir, 'ws', `disk.${format}`), `fake ${format}\n`);
  const source = format === 'vhdx' ? `'C:\\Hyper-V\\erp.vhdx'` : './disk.vdi';
  const file = join(dir, 'ws', 'tandem.workspace.yaml');
  writeFileSync(
    file,
    `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ${source}, format: ${format} }\n  hardware: { memory: { fixedMiB: 64 }, cpus: 1 }\n  network: { mode: nat }\n`,
  );
  return file;
}

interface Owners {
  owner(vm: string): Promise<number | undefined>;
  claim(vm: string, uid: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * `tandem up` through the agent records this user as the owner; another user's claim on the
 * suspended VM makes `resume` refuse, and `resume --take-over` power that session off, start the
 * VM afresh and record this user again.
 */
async function anotherUserRule(adapter: string, options: string[], owners: Owners): Promise<void> {
  const uid = process.getuid!();
  agentProcess = await startAgentProcess(join(dir, 'state'));
  const flags = ['--adapter', adapter, ...options.flatMap((o) => ['--adapter-option', o])];
  const up = await tandem('--json', 'up', workspace(adapter === 'virtualbox' ? 'vdi' : 'vhdx'), ...flags);
  expect(up.code, up.stderr).toBe(0);
  expect(up.json).toMatchObject({ state: 'running' });
  const vm = up.json.vm as string;
  expect(await owners.owner(vm)).toBe(uid);

  // The VM now holds a suspended session of another host user, as that user's agent records it.
  const suspended = await tandem('--json', 'suspend', 'erp');
  expect(suspended.json, suspended.stderr).toMatchObject({ state: 'suspended' });
  await owners.claim(vm, 4242);
  const refused = await tandem('resume', 'erp');
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/another user \(uid 4242\)/);
  expect(await owners.owner(vm)).toBe(4242);
  expect((await tandem('--json', 'status')).json.sessions).toEqual([
    expect.objectContaining({ workspace: 'erp', state: 'suspended' }),
  ]);

  const taken = await tandem('--json', 'resume', 'erp', '--take-over');
  expect(taken.code, taken.stderr).toBe(0);
  expect(taken.json).toMatchObject({ state: 'running' });
  expect(await owners.owner(vm)).toBe(uid);
  const takeovers = await tandem('--json', 'events', '--type', 'session.takeover', '-w', 'erp');
  expect(takeovers.json.events.map((e: { data: unknown }) => e.data)).toEqual([
    expect.objectContaining({ previousOwnerUid: 4242, previousState: 'suspended', confirmed: false }),
    expect.objectContaining({ previousOwnerUid: 4242, previousState: 'suspended', confirmed: true }),
  ]);
  // Powered off and started afresh, not resumed: the other user's session was lost, as in MED-V.
  const transitions = await tandem('--json', 'events', '--type', 'session.transition', '-w', 'erp');
  const steps = transitions.json.events.map((e: { data: { operation: string; from: string; to: string } }) => e.data);
  expect(steps).toContainEqual(expect.objectContaining({ operation: 'stop', to: 'stopped' }));
  expect(steps.filter((d: { operation: string }) => d.operation === 'resume')).toEqual([]);

  expect((await tandem('down', 'erp')).code).toBe(0);
}

describe('tandem agent run: the VM of another host user', () => {
  it('on VirtualBox: the owner is in the VM extradata, and a suspended VM of another user is taken over only when confirmed', async () => {
    const home = fakeVBoxHome('7.1');
    cleanup.push(() => home.remove());
    const env = home.env();
    const owners = virtualboxOwnership({ vboxManage: FAKE_VBOXMANAGE, env });
    await anotherUserRule(
      'virtualbox',
      [`vboxManage=${FAKE_VBOXMANAGE}`, ...Object.entries(env).map(([k, v]) => `env.${k}=${v}`), 'pollIntervalMs=100'],
      owners,
    );
    await owners.close();
    expect(home.state().vms).toEqual([]);
    expect(home.unexpected()).toEqual([]);
  }, 600_000);

  it('on Hyper-V: the owner is a line of the VM Notes, and a suspended VM of another user is taken over only when confirmed', async () => {
    const home = fakeHyperVHome('7');
    cleanup.push(() => home.remove());
    const env = home.env();
    const owners = hypervOwnership({ powershell: FAKE_PWSH, env });
    await anotherUserRule(
      'hyperv',
      [`powershell=${FAKE_PWSH}`, ...Object.entries(env).map(([k, v]) => `env.${k}=${v}`)],
      owners,
    );
    await owners.close();
    expect(home.state().vms).toEqual([]);
    expect(home.unexpected()).toEqual([]);
  }, 600_000);
});
