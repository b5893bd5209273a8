import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { validateWorkspace } from '../workspace/load.js';
import type { WorkspaceInput } from '../workspace/schema.js';
import { formatDecision, toDecisionEvent } from './decision.js';
import { PolicyEngine } from './engine.js';
import type { PolicyLayerInput } from './layers.js';

function workspace(webRedirection?: WorkspaceInput['spec']['webRedirection']) {
  return validateWorkspace({
    apiVersion: 'tandem/v1',
    kind: 'Workspace',
    metadata: { name: 'erp', version: '1.0.0' },
    spec: {
      image: { source: 'x.qcow2', format: 'qcow2' },
      hardware: { memory: { fixedMiB: 512 } },
      ...(webRedirection ? { webRedirection } : {}),
    },
  });
}

const PACKAGE = workspace({
  defaultTarget: 'host',
  rules: [
    { id: 'intranet', match: { domainSuffix: 'intranet.example' }, target: 'guest' },
    { id: 'hr-app', match: { host: 'hr.intranet.example' }, pathPrefix: '/app', target: 'guest' },
  ],
});

describe('web redirection through the layers', () => {
  it('without any web redirection configured, URLs stay where they were opened', () => {
    const d = new PolicyEngine({ workspace: workspace() }).forSubject({}).decideUrl('http://intranet.example/');
    expect(d).toMatchObject({ target: 'host', redirect: false, layer: 'built-in' });
    expect(d.reason).toMatch(/web redirection is off \(Tandem's default\)/);
  });

  it('a higher layer with a matching rule decides, even over a more specific rule below it', () => {
    const layers: PolicyLayerInput[] = [
      {
        layer: 'machine-policy',
        source: 'gpo',
        policy: { webRedirection: { rules: [{ id: 'lockdown', match: { domainSuffix: 'example' }, target: 'host' }] } },
      },
    ];
    const p = new PolicyEngine({ workspace: PACKAGE, layers }).forSubject({});
    const d = p.decideUrl('http://hr.intranet.example/app/x');
    expect(d).toMatchObject({
      target: 'host',
      redirect: false,
      layer: 'machine-policy',
      rule: { id: 'lockdown', source: 'gpo', path: 'policy.webRedirection.rules[0]' },
    });
    expect(p.decideUrl('http://other.test/')).toMatchObject({ target: 'host', layer: 'package-default' });
  });

  it('a layer without a matching rule falls through to the layers below', () => {
    const layers: PolicyLayerInput[] = [
      {
        layer: 'user-local',
        policy: { webRedirection: { rules: [{ match: { host: 'news.example' }, target: 'guest' }] } },
      },
    ];
    const p = new PolicyEngine({ workspace: PACKAGE, layers }).forSubject({});
    expect(p.decideUrl('http://a.intranet.example/')).toMatchObject({
      target: 'guest',
      redirect: true,
      layer: 'package-default',
      rule: { id: 'intranet' },
    });
    expect(p.decideUrl('http://news.example/')).toMatchObject({ target: 'guest', layer: 'user-local' });
  });

  it('the default target comes from the highest layer that sets it', () => {
    const layers: PolicyLayerInput[] = [
      { layer: 'user-policy', source: 'server', policy: { webRedirection: { defaultTarget: 'guest' } } },
    ];
    const d = new PolicyEngine({ workspace: PACKAGE, layers }).forSubject({}).decideUrl('http://elsewhere.test/');
    expect(d).toMatchObject({
      target: 'guest',
      redirect: true,
      layer: 'user-policy',
      rule: { path: 'policy.webRedirection.defaultTarget' },
    });
  });

  it('both directions: guest-to-host only when switched on (MED-V v1)', () => {
    const off = new PolicyEngine({ workspace: PACKAGE }).forSubject({});
    const d = off.decideUrl('http://elsewhere.test/', { from: 'guest' });
    expect(d).toMatchObject({ openedOn: 'guest', target: 'guest', redirect: false, direction: 'guest-to-host' });
    expect(d.reason).toMatch(/guestToHost false/);
    const on = new PolicyEngine({
      workspace: workspace({
        guestToHost: true,
        rules: [{ match: { domainSuffix: 'intranet.example' }, target: 'guest' }],
      }),
    }).forSubject({});
    expect(on.decideUrl('http://elsewhere.test/', { from: 'guest' })).toMatchObject({ target: 'host', redirect: true });
    expect(on.decideUrl('http://a.intranet.example/', { from: 'guest' })).toMatchObject({
      target: 'guest',
      redirect: false,
    });
    const noH2g = new PolicyEngine({
      workspace: workspace({
        hostToGuest: false,
        guestToHost: true,
        rules: [{ match: { domainSuffix: 'intranet.example' }, target: 'guest' }],
      }),
    }).forSubject({});
    expect(noH2g.decideUrl('http://a.intranet.example/')).toMatchObject({ target: 'host', redirect: false });
  });

  it('rules for one direction only', () => {
    const p = new PolicyEngine({
      workspace: workspace({
        guestToHost: true,
        defaultTarget: 'guest',
        rules: [{ id: 'video', match: { domainSuffix: 'video.example' }, direction: 'guest-to-host', target: 'host' }],
      }),
    }).forSubject({});
    expect(p.decideUrl('http://video.example/', { from: 'guest' })).toMatchObject({
      target: 'host',
      redirect: true,
      rule: { id: 'video' },
    });
    expect(p.decideUrl('http://video.example/', { from: 'host' })).toMatchObject({
      target: 'guest',
      redirect: true,
      rule: { path: 'spec.webRedirection.defaultTarget' },
    });
  });

  it('assignments for groups, merged most-specific or first', () => {
    const layers = (merge?: 'first'): PolicyLayerInput[] => [
      ...(merge ? [{ layer: 'machine-policy' as const, policy: { merge: { webRedirection: merge } } }] : []),
      {
        layer: 'user-policy',
        assignments: [
          {
            groups: ['staff'],
            policy: {
              webRedirection: { rules: [{ id: 'staff', match: { domainSuffix: 'example' }, target: 'host' }] },
            },
          },
          {
            groups: ['erp'],
            policy: {
              webRedirection: { rules: [{ id: 'erp', match: { domainSuffix: 'erp.example' }, target: 'guest' }] },
            },
          },
        ],
      },
    ];
    const both = { user: 'u', groups: ['staff', 'erp'] };
    const specific = new PolicyEngine({ workspace: PACKAGE, layers: layers() });
    expect(specific.forSubject(both).decideUrl('http://erp.example/')).toMatchObject({
      target: 'guest',
      rule: { id: 'erp', appliesTo: 'group erp' },
    });
    expect(specific.forSubject({ groups: ['staff'] }).decideUrl('http://erp.example/')).toMatchObject({
      target: 'host',
      rule: { id: 'staff' },
    });
    expect(specific.forSubject({ groups: [] }).decideUrl('http://erp.example/')).toMatchObject({
      target: 'host',
      layer: 'package-default',
    });
    const first = new PolicyEngine({ workspace: PACKAGE, layers: layers('first') });
    expect(first.forSubject(both).decideUrl('http://erp.example/')).toMatchObject({
      target: 'host',
      rule: { id: 'staff' },
    });
  });

  it('a URL that cannot be parsed is an error, never a redirect', () => {
    const p = new PolicyEngine({ workspace: workspace({ defaultTarget: 'guest' }) }).forSubject({});
    for (const bad of ['intranet.example', 'http://a b/', 'javascript:alert(1)']) {
      let caught: unknown;
      try {
        p.decideUrl(bad);
      } catch (err) {
        caught = err;
      }
      expect(TandemError.is(caught, 'TANDEM_INVALID_INPUT')).toBe(true);
    }
  });
});

describe('compiled matchers per subject', () => {
  it('are shared by subjects to whom the same documents apply, and stay right past the cache size', () => {
    const assignments = Array.from({ length: 100 }, (_, i) => ({
      users: [`user${i}`],
      policy: { webRedirection: { rules: [{ match: { host: `app${i}.example` }, target: 'guest' as const }] } },
    }));
    const engine = new PolicyEngine({ workspace: PACKAGE, layers: [{ layer: 'user-policy', assignments }] });
    expect(engine.forSubject({ user: 'nobody' }).web).toBe(engine.forSubject({ user: 'someone', groups: ['x'] }).web);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 100; i++) {
        const p = engine.forSubject({ user: `user${i}` });
        expect(p.decideUrl(`http://app${i}.example/`).target).toBe('guest');
        expect(p.decideUrl(`http://app${(i + 1) % 100}.example/`).target).toBe('host');
      }
    }
  });
});

