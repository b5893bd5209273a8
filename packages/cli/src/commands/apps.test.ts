import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEventSink } from '@tandem/core';
import { parseDesktopFile, parseExecLine } from '@tandem/core/publishing';
import { cliHarness } from '../cli-harness.test-helper.js';
import { ExitCode } from '../exit-codes.js';

// A 1x1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

const workspace = (version: string, apps: string, dataTransfer = '[]', web = '') => `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: ${version} }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: linux
  display: { mode: seamless, frameColor: "#d9534f" }
  publishedApps: ${apps}
  dataTransfer: ${dataTransfer}
${web}`;

const ERP =
  '[{ id: erp, name: Legacy ERP, command: /opt/erp/bin/erp, startMenuFolder: Legacy, fileTypes: [.erp], icon: erp.png }, { id: notes, name: Notes, command: /usr/bin/notes }]';

let dir: string;
const tandem = cliHarness(() => join(dir, 'state'));
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-apps-'));
  writeFileSync(join(dir, 'erp.png'), PNG);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function up(version: string, apps = ERP, dataTransfer = '[]', web = ''): Promise<void> {
  writeFileSync(join(dir, 'erp.yaml'), workspace(version, apps, dataTransfer, web));
  const r = await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock');
  expect(r.code, r.stderr).toBe(ExitCode.ok);
}

const where = () => ['--data-home', join(dir, 'data'), '--config-home', join(dir, 'config')];

describe('tandem apps', () => {
  it('publish installs launchers that run tandem apps launch; a new version and unpublish remove exactly what was installed', async () => {
    await up('3.2.0');
    const pub = await tandem('--json', 'apps', 'publish', ...where(), '--exec', '/usr/local/bin/tandem');
    expect(pub.code, pub.stderr).toBe(0);
    const entry = parseDesktopFile(
      readFileSync(join(dir, 'data', 'applications', 'tandem-legacy-erp-erp.desktop'), 'utf8'),
    ).get('Desktop Entry')!;
    expect(parseExecLine(entry.get('Exec')!)).toEqual([
      '/usr/local/bin/tandem',
      'apps',
      'launch',
      '--workspace',
      'legacy-erp',
      'erp',
      '%F',
    ]);
    expect(existsSync(join(dir, 'data', 'icons', 'hicolor', '16x16', 'apps', 'tandem-legacy-erp-erp.png'))).toBe(true);
    const list = await tandem('--json', 'apps', 'list', '--data-home', join(dir, 'data'));
    expect(list.json.apps.map((a: { id: string; launcher: boolean }) => [a.id, a.launcher])).toEqual([
      ['erp', true],
      ['notes', true],
    ]);

    // Version 3.3.0 drops the notes app: republishing takes its launcher away.
    await up('3.3.0', '[{ id: erp, name: Legacy ERP, command: /opt/erp/bin/erp }]');
    const v2 = await tandem('--json', 'apps', 'publish', ...where());
    expect(v2.json.removed).toContain(join(dir, 'data', 'applications', 'tandem-legacy-erp-notes.desktop'));
    const mine = join(dir, 'data', 'applications', 'mine.desktop');
    writeFileSync(mine, '[Desktop Entry]\n');
    const un = await tandem('--json', 'apps', 'unpublish', ...where());
    expect(un.json.removed).toEqual([join(dir, 'data', 'applications', 'tandem-legacy-erp-erp.desktop')]);
    expect(readFileSync(mine, 'utf8')).toBe('[Desktop Entry]\n');
  });

  it('publish --windows-programs writes Start Menu shortcuts, and unpublish takes them away', async () => {
    await up('3.2.0');
    const programs = join(dir, 'Programs');
    const pub = await tandem('--json', 'apps', 'publish', '--windows-programs', programs);
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.json.written).toEqual(
      expect.arrayContaining([join(programs, 'Legacy', 'Legacy ERP.lnk'), join(programs, 'Notes.lnk')]),
    );
    expect(pub.json.written.every((f: string) => f.startsWith(programs) || f.startsWith(join(dir, 'state')))).toBe(
      true,
    );
    const un = await tandem('--json', 'apps', 'unpublish', '--windows-programs', programs);
    expect([...un.json.removed].sort()).toEqual([...pub.json.written].sort());
  });

  it('tandem down (deprovisioning) removes the launchers apps publish installed', async () => {
    await up('3.2.0');
    const saved = [process.env['XDG_DATA_HOME'], process.env['XDG_CONFIG_HOME']];
    process.env['XDG_DATA_HOME'] = join(dir, 'data');
    process.env['XDG_CONFIG_HOME'] = join(dir, 'config');
    try {
      const pub = await tandem('--json', 'apps', 'publish');
      expect(pub.code, pub.stderr).toBe(0);
      const down = await tandem('--json', 'down');
      expect(down.code, down.stderr).toBe(0);
      expect([...down.json.launchersRemoved].sort()).toEqual([...pub.json.written].sort());
    } finally {
      for (const [i, key] of ['XDG_DATA_HOME', 'XDG_CONFIG_HOME'].entries()) {
        if (saved[i] === undefined) delete process.env[key];
        else process.env[key] = saved[i];
      }
    }
  });

  it('launch starts the session and prints the transport command with its policy flags and frame', async () => {
    await up('3.2.0', ERP, '[{ channel: clipboard, direction: host-to-guest, action: allow }]');
    await tandem('stop', '--force');
    const r = await tandem('apps', 'launch', 'erp', '--no-wait');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^session started$/m);
    expect(r.stdout).toMatch(
      /erp: xpra: mock-seamless .*--border=#d9534f,2 --clipboard=yes --clipboard-direction=to-server --file-transfer=no/,
    );
    expect(r.stdout).toMatch(/^frame: #d9534f, drawn by xpra$/m);
    // Each decision is in the event store with its explanation.
    const store = new SqliteEventSink(join(dir, 'state', 'events.sqlite'));
    try {
      const reasons = store
        .query({ type: ['policy.decision'] })
        .map((e) => (e.type === 'policy.decision' ? e.data.subject : ''));
      expect(reasons).toContain('clipboard guest-to-host (text)');
    } finally {
      store.close();
    }
  });

  it('launch over RemoteApp says the frame is not drawn and names the window class', async () => {
    await up('3.2.0');
    const r = await tandem('--json', 'apps', 'launch', 'erp', '--transport', 'rdp-remoteapp', '--no-wait');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.frame.drawn).toBe(false);
    expect(r.json.windowClass).toBe('tandem-legacy-erp-erp');
    expect(r.json.argv).toEqual(expect.arrayContaining(['-clipboard', '/wm-class:tandem-legacy-erp-erp']));
  });

  it('launch of a Windows guest: notes that the policy inside the guest was not set; --guest-policy refuses without an agent', async () => {
    writeFileSync(
      join(dir, 'erp.yaml'),
      workspace('3.2.0', ERP, '[]', '').replace('guestOs: linux', 'guestOs: windows'),
    );
    expect((await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock')).code).toBe(ExitCode.ok);
    const noted = await tandem('--json', 'apps', 'launch', 'erp', '--transport', 'rdp-remoteapp', '--no-wait');
    expect(noted.code, noted.stderr).toBe(0);
    expect(noted.json.notes).toContainEqual({ channel: 'guest', note: expect.stringMatching(/not set/) });
    // The mock's guest channel has no agent behind it: the launch is refused before the app starts.
    const refused = await tandem(
      '--json',
      'apps',
      'launch',
      'erp',
      '--transport',
      'rdp-remoteapp',
      '--no-wait',
      '--guest-policy',
      '--guest-timeout',
      'PT1S',
    );
    expect(refused.code).not.toBe(0);
    expect(refused.json.error).toMatchObject({ code: 'TANDEM_POLICY_DENIED' });
    expect(refused.json.error.message).toMatch(/could not be set inside the guest/);
  });

  it('launch with host files: mapped into the shared folder when allowed, refused by the policy otherwise', async () => {
    const share = join(dir, 'share');
    mkdirSync(share);
    writeFileSync(join(share, 'q3.erp'), '');
    await up('3.2.0');
    const denied = await tandem(
      'apps',
      'launch',
      'erp',
      join(share, 'q3.erp'),
      '--shared-folder',
      `${share}=/mnt/host`,
      '--no-wait',
    );
    expect(denied.code).toBe(ExitCode.policyDenied);
    expect(denied.stderr).toMatch(/Opening host files in the guest is not allowed/);
    await up('3.2.1', ERP, '[{ channel: file, direction: host-to-guest, action: allow }]');
    const ok = await tandem(
      '--json',
      'apps',
      'launch',
      'erp',
      join(share, 'q3.erp'),
      '--shared-folder',
      `${share}=/mnt/host`,
      '--no-wait',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json.args).toEqual(['/mnt/host/q3.erp']);
  });
});

