import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { PolicyEngine } from '../policy/engine.js';
import { parseWorkspace } from '../workspace/load.js';
import {
  assertNotLooping,
  findHostBrowser,
  guestUrlOpener,
  openHostUrl,
  openInHostBrowser,
  OPENING_ENV,
} from './url-open.js';

const policy = new PolicyEngine({
  workspace: parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 3.2.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  webRedirection:
    defaultTarget: host
    guestToHost: true
    rules:
      - { id: intranet, match: { domainSuffix: intranet.example }, target: guest }
`),
}).forSubject({});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-url-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('tandem open: web redirection host to guest', () => {
  it('sends an intranet URL to the guest and others to the host browser, each decision an explained event', async () => {
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const host: string[] = [];
    const guest: string[] = [];
    const targets = {
      openOnHost: async (u: string) => void host.push(u),
      openInGuest: async (u: string) => void guest.push(u),
    };
    const a = await openHostUrl('http://erp.intranet.example/app', policy, targets, {
      events,
      context: { workspace: 'legacy-erp' },
    });
    const b = await openHostUrl('https://example.org/', policy, targets, { events });
    expect([a.openedIn, b.openedIn]).toEqual(['guest', 'host']);
    expect(guest).toEqual(['http://erp.intranet.example/app']);
    expect(host).toEqual(['https://example.org/']);
    const reasons = seen.map((e) => (e.type === 'policy.decision' ? `${e.data.outcome}: ${e.data.reason}` : ''));
    expect(reasons[0]).toMatch(/^guest: .*rule intranet/);
    expect(reasons[1]).toMatch(/^host: no rule matches .*default target host/);
    expect(seen[0]?.workspace).toBe('legacy-erp');
  });

  it('a URL the guest forwards opens on the host only when its decision says host', async () => {
    const opened: string[] = [];
    const onUrlToHost = guestUrlOpener(async (u) => void opened.push(u));
    onUrlToHost('https://example.org/', policy.decideUrl('https://example.org/', { from: 'guest' }));
    onUrlToHost('http://erp.intranet.example/', policy.decideUrl('http://erp.intranet.example/', { from: 'guest' }));
    await Promise.resolve();
    expect(opened).toEqual(['https://example.org/']);
  });
});

describe('the host browser: never Tandem itself', () => {
  it('skips tandem and the desktop default handler, and finds a browser on PATH', () => {
    writeFileSync(join(dir, 'firefox-esr'), '#!/bin/sh\n');
    chmodSync(join(dir, 'firefox-esr'), 0o755);
    const b = findHostBrowser({ BROWSER: 'xdg-open:/usr/bin/tandem', PATH: dir });
    expect(b).toEqual({ argv: [join(dir, 'firefox-esr')], source: 'PATH' });
    expect(findHostBrowser({ TANDEM_HOST_BROWSER: '/opt/b/browser --new-window', PATH: '' }).argv).toEqual([
      '/opt/b/browser',
      '--new-window',
    ]);
    expect(() => findHostBrowser({ BROWSER: 'tandem', PATH: '' })).toThrow(/No host browser found.*hand the URL back/);
  });

  it('refuses a URL the browser it started handed back', () => {
    expect(() => assertNotLooping('https://x/', { [OPENING_ENV]: '1' })).toThrow(/came back to tandem open/);
    expect(() => assertNotLooping('https://x/', {})).not.toThrow();
  });
});

describe('openInHostBrowser', () => {
  it('starts the browser with the URL as one argument and the loop marker set', async () => {
    const out = join(dir, 'out');
    const script = join(dir, 'browser');
    writeFileSync(script, `#!/bin/sh\nprintf '%s|%s' "$1" "$${OPENING_ENV}" > ${JSON.stringify(out)}\n`);
    chmodSync(script, 0o755);
    await openInHostBrowser("https://example.org/a b?x='1';$(reboot)", { argv: [script], source: 'test' });
    let text = '';
    for (let i = 0; i < 2000 && text === ''; i++) {
      await new Promise((r) => setTimeout(r, 25));
      text = existsSync(out) ? readFileSync(out, 'utf8') : '';
    }
    expect(text).toBe("https://example.org/a b?x='1';$(reboot)|1");
  });
});
