import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../exit-codes.js';
import { cliHarness } from '../cli-harness.test-helper.js';

const WORKSPACE = `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  webRedirection:
    defaultTarget: host
    enterpriseSiteList: sites.xml
    rules:
      - { id: intranet, match: { domainSuffix: intranet.example }, target: guest }
  dataTransfer:
    - { id: clip-in, channel: clipboard, direction: host-to-guest, action: allow }
    - { channel: file, direction: any, action: ask }
  usage:
    expiresAt: 2027-06-30T00:00:00Z
    offline: { allowed: true, maxDuration: P14D }
  provisioning:
    groups: ["CN=ERP Users,OU=Groups,DC=corp,DC=example"]
`;

const SITES = `<site-list version="7">
  <site url="legacy.example"><open-in>IE11</open-in></site>
  <site url="*.bad.example"><open-in>IE11</open-in></site>
</site-list>`;

const MACHINE = `
apiVersion: tandem/v1
kind: PolicyLayer
layer: machine-policy
policy:
  dataTransfer:
    - { id: dlp, channel: clipboard, direction: guest-to-host, action: deny }
assignments:
  - groups: [Finance]
    policy:
      webRedirection:
        rules:
          - { id: finance-portal, match: { host: portal.example }, target: guest }
`;

const TABLE = `
apiVersion: tandem/v1
kind: PolicyTest
workspace: erp.yaml
layers: [machine.yaml]
now: 2026-06-01T00:00:00Z
cases:
  - { name: intranet in the guest, url: "http://a.intranet.example/x", expect: { outcome: guest, rule: intranet, layer: package-default } }
  - { url: "http://app.legacy.example/", expect: { outcome: guest, rule: "sites.xml:2" } }
  - { url: "http://portal.example/", groups: [finance], expect: { outcome: guest, rule: finance-portal, layer: machine-policy } }
  - { url: "http://portal.example/", expect: { outcome: host, rule: spec.webRedirection.defaultTarget } }
  - { url: "not a url", expect: { outcome: error } }
  - { transfer: { channel: clipboard, direction: guest-to-host }, expect: { outcome: deny, rule: dlp } }
  - { transfer: { channel: usb, direction: host-to-guest }, expect: { outcome: deny, rule: null, layer: built-in } }
  - { usage: { online: false, lastOnlineCheck: 2026-05-25T00:00:00Z }, expect: { outcome: allow } }
  - { usage: { now: 2027-07-01T00:00:00Z }, expect: { outcome: deny, rule: spec.usage.expiresAt } }
  - { provisioning: true, user: bob, groups: ["cn=erp users,ou=groups,dc=corp,dc=example"], expect: { outcome: allow } }
`;

let dir: string;
const tandem = cliHarness(() => join(dir, 'state'));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-policy-'));
  writeFileSync(join(dir, 'erp.yaml'), WORKSPACE);
  writeFileSync(join(dir, 'sites.xml'), SITES);
  writeFileSync(join(dir, 'machine.yaml'), MACHINE);
  writeFileSync(join(dir, 'policy.test.yaml'), TABLE);
});

