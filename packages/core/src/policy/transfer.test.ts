import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { validateWorkspace } from '../workspace/load.js';
import type { WorkspaceInput } from '../workspace/schema.js';
import { PolicyEngine } from './engine.js';
import type { PolicyLayerInput } from './layers.js';

function workspace(dataTransfer: NonNullable<WorkspaceInput['spec']['dataTransfer']>) {
  return validateWorkspace({
    apiVersion: 'tandem/v1',
    kind: 'Workspace',
    metadata: { name: 'erp', version: '1.0.0' },
    spec: { image: { source: 'x.qcow2', format: 'qcow2' }, hardware: { memory: { fixedMiB: 512 } }, dataTransfer },
  });
}

describe('data transfer decisions', () => {
  it('denies by default, naming no rule', () => {
    const d = new PolicyEngine({ workspace: workspace([]) })
      .forSubject({ user: 'alice' })
      .decideTransfer({ channel: 'usb', direction: 'host-to-guest' });
    expect(d).toMatchObject({ kind: 'transfer', outcome: 'deny', layer: 'built-in' });
    expect(d.rule).toBeUndefined();
    expect(d.reason).toMatch(/no rule in any layer applies to usb host-to-guest: default deny/);
  });

  it('reads rules top to bottom: the first that applies decides', () => {
    const p = new PolicyEngine({
      workspace: workspace([
        { id: 'no-files', channel: 'clipboard', direction: 'any', action: 'deny', when: { contentType: ['files'] } },
        { id: 'clip', channel: 'clipboard', direction: 'any', action: 'allow' },
        { id: 'never-reached', channel: 'clipboard', direction: 'host-to-guest', action: 'deny' },
      ]),
    }).forSubject({});
    expect(p.decideTransfer({ channel: 'clipboard', direction: 'host-to-guest', contentType: 'files' })).toMatchObject({
      outcome: 'deny',
      rule: { id: 'no-files', path: 'spec.dataTransfer[0]' },
    });
    expect(p.decideTransfer({ channel: 'clipboard', direction: 'host-to-guest', contentType: 'text' })).toMatchObject({
      outcome: 'allow',
      rule: { id: 'clip' },
    });
    expect(p.decideTransfer({ channel: 'clipboard', direction: 'guest-to-host' })).toMatchObject({
      outcome: 'allow',
      rule: { id: 'clip' },
    });
  });

  it('applies size limits, and a transfer of unknown size does not meet one', () => {
    const p = new PolicyEngine({
      workspace: workspace([
        { channel: 'file', direction: 'host-to-guest', action: 'allow', when: { maxBytes: 1_000_000 } },
        { channel: 'file', direction: 'any', action: 'ask' },
      ]),
    }).forSubject({});
    expect(p.decideTransfer({ channel: 'file', direction: 'host-to-guest', sizeBytes: 1_000_000 }).outcome).toBe(
      'allow',
    );
    expect(p.decideTransfer({ channel: 'file', direction: 'host-to-guest', sizeBytes: 1_000_001 }).outcome).toBe('ask');
    expect(p.decideTransfer({ channel: 'file', direction: 'host-to-guest' }).outcome).toBe('ask');
    expect(p.decideTransfer({ channel: 'print', direction: 'guest-to-host' }).outcome).toBe('deny');
  });

  it('matches any channel, and vendor channels', () => {
    const p = new PolicyEngine({
      workspace: workspace([
        { channel: 'x-scanner', direction: 'guest-to-host', action: 'allow' },
        { channel: 'any', direction: 'guest-to-host', action: 'deny' },
        { channel: 'any', direction: 'any', action: 'ask' },
      ]),
    }).forSubject({});
    expect(p.decideTransfer({ channel: 'x-scanner', direction: 'guest-to-host' }).outcome).toBe('allow');
    expect(p.decideTransfer({ channel: 'audio', direction: 'guest-to-host' }).outcome).toBe('deny');
    expect(p.decideTransfer({ channel: 'smartcard', direction: 'host-to-guest' }).outcome).toBe('ask');
  });

  it('a higher layer with an applicable rule decides; one without falls through', () => {
    const layers: PolicyLayerInput[] = [
      {
        layer: 'machine-policy',
        source: 'gpo',
        policy: { dataTransfer: [{ id: 'dlp', channel: 'clipboard', direction: 'guest-to-host', action: 'deny' }] },
      },
      {
        layer: 'user-local',
        source: 'prefs',
        policy: { dataTransfer: [{ id: 'mine', channel: 'clipboard', direction: 'any', action: 'allow' }] },
      },
    ];
    const p = new PolicyEngine({
      workspace: workspace([{ channel: 'any', direction: 'any', action: 'ask' }]),
      layers,
    }).forSubject({});
    expect(p.decideTransfer({ channel: 'clipboard', direction: 'guest-to-host' })).toMatchObject({
      outcome: 'deny',
      layer: 'machine-policy',
      rule: { id: 'dlp', source: 'gpo', path: 'policy.dataTransfer[0]' },
    });
    expect(p.decideTransfer({ channel: 'clipboard', direction: 'host-to-guest' })).toMatchObject({
      outcome: 'allow',
      layer: 'user-local',
    });
    expect(p.decideTransfer({ channel: 'file', direction: 'host-to-guest' })).toMatchObject({
      outcome: 'ask',
      layer: 'package-default',
    });
  });

  describe('a user in several groups', () => {
    const layer = (merge?: 'least-restrictive' | 'most-restrictive' | 'first'): PolicyLayerInput[] => [
      ...(merge ? [{ layer: 'machine-policy' as const, policy: { merge: { dataTransfer: merge } } }] : []),
      {
        layer: 'user-policy',
        source: 'server',
        assignments: [
          {
            groups: ['Contractors'],
            policy: { dataTransfer: [{ channel: 'clipboard', direction: 'any', action: 'deny' }] },
          },
          {
            groups: ['CN=ERP Users,OU=Groups,DC=corp,DC=example'],
            policy: { dataTransfer: [{ channel: 'clipboard', direction: 'any', action: 'allow' }] },
          },
          { users: ['alice'], policy: { dataTransfer: [{ channel: 'clipboard', direction: 'any', action: 'ask' }] } },
        ],
      },
    ];
    const req = { channel: 'clipboard' as const, direction: 'guest-to-host' as const };
    const subject = { user: 'Alice', groups: ['contractors', 'ERP Users'] };

    it('least restrictive by default (MED-V v1): allow over ask over deny', () => {
      const d = new PolicyEngine({ workspace: workspace([]), layers: layer() }).forSubject(subject).decideTransfer(req);
      expect(d).toMatchObject({
        outcome: 'allow',
        layer: 'user-policy',
        rule: { path: 'assignments[1].policy.dataTransfer[0]', appliesTo: 'group ERP Users' },
      });
      expect(d.considered.map((c) => c.action)).toEqual(['deny', 'allow', 'ask']);
      expect(d.reason).toMatch(
        /least-restrictive merge over 3 assignments chose it over deny for group contractors, ask for user Alice/,
      );
    });

    it('most restrictive when the policy says so', () => {
      const d = new PolicyEngine({ workspace: workspace([]), layers: layer('most-restrictive') })
        .forSubject(subject)
        .decideTransfer(req);
      expect(d).toMatchObject({ outcome: 'deny', rule: { appliesTo: 'group contractors' } });
    });

    it('first listed assignment when the policy says so', () => {
      const engine = new PolicyEngine({ workspace: workspace([]), layers: layer('first') });
      expect(engine.mergeRules.dataTransfer).toBe('first');
      expect(engine.forSubject({ user: 'alice', groups: ['ERP Users'] }).decideTransfer(req).outcome).toBe('allow');
      expect(engine.forSubject(subject).decideTransfer(req).outcome).toBe('deny');
    });

    it('only the assignments that apply count', () => {
      const p = new PolicyEngine({ workspace: workspace([]), layers: layer() }).forSubject({
        user: 'bob',
        groups: ['Contractors'],
      });
      expect(p.decideTransfer(req)).toMatchObject({ outcome: 'deny', rule: { appliesTo: 'group Contractors' } });
    });
  });

  it('refuses a request it cannot read', () => {
    const p = new PolicyEngine({ workspace: workspace([]) }).forSubject({});
    const bad = [
      { channel: 'fax', direction: 'host-to-guest' },
      { channel: 'clipboard', direction: 'any' },
      { channel: 'clipboard', direction: 'host-to-guest', contentType: 'video' },
      { channel: 'file', direction: 'host-to-guest', sizeBytes: -1 },
    ];
    for (const r of bad) {
      let caught: unknown;
      try {
        p.decideTransfer(r as never);
      } catch (err) {
        caught = err;
      }
      expect(TandemError.is(caught, 'TANDEM_INVALID_INPUT')).toBe(true);
      expect((caught as Error).message).toMatch(/is not a (transfer channel|transfer direction|content type|size)/);
    }
  });
});