describe('site lists in the engine', () => {
  const xml =
    '<site-list version="3"><site url="legacy.example"><open-in>IE11</open-in></site><site url="x.example/*"><open-in>IE11</open-in></site></site-list>';

  it('imports the referenced list after the explicit rules and reports what it could not map', () => {
    const ws = workspace({
      enterpriseSiteList: 'sites.xml',
      rules: [{ id: 'keep-home', match: { host: 'www.legacy.example' }, target: 'host' }],
    });
    const engine = new PolicyEngine({ workspace: ws, siteLists: { 'sites.xml': xml } });
    expect(engine.siteLists).toEqual([
      {
        reference: 'sites.xml',
        referencedBy: 'workspace erp spec',
        version: '3',
        imported: 1,
        unmapped: [{ url: 'x.example/*', line: 1, reason: expect.stringMatching(/wildcards/) }],
      },
    ]);
    const p = engine.forSubject({});
    expect(p.decideUrl('http://app.legacy.example/')).toMatchObject({
      target: 'guest',
      rule: { label: 'sites.xml:1', text: 'site legacy.example open-in IE11 -> guest' },
    });
    expect(p.decideUrl('http://www.legacy.example/')).toMatchObject({ target: 'host', rule: { id: 'keep-home' } });
  });

  it('says what to do when a referenced list was not given', () => {
    expect(() => new PolicyEngine({ workspace: workspace({ enterpriseSiteList: 'sites.xml' }) })).toThrow(
      /the site list "sites.xml" was not provided; load the policy with loadPolicy\(\)/,
    );
  });
});

