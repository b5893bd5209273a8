import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { TandemError } from '../errors.js';
import { parseWorkspace, validateWorkspace } from '../workspace/load.js';
import type { WorkspaceInput } from '../workspace/schema.js';
import { PolicyEngine } from './engine.js';
import type { PolicyLayerInput } from './layers.js';

const T0 = Date.parse('2026-06-01T00:00:00Z');
const H = 3_600_000;
const D = 24 * H;

function workspace(usage: WorkspaceInput['spec']['usage']) {
  return validateWorkspace({
    apiVersion: 'tandem/v1',
    kind: 'Workspace',
    metadata: { name: 'erp', version: '1.0.0' },
    spec: { image: { source: 'x.qcow2', format: 'qcow2' }, hardware: { memory: { fixedMiB: 512 } }, usage },
  });
}

describe('usage decisions', () => {
  it('reports the time left before expiry, and denies after it', async () => {
    const clock = new VirtualClock(T0);
    const p = new PolicyEngine({ workspace: workspace({ expiresAt: '2026-06-03T00:00:00Z' }), clock }).forSubject({});
    const before = p.decideUsage({ online: true });
    expect(before).toMatchObject({
      kind: 'usage',
      outcome: 'allow',
      expiresInMs: 2 * D,
      validForMs: 2 * D,
      layer: 'package-default',
      rule: { path: 'spec.usage.expiresAt' },
    });
    await clock.advance(2 * D);
    const after = p.decideUsage({ online: true });
    expect(after).toMatchObject({ outcome: 'deny', expiresInMs: 0, rule: { path: 'spec.usage.expiresAt' } });
    expect(after.reason).toMatch(/^deny: expired at 2026-06-03T00:00:00Z \(spec.usage.expiresAt in package-default/);
  });

  it('limits offline use by the time since the last online check', async () => {
    const clock = new VirtualClock(T0);
    const p = new PolicyEngine({
      workspace: workspace({ offline: { allowed: true, maxDuration: 'P14D' } }),
      clock,
    }).forSubject({});
    const last = T0 - 10 * D;
    expect(p.decideUsage({ online: true, lastOnlineCheckAt: last })).toMatchObject({
      outcome: 'allow',
      offlineRemainingMs: null,
      validForMs: null,
    });
    expect(p.decideUsage({ online: false, lastOnlineCheckAt: last })).toMatchObject({
      outcome: 'allow',
      offlineRemainingMs: 4 * D,
      validForMs: 4 * D,
    });
    expect(p.decideUsage({ online: false, lastOnlineCheckAt: new Date(last).toISOString() }).offlineRemainingMs).toBe(
      4 * D,
    );
    await clock.advance(4 * D - 1);
    expect(p.decideUsage({ online: false, lastOnlineCheckAt: new Date(last) })).toMatchObject({
      outcome: 'allow',
      offlineRemainingMs: 1,
    });
    await clock.advance(1);
    const d = p.decideUsage({ online: false, lastOnlineCheckAt: last });
    expect(d).toMatchObject({
      outcome: 'deny',
      offlineRemainingMs: 0,
      rule: { path: 'spec.usage.offline.maxDuration' },
    });
    expect(d.reason).toMatch(/over the P14D allowed.*connect to the network/);
    expect(p.decideUsage({ online: false })).toMatchObject({ outcome: 'deny' });
    expect(p.decideUsage({ online: false }).reason).toMatch(/never an online check/);
  });

  it('denies offline use when it is not allowed at all', () => {
    const p = new PolicyEngine({
      workspace: workspace({ offline: { allowed: false } }),
      clock: { now: () => T0 },
    }).forSubject({});
    expect(p.decideUsage({ online: true }).outcome).toBe('allow');
    expect(p.decideUsage({ online: false, lastOnlineCheckAt: T0 })).toMatchObject({
      outcome: 'deny',
      rule: { path: 'spec.usage.offline.allowed' },
    });
  });

  it('reports the idle lock, lock on sleep, mode and session end', () => {
    const p = new PolicyEngine({
      workspace: workspace({ idleLock: 'PT15M', lockOnHostSleep: false, mode: 'revertible', onSessionEnd: 'revert' }),
      clock: { now: () => T0 },
    }).forSubject({});
    expect(p.decideUsage({ online: true, lastActivityAt: T0 - 5 * 60_000 })).toMatchObject({
      outcome: 'allow',
      idleLockMs: 15 * 60_000,
      idleLockInMs: 10 * 60_000,
      lockOnHostSleep: false,
      mode: 'revertible',
      onSessionEnd: 'revert',
    });
    expect(p.decideUsage({ online: true, lastActivityAt: T0 - H }).idleLockInMs).toBe(0);
    expect(p.decideUsage({ online: true }).idleLockInMs).toBeNull();
  });

  it('takes the decision time from the clock passed in, if any', () => {
    const p = new PolicyEngine({
      workspace: workspace({ expiresAt: '2026-06-02T00:00:00Z' }),
      clock: { now: () => T0 },
    }).forSubject({});
    expect(p.decideUsage({ online: true }, { now: () => T0 + 2 * D }).outcome).toBe('deny');
    expect(p.decideUsage({ online: true }).now).toBe('2026-06-01T00:00:00.000Z');
  });

  it('layers: the highest layer that sets a setting wins, setting by setting', () => {
    const layers: PolicyLayerInput[] = [
      { layer: 'machine-policy', source: 'gpo', policy: { usage: { idleLock: 'PT5M' } } },
      { layer: 'user-local', source: 'prefs', policy: { usage: { idleLock: 'PT1H', lockOnHostSleep: false } } },
    ];
    const p = new PolicyEngine({
      workspace: workspace({ idleLock: 'PT15M', expiresAt: '2027-01-01T00:00:00Z' }),
      layers,
      clock: { now: () => T0 },
    }).forSubject({});
    expect(p.usage.idleLock).toMatchObject({
      value: 'PT5M',
      layer: 'machine-policy',
      path: 'policy.usage.idleLock',
      source: 'gpo',
    });
    expect(p.usage.lockOnHostSleep).toMatchObject({ value: false, layer: 'user-local' });
    expect(p.usage.expiresAt).toMatchObject({ value: '2027-01-01T00:00:00Z', layer: 'package-default' });
    expect(p.usage.mode).toMatchObject({ value: 'persistent', layer: 'package-default' });
  });

  it('several groups: least or most restrictive per setting', () => {
    const layers = (merge: 'least-restrictive' | 'most-restrictive'): PolicyLayerInput[] => [
      { layer: 'machine-policy', policy: { merge: { usage: merge } } },
      {
        layer: 'user-policy',
        assignments: [
          {
            groups: ['a'],
            policy: {
              usage: {
                expiresAt: '2026-07-01T00:00:00Z',
                idleLock: 'PT30M',
                offline: { maxDuration: 'P2D' },
                mode: 'revertible',
              },
            },
          },
          {
            groups: ['b'],
            policy: {
              usage: {
                expiresAt: '2026-08-01T00:00:00Z',
                idleLock: 'PT10M',
                offline: { maxDuration: 'P7D' },
                mode: 'persistent',
              },
            },
          },
        ],
      },
    ];
    const subject = { user: 'u', groups: ['a', 'b'] };
    const least = new PolicyEngine({ workspace: workspace({}), layers: layers('least-restrictive') }).forSubject(
      subject,
    ).usage;
    expect([least.expiresAt?.value, least.idleLock?.value, least.offlineMaxDuration?.value, least.mode.value]).toEqual([
      '2026-08-01T00:00:00Z',
      'PT30M',
      'P7D',
      'persistent',
    ]);
    expect(least.expiresAt?.appliesTo).toBe('group b');
    const most = new PolicyEngine({ workspace: workspace({}), layers: layers('most-restrictive') }).forSubject(
      subject,
    ).usage;
    expect([most.expiresAt?.value, most.idleLock?.value, most.offlineMaxDuration?.value, most.mode.value]).toEqual([
      '2026-07-01T00:00:00Z',
      'PT10M',
      'P2D',
      'revertible',
    ]);
  });

  it('refuses an instant it cannot read', () => {
    const p = new PolicyEngine({
      workspace: workspace({ offline: { maxDuration: 'P1D' } }),
      clock: { now: () => T0 },
    }).forSubject({});
    let caught: unknown;
    try {
      p.decideUsage({ online: false, lastOnlineCheckAt: 'yesterday' });
    } catch (err) {
      caught = err;
    }
    expect(TandemError.is(caught, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((caught as Error).message).toMatch(/lastOnlineCheckAt "yesterday" is not an instant/);
  });
});

describe('reasons name a file source by its base name', () => {
  it('keeps the absolute path in the rule reference only', () => {
    const workspace = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  usage: { expiresAt: 2030-01-01T00:00:00Z, offline: { allowed: true, maxDuration: P14D } }
`);
    const engine = new PolicyEngine({
      workspace,
      workspaceSource: '/srv/endpoints/acme/workspaces/erp/tandem.workspace.yaml',
      clock: { now: () => Date.parse('2026-11-21T00:00:00Z') },
    });
    const d = engine.forSubject().decideUsage({ online: false, lastOnlineCheckAt: '2026-11-20T00:00:00Z' });
    expect(d.reason).not.toContain('/srv/endpoints');
    expect(d.reason.match(/\(tandem\.workspace\.yaml\)/g)).toHaveLength(2);
    expect(d.rule?.source).toBe('/srv/endpoints/acme/workspaces/erp/tandem.workspace.yaml');
  });
});
