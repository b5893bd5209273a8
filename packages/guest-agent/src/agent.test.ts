import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus, PolicyEngine, validateWorkspace, type AnyTandemEvent, type TandemEventType } from '@tandem/core';
import {
  CapabilityMissingError,
  GuestConnection,
  GuestOperationError,
  SetupRecordStore,
  runFirstTimeSetup,
} from '@tandem/core/guest';
import { AgentProcess, ChannelRelay } from './relay.test-helper.js';

/** A real PNG (8x8 RGBA), made here so the test needs no binary fixture. */
function tinyPng(seed: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(8, 0);
  ihdr.writeUInt32BE(8, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const raw = Buffer.alloc(8 * (1 + 8 * 4), seed);
  for (let y = 0; y < 8; y++) raw[y * 33] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function workspace(extra: Record<string, unknown> = {}) {
  return validateWorkspace({
    apiVersion: 'tandem/v1',
    kind: 'Workspace',
    metadata: { name: 'erp', version: '1.0.0' },
    spec: {
      image: { source: 'x.qcow2', format: 'qcow2' },
      guestOs: 'linux',
      hardware: { memory: { fixedMiB: 512 } },
      network: { mode: 'none' },
      ...extra,
    },
  });
}

function next(
  bus: EventBus,
  type: TandemEventType,
  where: (e: AnyTandemEvent) => boolean = () => true,
): Promise<AnyTandemEvent> {
  return new Promise((resolve) => {
    const on = (e: AnyTandemEvent): void => {
      if (e.type === type && where(e)) {
        bus.off('*', on);
        resolve(e);
      }
    };
    bus.on('*', on);
  });
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(options: { args?: string[]; env?: NodeJS.ProcessEnv; policy?: PolicyEngine } = {}) {
  const relay = await new ChannelRelay().start();
  const agent = new AgentProcess(relay, options.args ?? [], options.env ?? process.env).start();
  const bus = new EventBus();
  const seen: AnyTandemEvent[] = [];
  bus.on('*', (e) => seen.push(e));
  const conn = new GuestConnection({
    adapter: { name: 'relay', guestChannel: relay.guestChannel },
    vm: 'vm1',
    bus,
    backoff: { initialMs: 20, maxMs: 500 },
    ...(options.policy ? { policy: options.policy.forSubject({}) } : {}),
  });
  cleanup.push(async () => {
    await conn.close();
    await agent.kill();
    await relay.stop();
  });
  return { relay, agent, bus, seen, conn };
}

describe('the guest agent as a real process', () => {
  it('finds its port under /sys/class/virtio-ports, says hello and reports info', async () => {
    const { conn, agent } = await setup();
    writeFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'guest-7\n');
    const hello = await conn.open({ timeoutMs: 60_000 });
    expect(hello).toMatchObject({ software: '@tandem/guest-agent', protocol: 1 });
    expect(hello.capabilities).toEqual(
      expect.arrayContaining(['info', 'apps', 'first-time-setup', 'open-url', 'url-to-host', 'exec']),
    );
    const info = await conn.info();
    expect(info.os.family).toBe('linux');
    expect(info.os.kernel).toBe(release());
    expect(info.hostname).toBe('guest-7');
    expect(info.agentVersion).toBe(hello.version);
    expect(agent.log).toContain('vport1p1');
  });

  it('discovers .desktop entries with their PNG icons, leaving out hidden ones', async () => {
    const { relay } = await setup(); // the default agent; the one under test has --apps-dir
    const apps = join(relay.dir, 'apps');
    mkdirSync(join(apps, 'icons', 'hicolor', '48x48', 'apps'), { recursive: true });
    const icon = tinyPng(7);
    writeFileSync(join(apps, 'icons', 'hicolor', '48x48', 'apps', 'erp-client.png'), icon);
    writeFileSync(
      join(apps, 'erp-client.desktop'),
      '[Desktop Entry]\nType=Application\nName=ERP Client\nName[de]=ERP-Programm\nExec="/opt/erp/bin/erp client" --profile=corp %U\nIcon=erp-client\nCategories=Office;Finance;\n',
    );
    writeFileSync(
      join(apps, 'helper.desktop'),
      '[Desktop Entry]\nType=Application\nName=Helper\nExec=/bin/true\nNoDisplay=true\n',
    );
    writeFileSync(join(apps, 'link.desktop'), '[Desktop Entry]\nType=Link\nName=Site\nURL=https://example.com/\n');
    const relay2 = await new ChannelRelay().start();
    const agent2 = new AgentProcess(relay2, ['--apps-dir', apps]).start();
    const conn2 = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay2.guestChannel }, vm: 'vm2' });
    cleanup.push(async () => {
      await conn2.close();
      await agent2.kill();
      await relay2.stop();
    });
    await conn2.open({ timeoutMs: 60_000 });
    const found = await conn2.apps();
    const erp = found.find((a) => a.id === 'erp-client.desktop');
    expect(erp).toMatchObject({
      name: 'ERP Client',
      command: '/opt/erp/bin/erp client',
      args: ['--profile=corp'],
      categories: ['Office', 'Finance'],
    });
    expect(Buffer.from(erp!.icon!.data, 'base64').equals(icon)).toBe(true);
    expect(found.map((a) => a.id)).not.toContain('helper.desktop');
    expect(found.map((a) => a.id)).not.toContain('link.desktop');
  });

  it('first-time setup sets the computer name once, records it on both ends, and survives an agent restart', async () => {
    const { conn, agent, relay, bus, seen } = await setup();
    await conn.open({ timeoutMs: 60_000 });
    const records = new SetupRecordStore(join(relay.dir, 'host-state'));
    const ws = workspace({ firstTimeSetup: { computerName: 'erp-{random4}' } });
    const result = await runFirstTimeSetup({ connection: conn, workspace: ws, records, bus });
    expect(result.status).toBe('done');
    const name = result.record.computerName!;
    expect(name).toMatch(/^erp-[A-Z0-9]{4}$/);
    expect(readFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'utf8').trim()).toBe(name);
    expect(readFileSync(join(agent.etcDir, 'hostname'), 'utf8').trim()).toBe(name);
    expect((await conn.info()).hostname).toBe(name);
    const steps = seen.filter((e) => e.type === 'guest.setup-step').map((e) => `${e.data.step}:${e.data.status}`);
    expect(steps).toEqual(['computer-name:started', 'computer-name:done', 'network:started', 'network:done']);

    // Once only: a second run does nothing.
    expect((await runFirstTimeSetup({ connection: conn, workspace: ws, records, bus })).status).toBe('already-done');

    // The agent restarts (a reboot of an initramfs guest: /proc forgets the name); it re-applies
    // the recorded name at start, and the guest's own record answers already-done.
    const back = next(bus, 'guest.connected', (e) => e.type === 'guest.connected' && e.data.reconnect);
    await agent.kill();
    writeFileSync(join(agent.procDir, 'sys', 'kernel', 'hostname'), 'localhost\n');
    agent.start();
    await back;
    expect((await conn.info()).hostname).toBe(name);
    const status = await conn.setupStatus();
    expect(status.instance).toBe(result.record.instance);
    expect(status.completed.map((c) => c.step)).toEqual(['computer-name', 'network']);
    const again = await conn.setupStep({ instance: result.record.instance, step: 'computer-name', computerName: name });
    expect(again.status).toBe('already-done');
  });

  it('domain join: the secret reaches realm on stdin, never its argv, the record or the events', async () => {
    const { relay } = await setup();
    const bin = join(relay.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'realm'),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${relay.dir}/realm-argv"\ncat > "${relay.dir}/realm-stdin"\necho "realm: Couldn't join realm: Insufficient permissions to join the domain" >&2\n[ -f "${relay.dir}/realm-ok" ] && exit 0\nexit 1\n`,
    );
    chmodSync(join(bin, 'realm'), 0o755);
    const relay2 = await new ChannelRelay().start();
    const agent2 = new AgentProcess(relay2, [], {
      ...process.env,
      PATH: `${bin}:${process.env['PATH'] ?? ''}`,
    }).start();
    const bus = new EventBus();
    const seen: AnyTandemEvent[] = [];
    bus.on('*', (e) => seen.push(e));
    const conn = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay2.guestChannel }, vm: 'vm3', bus });
    cleanup.push(async () => {
      await conn.close();
      await agent2.kill();
      await relay2.stop();
    });
    await conn.open({ timeoutMs: 60_000 });
    const records = new SetupRecordStore(join(relay.dir, 'host-state'));
    const ws = workspace({
      firstTimeSetup: {
        computerName: 'erp01',
        joinDomain: { domain: 'corp.example', ou: 'OU=VMs,DC=corp,DC=example', credentialRef: 'env:TEST_JOIN' },
      },
    });
    const credentials = {
      resolve: async () => ({ user: 'joiner', secret: 'S3cret-Pa55' }),
    };
    const err = await runFirstTimeSetup({ connection: conn, workspace: ws, records, bus, credentials }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as GuestOperationError).guestMessage).toMatch(/Insufficient permissions/);
    expect((err as GuestOperationError).retryable).toBe(true);
    const argv = readFileSync(join(relay.dir, 'realm-argv'), 'utf8');
    expect(argv.split('\n')).toEqual(
      expect.arrayContaining([
        'join',
        '--computer-name=erp01',
        '--user=joiner',
        '--computer-ou=OU=VMs,DC=corp,DC=example',
        'corp.example',
      ]),
    );
    expect(argv).not.toContain('S3cret');
    expect(readFileSync(join(relay.dir, 'realm-stdin'), 'utf8')).toBe('S3cret-Pa55\n');
    const failed = seen.find((e) => e.type === 'guest.setup-step' && e.data.status === 'failed');
    expect(failed?.data).toMatchObject({ step: 'domain-join', retryable: true });

    // Without --retry a failed setup is reported, not rerun; with it, it resumes at the failed step.
    await expect(
      runFirstTimeSetup({ connection: conn, workspace: ws, records, bus, credentials }),
    ).rejects.toMatchObject({
      code: 'TANDEM_INVALID_STATE',
    });
    writeFileSync(join(relay.dir, 'realm-ok'), '');
    const done = await runFirstTimeSetup({ connection: conn, workspace: ws, records, bus, credentials, retry: true });
    expect(done.status).toBe('done');
    const skipped = seen
      .filter((e) => e.type === 'guest.setup-step' && e.data.status === 'skipped')
      .map((e) => (e.data as { step: string }).step);
    expect(skipped).toEqual(['computer-name', 'network']);
    expect(JSON.stringify(seen)).not.toContain('S3cret');
    expect(readFileSync(join(relay.dir, 'host-state', 'vm3.json'), 'utf8')).not.toContain('S3cret');
    expect(readFileSync(join(agent2.stateDir, 'setup.json'), 'utf8')).not.toContain('S3cret');
  });

  it('domain join with a one-time password: adcli reads it on stdin (--login-type=computer --stdin-password), never argv', async () => {
    const { relay } = await setup();
    const bin = join(relay.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'adcli'),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${relay.dir}/adcli-argv"\ncat > "${relay.dir}/adcli-stdin"\nexit 0\n`,
    );
    chmodSync(join(bin, 'adcli'), 0o755);
    const relay2 = await new ChannelRelay().start();
    const agent2 = new AgentProcess(relay2, [], {
      ...process.env,
      PATH: `${bin}:${process.env['PATH'] ?? ''}`,
    }).start();
    const bus = new EventBus();
    const seen: AnyTandemEvent[] = [];
    bus.on('*', (e) => seen.push(e));
    const conn = new GuestConnection({
      adapter: { name: 'relay', guestChannel: relay2.guestChannel },
      vm: 'vm-otp',
      bus,
    });
    cleanup.push(async () => {
      await conn.close();
      await agent2.kill();
      await relay2.stop();
    });
    await conn.open({ timeoutMs: 60_000 });
    const ws = workspace({
      firstTimeSetup: {
        computerName: 'erp02',
        joinDomain: { domain: 'corp.example', ou: 'OU=VMs,DC=corp,DC=example', credentialRef: 'env:TEST_OTP' },
      },
    });
    const done = await runFirstTimeSetup({
      connection: conn,
      workspace: ws,
      records: new SetupRecordStore(join(relay.dir, 'host-state')),
      bus,
      credentials: { resolve: async () => ({ secret: 'Otp-7Q2k-x' }) },
    });
    expect(done.status).toBe('done');
    expect(readFileSync(join(relay.dir, 'adcli-argv'), 'utf8').split('\n').filter(Boolean)).toEqual([
      'join',
      '--verbose',
      '--login-type=computer',
      '--stdin-password',
      '--computer-name=erp02',
      '--domain-ou=OU=VMs,DC=corp,DC=example',
      '--domain=corp.example',
    ]);
    expect(readFileSync(join(relay.dir, 'adcli-stdin'), 'utf8')).toBe('Otp-7Q2k-x');
    expect(JSON.stringify(seen)).not.toContain('Otp-7Q2k');
    expect(readFileSync(join(agent2.stateDir, 'setup.json'), 'utf8')).not.toContain('Otp-7Q2k');
  });

  it('forward-url in the guest reaches the host as an event with the policy decision', async () => {
    const policy = new PolicyEngine({
      workspace: workspace({
        webRedirection: {
          guestToHost: true,
          defaultTarget: 'guest',
          rules: [{ id: 'public-web', match: { domainSuffix: 'example.com' }, target: 'host' }],
        },
      }),
    });
    const { conn, agent, bus } = await setup({ policy });
    await conn.open({ timeoutMs: 60_000 });
    const event = next(bus, 'guest.url-to-host');
    const r = await agent.forwardUrl('https://www.example.com/report?id=1');
    expect(r.code).toBe(0);
    expect((await event).data).toMatchObject({
      url: 'https://www.example.com/report?id=1',
      target: 'host',
      redirect: true,
      rule: 'public-web',
    });
    const local = next(bus, 'guest.url-to-host');
    await agent.forwardUrl('http://erp.corp.internal/');
    expect((await local).data).toMatchObject({ target: 'guest', redirect: false });
    const refused = await agent.forwardUrl('file:///etc/shadow');
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/only http and https/);
  });

  it('exec runs only what the guest allow-list names, with the arguments it permits', async () => {
    const { relay } = await setup();
    const allow = join(relay.dir, 'allow.json');
    writeFileSync(
      allow,
      JSON.stringify({
        commands: {
          greet: { program: '/bin/echo', args: ['patched'], extraArgs: { pattern: '[a-z0-9.-]+', max: 2 } },
          status: { program: '/bin/echo', args: ['ok'] },
        },
      }),
    );
    const relay2 = await new ChannelRelay().start();
    const agent2 = new AgentProcess(relay2, ['--allow-file', allow]).start();
    const conn = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay2.guestChannel }, vm: 'vm4' });
    cleanup.push(async () => {
      await conn.close();
      await agent2.kill();
      await relay2.stop();
    });
    await conn.open({ timeoutMs: 60_000 });
    expect(await conn.exec('greet', ['kb5031354'])).toMatchObject({ exitCode: 0, stdout: 'patched kb5031354\n' });
    await expect(conn.exec('rm-rf', [])).rejects.toMatchObject({
      code: 'TANDEM_GUEST_FAILED',
      details: { guestCode: 'not-allowed' },
    });
    await expect(conn.exec('status', ['--extra'])).rejects.toMatchObject({
      details: { guestCode: 'argument-not-allowed' },
    });
    await expect(conn.exec('greet', ['$(reboot)'])).rejects.toMatchObject({
      details: { guestCode: 'argument-not-allowed' },
    });
  });

  it('survives the host going away and coming back, and the host survives the agent being killed', async () => {
    const { conn, agent, relay, bus } = await setup();
    await conn.open({ timeoutMs: 60_000 });
    await conn.close();
    // A new host connection: the agent saw EOF, waited, and serves the port again.
    const conn2 = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay.guestChannel }, vm: 'vm1', bus });
    cleanup.push(() => conn2.close());
    await conn2.open({ timeoutMs: 60_000 });
    expect((await conn2.info()).os.family).toBe('linux');
    const back = next(bus, 'guest.connected', (e) => e.type === 'guest.connected' && e.data.reconnect);
    await agent.kill();
    agent.start();
    await back;
    expect((await conn2.info()).os.family).toBe('linux');
    expect(relay.hostConnections).toBeGreaterThanOrEqual(2);
  });

  it('a capability the agent lacks on this OS is CapabilityMissingError (no url socket: no url-to-host)', async () => {
    const relay = await new ChannelRelay().start();
    const agent = new AgentProcess(relay, ['--no-url-socket']).start();
    const conn = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay.guestChannel }, vm: 'vm5' });
    cleanup.push(async () => {
      await conn.close();
      await agent.kill();
      await relay.stop();
    });
    const hello = await conn.open({ timeoutMs: 60_000 });
    expect(hello.capabilities).not.toContain('url-to-host');
    expect(conn.has('info')).toBe(true);
    expect(new CapabilityMissingError('x', 'apps').code).toBe('TANDEM_AGENT_CAPABILITY');
  });
});

