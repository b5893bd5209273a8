import { describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../clock.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { TandemError } from '../errors.js';
import type { PolicyLayerInput } from '../policy/layers.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { IdleLock } from './idle-lock.js';
import { SessionManager } from './manager.js';
import { SessionPolicy } from './session-policy.js';
import { Watchdog } from './watchdog.js';

const workspaceYaml = (usage: string) => `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 1024 } }
  usage: ${usage}
`;

const MACHINE: PolicyLayerInput = {
  layer: 'machine-policy',
  source: 'machine.policy.yaml',
  policy: { usage: { idleLock: 'PT1M', onSessionEnd: 'shutdown' } },
};

function setup(usage: string, layers: PolicyLayerInput[] = [], now = '2026-11-21T10:00:00Z') {
  const clock = new VirtualClock(Date.parse(now));
  const adapter = new MockAdapter({ clock });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const manager = new SessionManager({ adapter, events, clock, layers });
  return { clock, adapter, events, seen, manager, workspace: parseWorkspace(workspaceYaml(usage)) };
}

describe('layered usage policy in sessions', () => {
  it('a machine policy layer decides the idle lock and the end action over the workspace file', async () => {
    const { manager, workspace, clock, adapter } = setup('{ idleLock: PT10M, onSessionEnd: snapshot }', [MACHINE]);
    const s = await manager.open(workspace);
    expect(s.policy.idleLockMs).toBe(60_000);
    expect(s.policy.endAction).toBe('shutdown');
    expect(s.policy.settings.idleLock).toMatchObject({ layer: 'machine-policy', source: 'machine.policy.yaml' });
    await s.start();
    const idle = new IdleLock(s); // clock and period from the session
    idle.start();
    await clock.waitForSleepers();
    await clock.advance(60_000);
    expect(s.state).toBe('locked');
    idle.stop();
    await s.unlock();
    expect(await s.end({ timeoutMs: 1000 })).toBe('shutdown');
    expect(await adapter.snapshots.list(s.vm)).toEqual([]); // no end-of-session snapshot
  });

  it('without layers the workspace file decides, as before', async () => {
    const { manager, workspace } = setup('{ idleLock: PT10M, onSessionEnd: snapshot }');
    const s = await manager.open(workspace);
    expect(s.policy.idleLockMs).toBe(600_000);
    expect(s.policy.endAction).toBe('snapshot');
  });

  it('a user assignment applies to the subject it names only', async () => {
    const layer: PolicyLayerInput = {
      layer: 'user-policy',
      assignments: [{ users: ['alice'], policy: { usage: { idleLock: 'PT2M' } } }],
    };
    const ws = parseWorkspace(workspaceYaml('{ idleLock: PT10M }'));
    expect(SessionPolicy.for(ws, { layers: [layer], subject: { user: 'alice' } }).idleLockMs).toBe(120_000);
    expect(SessionPolicy.for(ws, { layers: [layer], subject: { user: 'bob' } }).idleLockMs).toBe(600_000);
  });

  it('an idleLockMs of null from a decision is accepted as "the policy decides"', async () => {
    const { manager, workspace } = setup('{ idleLock: PT10M }');
    const s = await manager.open(workspace);
    const decision = SessionPolicy.for(parseWorkspace(workspaceYaml('{}'))).decide();
    expect(decision.idleLockMs).toBeNull();
    expect(new IdleLock(s, { idleMs: decision.idleLockMs }).idleMs).toBe(600_000);
  });

  it('takes a decision or an action the caller already has', async () => {
    const { manager, workspace } = setup('{ idleLock: PT10M, onSessionEnd: snapshot }');
    const s = await manager.open(workspace);
    const decision = SessionPolicy.for(workspace, { layers: [MACHINE] }).decide();
    expect(new IdleLock(s, { decision }).idleMs).toBe(60_000);
    expect(new IdleLock(s, { decision: { idleLockMs: null, lockOnHostSleep: false } }).idleMs).toBeUndefined();
    await s.start();
    expect(await s.end({ action: decision.onSessionEnd, timeoutMs: 1000 })).toBe('shutdown');
    expect(await s.snapshots()).toEqual([]);
  });

  it('refuses to start an expired workspace with PolicyDeniedError naming the rule and layer', async () => {
    const { manager, workspace, adapter, seen } = setup('{ expiresAt: 2020-01-01T00:00:00Z }');
    const s = await manager.open(workspace);
    const err = await s.start().catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_POLICY_DENIED')).toBe(true);
    expect((err as TandemError).message).toMatch(/may not start: expired at 2020-01-01T00:00:00Z/);
    expect((err as TandemError).details).toMatchObject({
      check: 'expiry',
      layer: 'package-default',
      rule: { path: 'spec.usage.expiresAt' },
    });
    expect(s.state).toBe('stopped');
    expect(adapter.calls.some((c) => c.op === 'start')).toBe(false);
    expect(seen.some((e) => e.type === 'session.transition')).toBe(false); // refused before it moved
    expect(seen.find((e) => e.type === 'policy.decision')?.data).toMatchObject({ kind: 'usage', outcome: 'deny' });
  });

  it('a higher layer can extend the expiry, and the watchdog cannot restart past it', async () => {
    const extend: PolicyLayerInput = {
      layer: 'machine-policy',
      policy: { usage: { expiresAt: '2030-01-01T00:00:00Z' } },
    };
    const { manager, workspace } = setup('{ expiresAt: 2020-01-01T00:00:00Z }', [extend]);
    const s = await manager.open(workspace);
    await s.start();
    expect(s.state).toBe('running');

    const late = setup('{ expiresAt: 2026-11-21T10:05:00Z }');
    const t = await late.manager.open(late.workspace);
    await t.start();
    const dog = new Watchdog(t, { events: late.events, backoffMs: 10 * 60_000 });
    dog.start();
    late.adapter.crash(t.vm);
    await late.clock.waitForSleepers();
    await late.clock.advance(10 * 60_000);
    await vi.waitFor(() =>
      expect(late.seen.some((e) => e.type === 'policy.decision' && e.data.outcome === 'deny')).toBe(true),
    );
    expect(t.state).toBe('crashed'); // the restart was denied: the workspace expired meanwhile
    dog.stop();
  });

  it('enforces the offline limit from the connectivity the caller reports', async () => {
    const clock = new VirtualClock(Date.parse('2026-11-21T10:00:00Z'));
    const adapter = new MockAdapter({ clock });
    const manager = new SessionManager({
      adapter,
      clock,
      usageState: () => ({ online: false, lastOnlineCheckAt: '2026-11-01T00:00:00Z' }),
    });
    const s = await manager.open(parseWorkspace(workspaceYaml('{ offline: { allowed: true, maxDuration: P14D } }')));
    await expect(s.start()).rejects.toMatchObject({
      code: 'TANDEM_POLICY_DENIED',
      details: { check: 'offline' },
      message: expect.stringMatching(/connect to the network/i),
    });
  });

  it('a policy engine given to open() is used, and must be for the same workspace', async () => {
    const { manager, workspace } = setup('{ idleLock: PT10M }');
    const other = parseWorkspace(workspaceYaml('{}').replace('name: erp', 'name: crm'));
    const engine = SessionPolicy.for(other).engine;
    await expect(manager.open(workspace, { policy: engine })).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    const own = SessionPolicy.for(workspace, { layers: [MACHINE] }).engine;
    expect((await manager.open(workspace, { policy: own })).policy.idleLockMs).toBe(60_000);
  });

  it('says why a session moved in its own field: operation lock, reason idle', async () => {
    const { manager, workspace, clock, seen } = setup('{ idleLock: PT1M }');
    const s = await manager.open(workspace);
    await s.start();
    const idle = new IdleLock(s);
    idle.start();
    await clock.waitForSleepers();
    await clock.advance(60_000);
    idle.stop();
    const lock = seen.find((e) => e.type === 'session.transition' && e.data.to === 'locked');
    expect(lock?.data).toMatchObject({ from: 'running', to: 'locked', operation: 'lock', reason: 'idle' });
  });
});

describe('closing a session', () => {
  it('session.close() frees the VM for a new session, and closing twice does nothing', async () => {
    const { manager, workspace } = setup('{}');
    const s = await manager.open(workspace);
    await s.close();
    await s.close();
    expect(manager.list()).toEqual([]);
    const again = await manager.open(workspace);
    expect(again.id).not.toBe(s.id);
    await expect(s.start()).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
  });

  it('await using closes the session at the end of the scope', async () => {
    const { manager, workspace } = setup('{}');
    {
      await using s = await manager.open(workspace);
      await s.start();
      expect(manager.list()).toHaveLength(1);
    }
    expect(manager.list()).toEqual([]);
    await using again = await manager.open(workspace);
    expect(again.state).toBe('running');
  });
});
