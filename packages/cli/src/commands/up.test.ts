import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cliHarness } from '../cli-harness.test-helper.js';
import { createContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { StateDir, withSession } from '../index.js';

const workspace = (version: string, cpus: number, usage = '{}') => `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: ${version} }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 }, cpus: ${cpus} }
  usage: ${usage}
`;

let dir: string;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-up-'));
});

describe('tandem up and the usage policy', () => {
  it('refuses an expired workspace, naming the rule and the layer, and does not start the VM', async () => {
    writeFileSync(join(dir, 'erp.yaml'), workspace('1.0.0', 1, '{ expiresAt: 2020-01-01T00:00:00Z }'));
    const up = await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock');
    expect(up.code).toBe(ExitCode.policyDenied);
    expect(up.stderr).toMatch(
      /may not start: expired at 2020-01-01T00:00:00Z \(spec\.usage\.expiresAt in package-default/,
    );
    expect((await tandem('--json', 'status')).json.sessions[0].state).toBe('stopped');
  });

  it('a policy layer given to up decides the end action over the workspace file, for later commands too', async () => {
    writeFileSync(join(dir, 'erp.yaml'), workspace('1.0.0', 1, '{ onSessionEnd: snapshot }'));
    writeFileSync(
      join(dir, 'machine.policy.yaml'),
      'apiVersion: tandem/v1\nkind: PolicyLayer\nlayer: machine-policy\npolicy:\n  usage: { onSessionEnd: shutdown }\n',
    );
    const up = await tandem(
      'up',
      join(dir, 'erp.yaml'),
      '--adapter',
      'mock',
      '--layer',
      join(dir, 'machine.policy.yaml'),
    );
    expect(up.code).toBe(ExitCode.ok);
    expect((await tandem('--json', 'end')).json).toMatchObject({ action: 'shutdown', state: 'stopped' });
    expect((await tandem('--json', 'snapshot', 'list')).json.snapshots).toEqual([]);
  });
});

describe('tandem up with a changed workspace', () => {
  it('shows the newer version waiting while the VM runs, and redefines the VM at the next start', async () => {
    const file = join(dir, 'erp.yaml');
    writeFileSync(file, workspace('1.0.0', 1));
    expect((await tandem('--json', 'up', file, '--adapter', 'mock')).json.state).toBe('running');
    expect((await tandem('--json', 'snapshot', 'create', 'before-update')).code).toBe(0);

    writeFileSync(file, workspace('1.1.0', 2));
    const again = await tandem('up', file);
    expect(again.code).toBe(ExitCode.ok);
    expect(again.stdout).toMatch(/version 1\.1\.0 waits for the next start .*cpus: 1 CPU -> 2 CPUs/);

    const status = await tandem('--json', 'status');
    expect(status.json.sessions[0]).toMatchObject({
      state: 'running',
      version: '1.1.0',
      pendingUpdate: { fromVersion: '1.0.0', toVersion: '1.1.0', changes: [{ field: 'cpus' }] },
    });
    expect((await tandem('status')).stdout).toMatch(/version 1\.1\.0 waits for the next start \(was 1\.0\.0\)/);

    expect((await tandem('--json', 'stop', '--force')).code).toBe(0);
    const restarted = await tandem('up', file);
    expect(restarted.code).toBe(ExitCode.ok);
    expect(restarted.stderr).toMatch(/VM tandem-erp updated to 1\.1\.0 \(cpus: 1 CPU -> 2 CPUs\); 1 snapshots kept/);
    const after = await tandem('--json', 'status');
    expect(after.json.sessions[0].state).toBe('running');
    expect(after.json.sessions[0].pendingUpdate).toBeUndefined();
    expect((await tandem('--json', 'snapshot', 'list')).json.snapshots.map((s: { name: string }) => s.name)).toEqual([
      'before-update',
    ]);
  });
});

describe('@tandem/cli for a tray tool', () => {
  it('a session driven through withSession is the one tandem status shows', async () => {
    writeFileSync(join(dir, 'erp.yaml'), workspace('1.0.0', 1));
    expect((await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock')).code).toBe(0);
    const ctx = createContext({ stateDir: join(dir, 'state'), json: true });
    await withSession(ctx, 'erp', (session) => session.lock('tray'));
    expect(new StateDir(ctx.stateDir).find('erp')?.state).toBe('locked');
    expect((await tandem('--json', 'status')).json.sessions[0].state).toBe('locked');
  });
});