describe('the agent process under hostile input', () => {
  it('fuzz: whatever bytes the host side writes, the agent process stays up and answers the next host', async () => {
    const fc = (await import('fast-check')).default;
    const relay = await new ChannelRelay().start();
    const agent = new AgentProcess(relay).start();
    cleanup.push(async () => {
      await agent.kill();
      await relay.stop();
    });
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4000 }), async (bytes) => {
        // A raw host connection writes garbage and hangs up; the agent sees EOF and serves again.
        const s = await relay.guestChannel.open();
        await new Promise<void>((resolve) => s.write(bytes, () => resolve()));
        s.destroy();
      }),
      { numRuns: 25 },
    );
    const conn = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay.guestChannel }, vm: 'fuzz' });
    cleanup.push(() => conn.close());
    await conn.open({ timeoutMs: 60_000 });
    expect((await conn.info()).os.family).toBe('linux');
    expect(agent.child?.exitCode).toBeNull();
  });
});

describe('the agent in the guest image layout', () => {
  it('runs from /opt/tandem/node_modules with only @tandem/core and zod beside it', async () => {
    const { cpSync, mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const repo = join(import.meta.dirname, '..', '..', '..');
    const root = mkdtempSync(join(tmpdir(), 'tandem-layout-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    const nm = join(root, 'opt', 'tandem', 'node_modules');
    for (const [from, to] of [
      ['packages/guest-agent/package.json', '@tandem/guest-agent/package.json'],
      ['packages/guest-agent/dist', '@tandem/guest-agent/dist'],
      ['packages/core/package.json', '@tandem/core/package.json'],
      ['packages/core/dist', '@tandem/core/dist'],
      ['node_modules/zod', 'zod'],
    ] as const) {
      cpSync(join(repo, from), join(nm, to), { recursive: true, dereference: true });
    }
    const main = join(nm, '@tandem', 'guest-agent', 'dist', 'main.js');
    const { stdout } = await promisify(execFile)(process.execPath, [main, '--version'], { cwd: root });
    expect(stdout).toMatch(/^@tandem\/guest-agent \d+\.\d+\.\d+/);

    // And it serves a host from there, every capability loaded.
    const relay = await new ChannelRelay().start();
    const child = (await import('node:child_process')).spawn(
      process.execPath,
      [
        main,
        '--sys-dir',
        relay.sysDir,
        '--dev-dir',
        relay.devDir,
        '--state-dir',
        join(root, 'state'),
        '--url-socket',
        join(root, 'url.sock'),
      ],
      { cwd: root, stdio: 'ignore' },
    );
    const conn = new GuestConnection({ adapter: { name: 'relay', guestChannel: relay.guestChannel }, vm: 'layout' });
    cleanup.push(async () => {
      await conn.close();
      child.kill('SIGKILL');
      await relay.stop();
    });
    const hello = await conn.open({ timeoutMs: 60_000 });
    expect(hello.capabilities).toEqual(expect.arrayContaining(['info', 'apps', 'first-time-setup', 'exec']));
    expect((await conn.info()).os.family).toBe('linux');
  });
});

describe('the agent on a character device', () => {
  // A pseudo-terminal in raw mode stands in for /dev/vportNpM: a character device the agent opens
  // with --device and reads and writes through the file API, as it does a virtio port. A small
  // Python relay holds the master side and gives the host a unix socket, as QEMU does.
  const RELAY = `
import os, pty, tty, socket, sys, select
m, s = pty.openpty()
tty.setraw(s)
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(1)
print(os.ttyname(s), flush=True)
while True:
    conn, _ = srv.accept()
    while True:
        r, _, _ = select.select([m, conn], [], [])
        if m in r:
            conn.sendall(os.read(m, 65536))
        if conn in r:
            d = conn.recv(65536)
            if not d:
                break
            os.write(m, d)
    conn.close()
`;

  const hasPty = spawnSync('python3', ['-c', 'import pty, tty']).status === 0;

  it.skipIf(!hasPty)('opens the device with --device, says hello and answers through it (needs python3)', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { connect } = await import('node:net');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-pty-'));
    const sock = join(dir, 'host.sock');
    const py = spawn('python3', ['-c', RELAY, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ttyPath = await new Promise<string>((resolve) =>
      py.stdout.once('data', (b: Buffer) => resolve(b.toString().trim())),
    );
    const relay = await new ChannelRelay().start(); // for the scratch dirs only
    const agent = new AgentProcess(relay, ['--device', ttyPath]).start();
    const conn = new GuestConnection({
      adapter: {
        name: 'pty',
        guestChannel: {
          open: () =>
            new Promise((resolve, reject) => {
              const s = connect(sock);
              s.once('connect', () => resolve(s));
              s.once('error', reject);
            }),
        },
      },
      vm: 'pty',
    });
    cleanup.push(async () => {
      await conn.close();
      await agent.kill();
      py.kill('SIGKILL');
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const hello = await conn.open({ timeoutMs: 60_000 });
    expect(hello.software).toBe('@tandem/guest-agent');
    expect((await conn.info()).os.family).toBe('linux');
    expect(agent.log).toContain(`using ${ttyPath}`);
  });
});