describe('tandem policy explain', () => {
  it('explains where a URL opens: the rule, the layer and why', async () => {
    const r = await tandem('policy', 'explain', join(dir, 'erp.yaml'), '--url', 'HTTP://A.Intranet.Example./x');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('decision: guest (redirect from the host)');
    expect(r.stdout).toContain('url: HTTP://A.Intranet.Example./x (compared as http://a.intranet.example/x)');
    expect(r.stdout).toContain('rule: intranet (spec.webRedirection.rules[0]): domainSuffix intranet.example -> guest');
    expect(r.stdout).toMatch(/layer: package-default \(.*erp\.yaml\), for everyone/);
    expect(r.stderr).toContain('site list');
    expect(r.stderr).toMatch(/sites\.xml:3: \*\.bad\.example: wildcards are not part/);
  });

  it('uses layers, users and groups', async () => {
    const args = ['--json', 'policy', 'explain', join(dir, 'erp.yaml'), '--layer', join(dir, 'machine.yaml')];
    const finance = await tandem(
      ...args,
      '--user',
      'alice',
      '--group',
      'Finance',
      '--url',
      'http://portal.example/',
      '--from',
      'host',
    );
    expect(finance.json).toMatchObject({
      kind: 'url',
      target: 'guest',
      redirect: true,
      layer: 'machine-policy',
      rule: { id: 'finance-portal', appliesTo: 'group Finance' },
    });
    const other = await tandem(...args, '--user', 'alice', '--url', 'http://portal.example/');
    expect(other.json).toMatchObject({ target: 'host', layer: 'package-default' });
    const clip = await tandem(
      ...args,
      '--transfer',
      'clipboard',
      '--direction',
      'guest-to-host',
      '--content-type',
      'text',
    );
    expect(clip.json).toMatchObject({
      kind: 'transfer',
      outcome: 'deny',
      layer: 'machine-policy',
      rule: { id: 'dlp' },
    });
  });

  it('explains transfers, usage and provisioning', async () => {
    const ws = join(dir, 'erp.yaml');
    const file = await tandem(
      'policy',
      'explain',
      ws,
      '--transfer',
      'file',
      '--direction',
      'guest-to-host',
      '--size',
      '1024',
    );
    expect(file.stdout).toContain('decision: ask (ask the user for this one transfer; no answer is deny)');
    const usage = await tandem(
      '--json',
      'policy',
      'explain',
      ws,
      '--usage',
      '--now',
      '2026-06-01T00:00:00Z',
      '--offline',
      '--last-online',
      '2026-05-20T00:00:00Z',
    );
    expect(usage.json).toMatchObject({
      kind: 'usage',
      outcome: 'allow',
      offlineRemainingMs: 2 * 86_400_000,
      now: '2026-06-01T00:00:00.000Z',
    });
    const late = await tandem(
      'policy',
      'explain',
      ws,
      '--usage',
      '--now',
      '2026-06-10T00:00:00Z',
      '--offline',
      '--last-online',
      '2026-05-20T00:00:00Z',
    );
    expect(late.stdout).toContain('decision: deny');
    expect(late.stdout).toMatch(/FAIL offline: offline for 21d, over the P14D allowed/);
    const prov = await tandem('policy', 'explain', ws, '--provisioning', '--user', 'bob', '--group', 'Sales');
    expect(prov.stdout).toContain('decision: deny');
    expect(prov.stdout).toContain('why: user bob (groups Sales) is not listed in spec.provisioning');
  });

  it('refuses a bad question with exit 3', async () => {
    const ws = join(dir, 'erp.yaml');
    const none = await tandem('policy', 'explain', ws);
    expect(none.code).toBe(ExitCode.invalidInput);
    expect(none.stderr).toMatch(/Ask exactly one question/);
    const noScheme = await tandem('policy', 'explain', ws, '--url', 'intranet.example');
    expect(noScheme.code).toBe(ExitCode.invalidInput);
    expect(noScheme.stderr).toMatch(/Cannot decide on URL "intranet.example": it has no scheme/);
    expect((await tandem('policy', 'explain', ws, '--transfer', 'fax', '--direction', 'host-to-guest')).code).toBe(
      ExitCode.invalidInput,
    );
    expect((await tandem('policy', 'explain', ws, '--usage', '--now', 'tomorrow')).code).toBe(ExitCode.invalidInput);
    expect((await tandem('policy', 'explain', join(dir, 'missing.yaml'), '--provisioning')).code).toBe(
      ExitCode.notFound,
    );
  });
});

describe('tandem policy test', () => {
  it('passes a table of expected decisions', async () => {
    const r = await tandem('policy', 'test', join(dir, 'policy.test.yaml'));
    expect(r.stdout).toContain('10 of 10 cases as expected');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('ok   1. intranet in the guest');
  });

  it('exits 10 and says what differed when a case fails', async () => {
    writeFileSync(
      join(dir, 'policy.test.yaml'),
      TABLE.replace(
        '{ outcome: guest, rule: intranet, layer: package-default }',
        '{ outcome: host, layer: machine-policy }',
      ),
    );
    const r = await tandem('--json', 'policy', 'test', join(dir, 'policy.test.yaml'));
    expect(r.code).toBe(ExitCode.checkFailed);
    expect(r.json).toMatchObject({ passed: 9, failed: 1 });
    expect(r.json.results[0]).toMatchObject({
      passed: false,
      outcome: 'guest',
      rule: 'intranet',
      layer: 'package-default',
    });
    expect(r.json.results[0].failures).toEqual([
      expect.stringMatching(/^expected host, got guest/),
      'expected layer machine-policy, got package-default',
    ]);
    expect(r.stderr).toContain('1 of 10 policy test cases did not decide as expected');
  });

  it('refuses a malformed table with exit 3, naming the line', async () => {
    writeFileSync(
      join(dir, 'bad.yaml'),
      'apiVersion: tandem/v1\nkind: PolicyTest\nworkspace: erp.yaml\ncases:\n  - { url: "http://x/", expect: { outcome: maybe } }\n',
    );
    const r = await tandem('policy', 'test', join(dir, 'bad.yaml'));
    expect(r.code).toBe(ExitCode.invalidInput);
    expect(r.stderr).toMatch(
      /bad\.yaml is not a valid policy test table:\n\s+.*bad\.yaml:5: cases\[0\]\.expect\.outcome: /,
    );
  });
});