describe('tandem open', () => {
  const web = `  webRedirection:
    defaultTarget: host
    rules:
      - { id: intranet, match: { domainSuffix: intranet.example }, target: guest }
`;

  it('decides with the policy and records why, for tandem events', async () => {
    await up('3.2.0', ERP, '[]', web);
    const g = await tandem('--json', 'open', '--decide-only', 'http://erp.intranet.example/x');
    expect(g.json).toMatchObject({ target: 'guest', rule: 'intranet', opened: false });
    const h = await tandem('--json', 'open', '--decide-only', 'https://example.org/');
    expect(h.json.target).toBe('host');
    const ev = await tandem('events', '--type', 'policy.decision');
    expect(ev.stdout).toMatch(/policy: guest \(.*rule intranet/);
    expect(ev.stdout).toMatch(/policy: host \(no rule matches https:\/\/example.org\//);
  });

  it('opens a host decision in the real host browser, never in tandem itself', async () => {
    await up('3.2.0', ERP, '[]', web);
    const out = join(dir, 'opened');
    const browser = join(dir, 'browser.sh');
    writeFileSync(browser, `#!/bin/sh\nprintf '%s' "$1" > '${out}'\n`, { mode: 0o755 });
    const saved = process.env['TANDEM_HOST_BROWSER'];
    process.env['TANDEM_HOST_BROWSER'] = browser;
    try {
      const r = await tandem('open', 'https://example.org/page');
      expect(r.code, r.stderr).toBe(0);
      for (let i = 0; i < 2000 && !existsSync(out); i++) await new Promise((res) => setTimeout(res, 25));
      expect(readFileSync(out, 'utf8')).toBe('https://example.org/page');
      process.env['TANDEM_URL_OPENING'] = '1';
      const loop = await tandem('open', 'https://example.org/again');
      expect(loop.code).not.toBe(0);
      expect(loop.stderr).toMatch(/came back to tandem open/);
    } finally {
      delete process.env['TANDEM_URL_OPENING'];
      if (saved === undefined) delete process.env['TANDEM_HOST_BROWSER'];
      else process.env['TANDEM_HOST_BROWSER'] = saved;
    }
  });
});
