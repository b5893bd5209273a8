import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.test-helper.js';
import { ExitCode } from './exit-codes.js';

const WORKSPACE = `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware:
    memory: { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 }
`;

let dir: string;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  writeFileSync(join(dir, 'erp.yaml'), WORKSPACE);
});

describe('tandem CLI on the mock adapter', () => {
  it('runs a whole session across separate invocations', async () => {
    const up = await tandem('--json', 'up', join(dir, 'erp.yaml'), '--adapter', 'mock');
    expect(up.code).toBe(ExitCode.ok);
    expect(up.json).toMatchObject({ workspace: 'erp', vm: 'tandem-erp', adapter: 'mock', state: 'running' });

    expect((await tandem('--json', 'status')).json.sessions).toMatchObject([
      { workspace: 'erp', state: 'running', adapter: 'mock' },
    ]);
    expect((await tandem('--json', 'snapshot', 'create', 'clean', '-d', 'fresh install')).json).toMatchObject({
      name: 'clean',
      vmState: 'running',
    });
    expect((await tandem('--json', 'suspend')).json.state).toBe('suspended');
    expect((await tandem('--json', 'status', 'erp')).json.sessions[0].state).toBe('suspended');
    expect((await tandem('--json', 'resume', 'erp')).json.state).toBe('running');
    expect((await tandem('--json', 'snapshot', 'create', 'later')).code).toBe(0);

    const list = await tandem('snapshot', 'list');
    expect(list.stdout).toMatch(/^clean {2}\[running, .*\]\n└─ later {2}\[running, .*\] \(current\)\n$/);

    expect((await tandem('--json', 'stop', '--force')).json.state).toBe('stopped');
    expect((await tandem('--json', 'snapshot', 'revert', 'clean')).json.state).toBe('running');
    expect((await tandem('--json', 'snapshot', 'delete', 'later')).code).toBe(0);
    expect((await tandem('--json', 'snapshot', 'list')).json.snapshots.map((s: { name: string }) => s.name)).toEqual([
      'clean',
    ]);
    expect((await tandem('--json', 'lock')).json.state).toBe('locked');
    expect((await tandem('--json', 'status')).json.sessions[0].state).toBe('locked');
    expect((await tandem('--json', 'unlock')).json.state).toBe('running');
    expect((await tandem('--json', 'stop', '--timeout', '5')).json.state).toBe('stopped');

    const events = await tandem('--json', 'events', '--type', 'session.transition');
    const pairs = events.json.events.map((e: any) => `${e.data.from}>${e.data.to}`);
    expect(pairs.slice(0, 4)).toEqual([
      'stopped>starting',
      'starting>running',
      'running>suspended',
      'suspended>running',
    ]);
    expect(events.json.events.every((e: any) => e.workspace === 'erp' && e.session === up.json.session)).toBe(true);

    const down = await tandem('--json', 'down');
    expect(down.json).toMatchObject({ removed: true });
    expect((await tandem('--json', 'status')).json.sessions).toEqual([]);
  });

  it('ends a revertible session back at its baseline', async () => {
    writeFileSync(
      join(dir, 'rev.yaml'),
      WORKSPACE.replace('name: erp', 'name: rev') + '  usage: { mode: revertible }\n',
    );
    expect((await tandem('--json', 'up', join(dir, 'rev.yaml'), '--adapter', 'mock')).json.state).toBe('running');
    expect((await tandem('--json', 'snapshot', 'create', 'work', '-w', 'rev')).code).toBe(0);
    expect((await tandem('--json', 'end', 'rev')).json).toMatchObject({ action: 'revert', state: 'stopped' });
    const list = (await tandem('--json', 'snapshot', 'list', '-w', 'rev')).json.snapshots;
    expect(list.find((s: { current: boolean }) => s.current).name).toBe('tandem-baseline');
  });

  it('exits 5 with one line naming the state for an illegal transition', async () => {
    await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock', '--no-start');
    const r = await tandem('resume');
    expect(r.code).toBe(ExitCode.invalidState);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^tandem: Cannot resume the session .*: it is stopped/);
    const verbose = await tandem('--verbose', 'resume');
    expect(verbose.stderr).toMatch(/at .*session\.ts/); // the stack, only with --verbose
  });

  it('validates workspace files with documented exit codes', async () => {
    expect((await tandem('validate', join(dir, 'erp.yaml'))).code).toBe(ExitCode.ok);
    writeFileSync(join(dir, 'bad.yaml'), WORKSPACE.replace('format: qcow2', 'format: qcow3'));
    const bad = await tandem('validate', join(dir, 'bad.yaml'));
    expect(bad.code).toBe(ExitCode.invalidInput);
    expect(bad.stderr).toContain(`${join(dir, 'bad.yaml')}:6:`);
    expect(bad.stderr).toContain('spec.image.format: expected one of "qcow2", "raw"');
    const json = await tandem('--json', 'validate', join(dir, 'bad.yaml'));
    expect(json.json.error).toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    expect((await tandem('validate', join(dir, 'missing.yaml'))).code).toBe(ExitCode.notFound);
    expect((await tandem('--json', 'validate', join(dir, 'erp.yaml'), '--host-memory', '8000')).json.memoryMiB).toBe(
      2000,
    );
  });

  it('refuses a second tandem process on the same VM', async () => {
    await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock', '--no-start');
    const lockDir = join(dir, 'state', 'locks');
    writeFileSync(join(lockDir, 'tandem-erp.lock'), String(process.ppid)); // a live process that is not this one
    const r = await tandem('suspend');
    expect(r.code).toBe(ExitCode.invalidState);
    expect(r.stderr).toMatch(/Another tandem command \(pid \d+\) is driving VM "tandem-erp"/);
    writeFileSync(join(lockDir, 'tandem-erp.lock'), '999999'); // a dead process: taken over
    expect((await tandem('--json', 'status')).json.sessions[0].state).toBe('stopped');
  });

  it('reports usage errors with exit 2, unknown adapters and bad options plainly', async () => {
    expect((await tandem('frobnicate')).code).toBe(ExitCode.usage);
    const unknown = await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'vmware');
    expect(unknown.code).toBe(ExitCode.invalidInput);
    expect(unknown.stderr).toMatch(/Unknown adapter "vmware": expected one of .*mock/);
    const badOpt = await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock', '--adapter-option', 'nokey');
    expect(badOpt.stderr).toMatch(/--adapter-option "nokey" is not key=value/);
    expect((await tandem('resume')).stderr).toMatch(/There is no session/);
    const badLimit = await tandem('events', '--limit', 'lots');
    expect(badLimit.code).toBe(ExitCode.invalidInput);
  });

  it('doctor lists every adapter with a reason or a version, and host facts', async () => {
    const r = await tandem('--json', 'doctor');
    const names = r.json.adapters.map((a: { adapter: string }) => a.adapter);
    expect(names).toContain('mock');
    expect(r.json.host.memoryMiB).toBeGreaterThan(0);
    for (const a of r.json.adapters) expect(a.usable ? a.hypervisorVersion : a.reason).toBeTruthy();
    expect([ExitCode.ok, ExitCode.unsupported]).toContain(r.code);
  });

  it('takes global options before or after the command', async () => {
    expect((await tandem('status', '--json')).json).toEqual({ sessions: [] });
    expect((await tandem('--json', 'status')).json).toEqual({ sessions: [] });
    const v = await tandem('--version');
    expect(v.stdout.trim()).toBe('0.1.0');
  });

  it('has --help on every command', async () => {
    for (const cmd of [
      [],
      ['up'],
      ['status'],
      ['stop'],
      ['snapshot'],
      ['snapshot', 'create'],
      ['doctor'],
      ['validate'],
      ['events'],
    ]) {
      const r = await tandem(...cmd, '--help');
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: tandem/);
    }
  });
});
