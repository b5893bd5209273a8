import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from './testing/integration.js';

// module.registerHooks records what a process loads; Node.js 22.15 and later have it.
const hasResolveHooks = 'registerHooks' in nodeModule;

// An integrator's endpoint program, written against the packed @tandem/core (the tarball npm
// would publish, unpacked into a node_modules of its own), run in a process of its own. It uses
// only the public entries and no glue: the layered idle lock and end action, expiry, an update
// of the VM in place, and the policy engine alone without SSH or process tooling.
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(packageDir, '..', '..');
const run = promisify(execFile);

const ENDPOINT = `
import { IdleLock, SessionManager, VirtualClock, parseWorkspace } from '@tandem/core';
import { MockAdapter } from '@tandem/core/mock';

const ws = (version, cpus, usage) => parseWorkspace(\`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: \${version} }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 1024 }, cpus: \${cpus} }
  usage: \${usage}
\`);
const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
const adapter = new MockAdapter({ clock });
const manager = new SessionManager({
  adapter,
  clock,
  layers: [{ layer: 'machine-policy', source: 'machine.policy.yaml', policy: { usage: { idleLock: 'PT1M', onSessionEnd: 'shutdown' } } }],
});
const out = {};
{
  await using s = await manager.open(ws('1.0.0', 1, '{ idleLock: PT10M, onSessionEnd: snapshot }'), { diskPath: '/images/erp-1.0.0.qcow2' });
  await s.snapshot('installed');
  await s.start();
  const idle = new IdleLock(s);
  idle.start();
  await clock.waitForSleepers();
  await clock.advance(60_000);
  out.stateAfterOneIdleMinute = s.state;
  idle.stop();
  await s.unlock();
  out.endAction = await s.end({ timeoutMs: 1000 });
}
{
  await using s = await manager.open(ws('2.0.0', 2, '{}'), { diskPath: '/images/erp-2.0.0.qcow2' });
  out.pending = s.pendingUpdate.changes.map((c) => c.field);
  await s.start();
  const vm = (await adapter.list())[0];
  out.after = { disk: vm.disks[0].path, cpus: vm.cpus, version: vm.labels['tandem.version'] };
  out.defines = adapter.calls.filter((c) => c.op === 'define').length;
  out.snapshots = (await s.snapshots()).map((x) => x.name);
}
const expired = parseWorkspace(\`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: old, version: 1.0.0 }
spec:
  image: { source: ./old.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  usage: { expiresAt: 2020-01-01T00:00:00Z }
\`);
await using old = await manager.open(expired);
await old.start().catch((e) => (out.expired = { code: e.code, check: e.details.check, layer: e.details.layer }));
process.stdout.write(JSON.stringify(out));
`;

const POLICY_ONLY = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(s, c, n) { const r = n(s, c); loaded.push(r.url); return r; } });
const { PolicyEngine } = await import('@tandem/core/policy');
process.stdout.write(JSON.stringify({ engine: typeof PolicyEngine, tooling: loaded.filter((u) => /node_modules\\/(ssh2|execa|cpu-features)\\//.test(u)) }));
`;

// `npm test` builds first; run alone before a build, the file says so instead of passing quietly,
// and under TANDEM_IT=required (CI) a missing build is a failure, not a skip.
const { enabled: built } = await integrationGate(
  'packed @tandem/core',
  () => (existsSync(join(packageDir, 'dist', 'index.js')) ? null : 'packages/core/dist is not built'),
  'run `npx tsc -b` first (npm test does)',
);
let dir = '';

beforeAll(async () => {
  if (!built) return;
  // Inside the repository, so the package's own dependencies resolve from its node_modules.
  await mkdir(join(repoRoot, 'node_modules', '.cache'), { recursive: true });
  dir = await mkdtemp(join(repoRoot, 'node_modules', '.cache', 'tandem-endpoint-'));
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: packageDir,
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await mkdir(join(dir, 'node_modules', '@tandem'), { recursive: true });
  await run('tar', ['-xzf', join(dir, filename), '-C', join(dir, 'node_modules', '@tandem')], { timeout: 60_000 });
  await rename(join(dir, 'node_modules', '@tandem', 'package'), join(dir, 'node_modules', '@tandem', 'core'));
  await writeFile(join(dir, 'endpoint.mjs'), ENDPOINT);
  await writeFile(join(dir, 'policy-only.mjs'), POLICY_ONLY);
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!built)('an endpoint program against the packed @tandem/core', () => {
  it('gets the layered idle lock, end action and expiry, and updates the VM in place, without glue', async () => {
    const { stdout } = await run(process.execPath, [join(dir, 'endpoint.mjs')], { cwd: dir, timeout: 120_000 });
    expect(JSON.parse(stdout)).toEqual({
      stateAfterOneIdleMinute: 'locked', // the machine layer's PT1M, not the workspace's PT10M
      endAction: 'shutdown', // the machine layer's, not the workspace's snapshot
      pending: ['disks', 'cpus'],
      after: { disk: '/images/erp-2.0.0.qcow2', cpus: 2, version: '2.0.0' },
      defines: 1, // redefined in place, not destroyed and defined again
      snapshots: ['installed'],
      expired: { code: 'TANDEM_POLICY_DENIED', check: 'expiry', layer: 'package-default' },
    });
  });

  it.skipIf(!hasResolveHooks)('imports the policy engine without loading ssh2 or execa', async () => {
    const { stdout } = await run(process.execPath, [join(dir, 'policy-only.mjs')], { cwd: dir, timeout: 120_000 });
    expect(JSON.parse(stdout)).toEqual({ engine: 'function', tooling: [] });
  });
});
