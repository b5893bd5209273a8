import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cliRelayPerTest } from './cli-relay.test-helper.js';

// `tandem guest ...` end to end: a session made by `tandem up` on a mock hypervisor whose guest
// channel reaches a real agent process (relay-adapter.test-helper.ts), as libvirt's does.

const cli = cliRelayPerTest('tandem-guest-cli-');
const tandem = cli.tandem;

beforeEach(() => cli.up('firstTimeSetup: { computerName: "erp-{random4}" }'));

describe('tandem guest', () => {
  it('status, info and apps answer with --json', async () => {
    const status = await tandem('--json', 'guest', 'status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.json).toMatchObject({
      reachable: true,
      agent: { software: '@tandem/guest-agent', protocol: 1 },
      setup: null,
    });
    writeFileSync(join(cli.agent.procDir, 'sys', 'kernel', 'hostname'), 'guest-cli\n');
    const info = await tandem('guest', 'info', '--json');
    expect(info.json).toMatchObject({ hostname: 'guest-cli', os: { family: 'linux' } });
    const text = await tandem('guest', 'info');
    expect(text.stdout).toMatch(/hostname guest-cli/);
    const apps = await tandem('--json', 'guest', 'apps');
    expect(apps.code, apps.stderr).toBe(0);
    expect(Array.isArray((apps.json as { apps: unknown[] }).apps)).toBe(true);
  });

  it('setup runs once: the computer name reaches the guest, a second run says already done', async () => {
    const first = await tandem('--json', 'guest', 'setup');
    expect(first.code, first.stderr).toBe(0);
    const r = first.json as { status: string; record: { computerName: string } };
    expect(r.status).toBe('done');
    expect(readFileSync(join(cli.agent.procDir, 'sys', 'kernel', 'hostname'), 'utf8').trim()).toBe(
      r.record.computerName,
    );
    const again = await tandem('guest', 'setup');
    expect(again.stdout).toMatch(/already done/);
    const status = await tandem('--json', 'guest', 'status');
    expect(status.json).toMatchObject({ setup: { computerName: r.record.computerName } });
  });

  it('an agent that does not answer is reported as unreachable, exit code 1', async () => {
    await cli.agent.kill();
    const status = await tandem('--json', 'guest', 'status', '--timeout', 'PT2S');
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ reachable: false });
    const info = await tandem('guest', 'info', '--timeout', 'PT2S');
    expect(info.code).not.toBe(0);
    expect(info.stderr).toMatch(/No guest agent answered/);
  });
});