describe('bad layers', () => {
  it('names the source and the path of every problem', () => {
    const layers = [
      {
        layer: 'machine-policy',
        source: 'gpo.yaml',
        policy: {
          webRedirection: { rules: [{ match: { domainSuffix: '*.x.com' }, target: 'guest' }] },
          dataTransfer: [{ channel: 'clipboard', direction: 'any', action: 'maybe' }],
          usage: { idleLok: 'PT1M' },
        },
      },
    ];
    let caught: unknown;
    try {
      new PolicyEngine({ workspace: PACKAGE, layers: layers as never });
    } catch (err) {
      caught = err;
    }
    expect(TandemError.is(caught, 'TANDEM_INVALID_INPUT')).toBe(true);
    const message = (caught as Error).message;
    expect(message).toMatch(/^gpo.yaml is not a valid policy layer:/);
    expect(message).toMatch(
      /gpo.yaml: policy.webRedirection.rules\[0\].match.domainSuffix: domainSuffix takes a domain without a wildcard/,
    );
    expect(message).toMatch(/gpo.yaml: policy.dataTransfer\[0\].action: /);
    expect(message).toMatch(/gpo.yaml: policy.usage: unknown key "idleLok"/);
  });

  it('refuses an unknown layer and an assignment for nobody', () => {
    expect(() => new PolicyEngine({ workspace: PACKAGE, layers: [{ layer: 'package-default' as never }] })).toThrow(
      /is not a policy layer/,
    );
    expect(
      () =>
        new PolicyEngine({
          workspace: PACKAGE,
          layers: [{ layer: 'user-policy', source: 's', assignments: [{ policy: {} }] }],
        }),
    ).toThrow(/s: assignments\[0\].users: expected at least one user or group/);
  });
});

describe('explained decisions', () => {
  it('turn into policy.decision events and readable lines', () => {
    const engine = new PolicyEngine({ workspace: PACKAGE });
    const d = engine.explain({ user: 'alice' }, { url: 'HTTP://HR.Intranet.Example/app/x' });
    expect(toDecisionEvent(d)).toEqual({
      kind: 'url',
      subject: 'http://hr.intranet.example/app/x',
      outcome: 'guest',
      rule: 'hr-app',
      layer: 'package-default',
      reason:
        'http://hr.intranet.example/app/x opens in the guest: rule hr-app (host hr.intranet.example, path /app -> guest) for everyone in package-default (workspace erp) is the strongest match',
    });
    expect(formatDecision(d)).toEqual([
      'decision: guest (redirect from the host)',
      'url: HTTP://HR.Intranet.Example/app/x (compared as http://hr.intranet.example/app/x)',
      'rule: hr-app (spec.webRedirection.rules[1]): host hr.intranet.example, path /app -> guest',
      'layer: package-default (workspace erp), for everyone',
      `why: ${d.reason}`,
    ]);
    const t = engine.explain({}, { transfer: { channel: 'print', direction: 'guest-to-host' } });
    expect(toDecisionEvent(t)).toMatchObject({
      kind: 'transfer',
      subject: 'print guest-to-host',
      outcome: 'deny',
      layer: 'built-in',
    });
    expect(engine.explain({ user: 'x' }, { provisioning: true }).kind).toBe('provisioning');
    expect(engine.explain({}, { usage: { online: true } }).kind).toBe('usage');
  });
});
