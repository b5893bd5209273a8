// The management console in a real browser: Debian's Chromium driven by playwright-core, against
// a real server (PostgreSQL store, a real slapd behind the LDAP directory) serving the console
// that vite built. Endpoints are ManagementClient devices checking in over HTTP.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openEndpointKeys } from '@tandem/core/crypto';
import { DIRECTORY_FIXTURE, slapdProblem, startSlapd, type TestSlapd } from '@tandem/core/identity/testing';
import { ManagementClient, ManagementError } from '@tandem/core/management';
import { parsePolicyLayer } from '@tandem/core/policy';
import { integrationGate } from '@tandem/core/testing';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvents } from './api.test-helper.js';
import { ADMIN_TOKEN_FILE, initServerDirectory, openDeployment, type Deployment } from './deployment.js';
import { POSTGRES_URL, TestSchema, postgresGate } from './store/postgres-test-db.test-helper.js';

const CHROMIUM = '/usr/bin/chromium';
const CONSOLE_DIR = fileURLToPath(new URL('../console/dist', import.meta.url));
// As /work/.library/env/machines/node.md's "known to work" launch: no background networking
// (this machine's closed network refuses it), no GPU, no sandbox (CI runs as root).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PW = DIRECTORY_FIXTURE.password;
// Every wait is for a condition; the limit is generous for CI beside stress-ng on two cores.
const WAIT = { timeout: 60_000 };

const browserGate = await integrationGate(
  'chromium',
  () => (existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing`),
  "apt-get install chromium (the .ci/run step does; Debian's, no browser download)",
);
const pgGate = await postgresGate();
const ldapGate = await integrationGate(
  'slapd',
  slapdProblem,
  'apt-get install slapd ldap-utils (the .ci/run step does)',
);
const enabled = browserGate.enabled && pgGate.enabled && ldapGate.enabled;

const axeSource = enabled ? await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8') : '';

async function buildConsoleIfMissing(): Promise<void> {
  if (existsSync(join(CONSOLE_DIR, 'index.html'))) return;
  // `npm run build` and `npm test` build it first; a lone run of this file builds it here.
  const { build } = await import('vite');
  await build({ configFile: fileURLToPath(new URL('../console/vite.config.ts', import.meta.url)), logLevel: 'warn' });
}

/** No axe-core violation on the page as it is now (axe runs through CDP, outside the page's CSP). */
async function expectAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: unknown[] }> } }).axe;
    const r = await axe.run();
    return r.violations as { id: string; help: string; nodes: { target: string[] }[] }[];
  });
  const described = violations.map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(described, `axe-core on ${what}`).toEqual([]);
}

describe.skipIf(!enabled)('the management console in Chromium (real server, PostgreSQL, slapd)', () => {
  const schema = new TestSchema();
  let slapd: TestSlapd;
  let dir: string;
  let deployment: Deployment;
  let url: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const cspViolations: string[] = [];
  let endpoint: { client: ManagementClient; deviceId: string };

  beforeAll(async () => {
    await buildConsoleIfMissing();
    slapd = await startSlapd({ fixture: DIRECTORY_FIXTURE });
    dir = await mkdtemp(join(tmpdir(), 'tandem-console-browser-'));
    const serverDir = join(dir, 'server');
    await initServerDirectory(serverDir, {
      database: POSTGRES_URL,
      databaseSchema: schema.name,
      tls: 'none',
      ldap: {
        url: slapd.url,
        flavor: 'openldap',
        bindDn: slapd.serviceDn,
        bindPasswordFile: 'ldap-password',
        baseDn: slapd.baseDn,
      },
      // staff holds team, team holds squad, squad holds alice: she is an admin through nesting.
      adminGroup: `cn=staff,${slapd.groupsDn}`,
    });
    await writeFile(join(serverDir, 'ldap-password'), slapd.servicePassword, { mode: 0o600 });
    deployment = await openDeployment(serverDir);
    url = (await deployment.serve({ host: '127.0.0.1', port: 0 })).url;

    // An endpoint of alice's, enrolled and checked in once with ten events. The events carry the
    // current time: the device page shows the day before the last check-in, so a fixed date
    // would drop out of it as the calendar moves on.
    const { device } = await openEndpointKeys(join(dir, 'endpoint', 'keys'));
    const client = new ManagementClient({ baseUrl: url, device });
    await client.enroll({ user: 'alice', password: PW, hostName: 'alice-laptop' });
    await client.checkIn({ events: sampleEvents('c0c0c0c0', 10, new Date().toISOString()) });
    endpoint = { client, deviceId: device.deviceId };

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  }, 300_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await deployment?.close();
    await slapd?.stop();
    await schema.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  async function newPage(viewport = { width: 1440, height: 900 }): Promise<Page> {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.setDefaultTimeout(WAIT.timeout);
    return page;
  }

  async function signIn(page: Page, user: string, password: string): Promise<void> {
    await page.goto(`${url}/console/`);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** `POST /v1/admin/<action>` with the admin token: what `tandem admin ...` and `tandem policy explain --server` call. */
  async function adminApi<T>(action: string, body: unknown): Promise<T> {
    const token = (await readFile(join(dir, 'server', ADMIN_TOKEN_FILE), 'utf8')).trim();
    const res = await fetch(`${url}/v1/admin/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${action}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async function go(page: Page, route: string, heading: string): Promise<void> {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: route }).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor(WAIT);
  }

  let admin: Page;

  it(
    'refuses a user outside the admin group, and a wrong password; signs in an admin',
    { timeout: 180_000 },
    async () => {
      const outsider = await newPage();
      await signIn(outsider, 'hank', PW);
      await expect.poll(() => outsider.getByRole('alert').textContent(), WAIT).toMatch(/admin/i);
      expect(await outsider.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
      await expectAccessible(outsider, 'the sign-in page');
      await signIn(outsider, 'alice', 'not-the-password');
      await expect.poll(() => outsider.getByRole('alert').textContent(), WAIT).toBeTruthy();
      expect(await outsider.getByRole('navigation', { name: 'Main' }).count()).toBe(0);

      admin = await newPage();
      await signIn(admin, 'alice', PW);
      await admin.getByRole('heading', { level: 1, name: 'Overview' }).waitFor(WAIT);
      await expect.poll(() => admin.locator('[data-figure="total"]').textContent(), WAIT).toBe('1');
      await expectAccessible(admin, 'the overview');
    },
  );

  it(
    'assigns a workspace to a group found in the directory; the endpoint gets it at its next check-in',
    { timeout: 180_000 },
    async () => {
      await go(admin, 'Assignments', 'Assignments and policy');
      await admin.getByLabel('Workspace', { exact: true }).fill('payroll');
      await admin.getByLabel('Channel (stable, pilot)').fill('stable');
      await admin.getByLabel('Version (optional)').fill('1.0.0');
      await admin.getByLabel('Search the directory for users and groups').fill('team');
      await admin.getByRole('button', { name: 'Add group team' }).click();
      await expectAccessible(admin, 'the assignments page');
      await admin.getByRole('button', { name: 'Assign', exact: true }).click();
      await admin.getByRole('status').filter({ hasText: 'Assigned payroll' }).waitFor(WAIT);
      await admin.locator('tr[data-assignment]', { hasText: 'payroll' }).waitFor(WAIT);

      const reply = await endpoint.client.checkIn({ events: [] });
      expect(reply.status).toBe('changed');
      if (reply.status !== 'changed') return;
      expect(reply.workspaces).toEqual([expect.objectContaining({ workspace: 'payroll', version: '1.0.0' })]);
    },
  );

  it(
    'shows a policy error at the field as typed, with the message tandem validate prints',
    { timeout: 180_000 },
    async () => {
      await go(admin, 'Policy', 'Policy layers');
      const bad = [
        'apiVersion: tandem/v1',
        'kind: PolicyLayer',
        'metadata: { name: finance }',
        'layer: user-policy',
        'assignments:',
        '  - groups: [team]',
        '    policy:',
        '      usage:',
        '        offline: { maxDuration: three-days }',
        '',
      ].join('\n');
      const expected = (() => {
        try {
          parsePolicyLayer(bad, { file: 'finance' });
        } catch (err) {
          return (err as { details: { issues: { path: string; message: string }[] } }).details.issues[0]!;
        }
        throw new Error('the bad layer passed core validation');
      })();
      await admin.getByLabel('Layer name').fill('finance');
      const field = admin.getByLabel(/^Document/);
      await field.fill(bad);
      const error = admin.locator('#policy-document-errors li').first();
      await expect.poll(() => error.textContent(), WAIT).toContain(expected.message);
      expect(await error.getAttribute('data-path')).toBe(expected.path);
      expect(await field.getAttribute('aria-invalid')).toBe('true');
      expect(await field.getAttribute('aria-describedby')).toBe('policy-document-errors');
      expect(await admin.getByRole('button', { name: 'Save layer' }).isDisabled()).toBe(true);
      await expectAccessible(admin, 'the policy page with an error');

      await field.fill(bad.replace('three-days', 'P3D'));
      await admin.getByText('Valid policy layer.').waitFor(WAIT);
      await admin.getByRole('button', { name: 'Save layer' }).click();
      await admin.getByRole('status').filter({ hasText: 'Saved policy layer finance' }).waitFor(WAIT);
      await admin.getByRole('cell', { name: 'finance', exact: true }).waitFor(WAIT);
    },
  );

  it(
    'moves a channel; a second admin sees it without a reload; the endpoint hears of it',
    { timeout: 180_000 },
    async () => {
      const second = await newPage();
      await signIn(second, 'alice', PW);
      await go(second, 'Workspaces', 'Workspaces');
      const seen = second.locator('[data-workspace="payroll"] tr[data-channel="stable"] .version');
      await expect.poll(() => seen.textContent(), WAIT).toBe('1.0.0');

      await go(admin, 'Workspaces', 'Workspaces');
      await expectAccessible(admin, 'the workspaces page');
      await admin.getByLabel('to version').fill('1.1.0');
      await admin.getByRole('button', { name: 'Move channel' }).click();
      await admin.getByRole('status').filter({ hasText: 'is now 1.1.0' }).waitFor(WAIT);
      // The second console hears of it through the live stream: no reload, no navigation.
      await expect.poll(() => seen.textContent(), WAIT).toBe('1.1.0');

      const reply = await endpoint.client.checkIn({ events: [] });
      expect(reply.status).toBe('changed');
      if (reply.status === 'changed')
        expect(reply.workspaces).toEqual([expect.objectContaining({ workspace: 'payroll', version: '1.1.0' })]);
    },
  );

  it(
    'explains a URL and a transfer for a picked user and device: the rule and layer the API (and so tandem policy explain --server) names',
    { timeout: 180_000 },
    async () => {
      // An assignment of intranet to the group team with a layer that decides both questions,
      // made through the API as `tandem admin policy` and `tandem admin assign` would.
      await adminApi('policy', {
        name: 'intranet-rules',
        document: {
          apiVersion: 'tandem/v1',
          kind: 'PolicyLayer',
          metadata: { name: 'intranet-rules' },
          layer: 'user-policy',
          assignments: [
            {
              groups: ['team'],
              policy: {
                webRedirection: {
                  rules: [{ id: 'portal-in-guest', match: { host: 'portal.intranet.example' }, target: 'guest' }],
                },
                dataTransfer: [
                  { id: 'no-clipboard-out', channel: 'clipboard', direction: 'guest-to-host', action: 'deny' },
                ],
              },
            },
          ],
        },
      });
      await adminApi('assign', {
        workspace: 'intranet',
        channel: 'stable',
        version: '2.0.0',
        groups: ['team'],
        policyLayers: ['intranet-rules'],
      });

      type Answer = {
        device?: { id: string };
        decisions: {
          workspace: string;
          decision: { outcome: string; layer: string; rule?: { label: string } };
          lines: string[];
        }[];
      };
      const questions = [
        {
          what: 'url',
          question: { url: 'https://portal.intranet.example/payslips', from: 'host' },
          pick: async () => {
            await admin.getByLabel('Question').selectOption('url');
            await admin.getByLabel('URL', { exact: true }).fill('https://portal.intranet.example/payslips');
            await admin.getByLabel('Opened on').selectOption('host');
          },
          outcome: 'guest',
          rule: 'portal-in-guest',
        },
        {
          what: 'transfer',
          question: { transfer: { direction: 'guest-to-host', channel: 'clipboard' } },
          pick: async () => {
            await admin.getByLabel('Question').selectOption('transfer');
            await admin.getByLabel('Direction').selectOption('guest-to-host');
            await admin.getByLabel('Channel', { exact: true }).selectOption('clipboard');
          },
          outcome: 'deny',
          rule: 'no-clipboard-out',
        },
      ];

      await go(admin, 'Assignments', 'Assignments and policy');
      const explain = admin.getByRole('form', { name: 'Explain' });
      for (const q of questions) {
        await explain.getByLabel('User', { exact: true }).fill('alice');
        // The device list is alice's endpoints, from the server; selectOption waits for it.
        await explain.getByLabel('Device', { exact: true }).selectOption(endpoint.deviceId);
        await q.pick();
        await explain.getByLabel('Workspace (optional)').fill('intranet');
        await explain.getByRole('button', { name: 'Explain', exact: true }).click();

        const api = await adminApi<Answer>('explain', {
          user: 'alice',
          device: endpoint.deviceId,
          workspace: 'intranet',
          question: q.question,
        });
        const decided = api.decisions[0]!;
        expect(api.device?.id, q.what).toBe(endpoint.deviceId);
        expect(decided.decision, q.what).toMatchObject({
          outcome: q.outcome,
          layer: 'user-policy',
          rule: { label: q.rule },
        });

        const shown = explain.locator('[data-decision="intranet"]');
        await expect.poll(() => shown.locator('[data-field="rule"]').textContent(), WAIT).toContain(q.rule);
        expect(await shown.locator('[data-field="outcome"]').textContent(), q.what).toBe(decided.decision.outcome);
        expect(await shown.locator('[data-field="layer"]').textContent(), q.what).toMatch(
          new RegExp(`^${decided.decision.layer} `),
        );
        // The lines `tandem policy explain --server` prints (it prints the reply's lines, then the server).
        expect(await shown.locator('pre').textContent(), q.what).toBe(decided.lines.join('\n'));
        expect(decided.lines, q.what).toEqual(
          expect.arrayContaining([
            expect.stringMatching(new RegExp(`^rule: ${q.rule}`)),
            expect.stringMatching(/^layer: user-policy/),
          ]),
        );
        await expect.poll(() => explain.getByText(`alice on ${endpoint.deviceId}`).count(), WAIT).toBe(1);
        await expectAccessible(admin, `the assignments page explaining a ${q.what}`);
      }
    },
  );

  it('filters events and exports them as CSV', { timeout: 180_000 }, async () => {
    await endpoint.client.checkIn({
      workspaces: [{ workspace: 'payroll', version: '1.1.0', state: 'running' }],
      events: sampleEvents('c1c1c1c1', 3, new Date().toISOString()),
    });
    await go(admin, 'Events', 'Events');
    await admin.getByLabel('Device').fill(endpoint.deviceId);
    await admin.getByLabel('Type (comma-separated)').fill('session.transition');
    await admin.getByRole('button', { name: 'Filter' }).click();
    const rows = admin.locator('table.events tbody tr');
    await expect.poll(() => rows.count(), WAIT).toBe(13);
    await admin.getByLabel('Type (comma-separated)').fill('no.such.type');
    await admin.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => rows.count(), WAIT).toBe(0);
    await admin.getByLabel('Type (comma-separated)').fill('session.transition');
    await admin.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => rows.count(), WAIT).toBe(13);
    await expectAccessible(admin, 'the events page');

    const download = admin.waitForEvent('download', WAIT);
    await admin.getByRole('button', { name: 'Export CSV' }).click();
    const file = await (await download).path();
    const csv = await readFile(file, 'utf8');
    const lines = csv.trim().split(/\r?\n/);
    expect(lines).toHaveLength(14); // a header and the 13 events
    expect(csv).toContain('c1c1c1c1-0002');
    expect(csv).toContain(endpoint.deviceId);
  });

  it(
    'finds the endpoint in the table, opens its page, revokes it; its next check-in is refused',
    { timeout: 180_000 },
    async () => {
      await go(admin, 'Endpoints', 'Endpoints');
      await admin.getByLabel('Search (device, user, host)').fill('alice-laptop');
      await admin.getByRole('button', { name: 'Apply' }).click();
      await admin.getByRole('status').filter({ hasText: '1 endpoint(s) match.' }).waitFor(WAIT);
      await expectAccessible(admin, 'the endpoints page');
      await admin.locator(`.endpoints-table a[title="${endpoint.deviceId}"]`).click();
      await admin.getByRole('heading', { level: 1, name: 'Endpoint alice-laptop' }).waitFor(WAIT);
      // What it reported (payroll 1.1.0, running) and its last events.
      await admin.getByRole('row', { name: /payroll 1\.1\.0 running/ }).waitFor(WAIT);
      await admin.getByRole('cell', { name: 'session.transition' }).first().waitFor(WAIT);
      await expectAccessible(admin, 'an endpoint page');
      await admin.getByRole('button', { name: 'Revoke device' }).click();
      await admin.getByRole('button', { name: 'Yes, revoke this device' }).click();
      await admin.getByText('This device is revoked').waitFor(WAIT);
      await go(admin, 'Endpoints', 'Endpoints');
      await admin.getByLabel('State').selectOption('revoked');
      await admin.getByRole('button', { name: 'Apply' }).click();
      await admin.getByRole('status').filter({ hasText: '1 endpoint(s) match.' }).waitFor(WAIT);

      const refused = await endpoint.client.checkIn({ events: [] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(ManagementError);
      expect((refused as ManagementError).status).toBeGreaterThanOrEqual(401);
    },
  );

  it('the audit names the console admin for every change; logout ends the session', { timeout: 180_000 }, async () => {
    await go(admin, 'Audit', 'Audit');
    for (const action of ['assignment', 'policy', 'channel', 'device.revoke'])
      await admin.locator('tbody tr', { hasText: action }).first().waitFor(WAIT);
    expect(await admin.locator('tbody tr', { hasText: 'console:alice' }).count()).toBeGreaterThanOrEqual(4);
    await expectAccessible(admin, 'the audit page');

    await admin.getByRole('button', { name: 'Log out' }).click();
    await admin.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
    const after = await admin.evaluate(async () => (await fetch('/v1/console/session')).status);
    expect(after).toBe(401);
    expect(cspViolations).toEqual([]);
  });

  // Every page, with what must be reachable on it (beside the navigation and "Log out").
  const PAGES: { route: string; heading: string; actions: string[] }[] = [
    { route: 'Overview', heading: 'Overview', actions: [] },
    { route: 'Workspaces', heading: 'Workspaces', actions: ['Move channel'] },
    { route: 'Assignments', heading: 'Assignments and policy', actions: ['Assign', 'Explain'] },
    { route: 'Policy', heading: 'Policy layers', actions: ['Save layer'] },
    { route: 'Endpoints', heading: 'Endpoints', actions: ['Apply'] },
    { route: 'Events', heading: 'Events', actions: ['Filter', 'Export CSV'] },
    { route: 'Audit', heading: 'Audit', actions: [] },
  ];

  /** The page body does not scroll sideways; the element lies inside the viewport's width. */
  async function expectFitsWidth(page: Page, what: string): Promise<void> {
    // Browser-side code as text: this package's TypeScript has no DOM library.
    const widths = await page.evaluate<{ scroll: number; client: number; body: number }>(`({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      body: document.body.scrollWidth,
    })`);
    expect(widths.scroll, `${what}: the page is wider than the viewport`).toBeLessThanOrEqual(widths.client);
    expect(widths.body, `${what}: the body is wider than the viewport`).toBeLessThanOrEqual(widths.client);
  }

  async function expectInView(page: Page, target: ReturnType<Page['locator']>, what: string): Promise<void> {
    await target.scrollIntoViewIfNeeded();
    const box = await target.boundingBox();
    const view = page.viewportSize()!;
    expect(box, `${what} has no box`).not.toBeNull();
    expect(box!.x, `${what} starts left of the viewport`).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width, `${what} ends right of the viewport`).toBeLessThanOrEqual(view.width);
    expect(await target.isVisible(), `${what} is hidden`).toBe(true);
  }

  for (const viewport of [
    { name: 'a laptop', width: 1280, height: 720 },
    { name: 'a wide screen', width: 1920, height: 1080 },
  ])
    it(
      `fits ${viewport.name} (${viewport.width}x${viewport.height}): no sideways scrolling, navigation and actions in view, axe clean`,
      { timeout: 300_000 },
      async () => {
        const page = await newPage({ width: viewport.width, height: viewport.height });
        await signIn(page, 'alice', PW);
        await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor(WAIT);
        for (const p of PAGES) {
          const at = `${p.route} at ${viewport.width}x${viewport.height}`;
          await go(page, p.route, p.heading);
          // Wait for the page's data (the endpoint table's rows, the overview's charts) before measuring.
          if (p.route === 'Endpoints') await page.locator('.endpoints-table a').first().waitFor(WAIT);
          if (p.route === 'Overview') await page.locator('canvas').first().waitFor(WAIT);
          if (p.route === 'Audit') await page.locator('tbody tr').first().waitFor(WAIT);
          await expectFitsWidth(page, at);
          const nav = page.getByRole('navigation', { name: 'Main' });
          for (const q of PAGES)
            await expectInView(page, nav.getByRole('link', { name: q.route }), `${at}: the ${q.route} link`);
          await expectInView(page, page.getByRole('button', { name: 'Log out' }), `${at}: Log out`);
          for (const action of p.actions)
            await expectInView(
              page,
              page.getByRole('button', { name: action, exact: true }).first(),
              `${at}: ${action}`,
            );
          await expectAccessible(page, at);
        }
        await page.goto(`${url}/console/#/endpoints/${encodeURIComponent(endpoint.deviceId)}`);
        await page.getByRole('heading', { level: 1, name: 'Endpoint alice-laptop' }).waitFor(WAIT);
        await page.getByRole('cell', { name: 'session.transition' }).first().waitFor(WAIT);
        await expectFitsWidth(page, `the endpoint page at ${viewport.width}x${viewport.height}`);
        await expectAccessible(page, `the endpoint page at ${viewport.width}x${viewport.height}`);
        await page.context().close();
      },
    );

  /** What has the focus now, and whether its focus ring shows (an outline of at least 2 px). */
  function focused(page: Page) {
    return page.evaluate<{
      name: string;
      tag: string;
      title: string;
      workspace: string;
      ring: boolean;
      outline?: string;
    }>(`(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return { name: '', ring: false, tag: 'body', title: '', workspace: '' };
      const style = getComputedStyle(el);
      const name = (el.getAttribute('aria-label') ?? ((el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent) ?? '').trim();
      return {
        name,
        tag: el.tagName.toLowerCase(),
        title: el.title,
        workspace: el.closest('[data-workspace]')?.getAttribute('data-workspace') ?? '',
        outline: [style.outlineStyle, style.outlineWidth, style.outlineColor].join(' '),
        ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
      };
    })()`);
  }

  /** Presses Tab until the focus is on what `test` accepts, checking each stop shows its focus. */
  async function tabTo(
    page: Page,
    test: (f: { name: string; tag: string; title: string; workspace: string }) => boolean,
    what: string,
  ) {
    const seen: string[] = [];
    for (let n = 0; n < 120; n++) {
      await page.keyboard.press('Tab');
      const f = await focused(page);
      seen.push(`${f.tag}:${f.name}`);
      if (f.tag !== 'body') expect(f.ring, `the focus ring on ${f.tag} "${f.name}" (outline: ${f.outline})`).toBe(true);
      if (test(f)) return;
    }
    throw new Error(`Tab never reached ${what}; it went through ${seen.join(' | ')}`);
  }

  it(
    'works from the keyboard alone: sign-in, the skip link, the navigation and the main actions, with a visible focus',
    { timeout: 300_000 },
    async () => {
      const page = await newPage({ width: 1280, height: 720 });
      await page.goto(`${url}/console/`);
      await page.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
      await tabTo(page, (f) => f.name === 'User name', 'the user name');
      await page.keyboard.type('alice');
      await tabTo(page, (f) => f.name === 'Password', 'the password');
      await page.keyboard.type(PW);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor(WAIT);

      // The skip link comes first and moves the focus to the page's content.
      await tabTo(page, (f) => f.name === 'Skip to content', 'the skip link');
      await page.keyboard.press('Enter');
      expect(await page.evaluate<string>('document.activeElement?.id')).toBe('main');

      const byKeyboard = async (route: string, heading: string) => {
        await page.evaluate('document.activeElement?.blur()');
        await tabTo(page, (f) => f.tag === 'a' && f.name === route, `the ${route} link`);
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { level: 1, name: heading }).waitFor(WAIT);
      };

      // Filter the events and export them.
      await byKeyboard('Events', 'Events');
      await tabTo(page, (f) => f.name === 'Type (comma-separated)', 'the type filter');
      await page.keyboard.type('session.transition');
      await tabTo(page, (f) => f.name === 'Filter', 'Filter');
      await page.keyboard.press('Enter');
      const rows = page.locator('table.events tbody tr', { hasText: 'session.transition' });
      await rows.first().waitFor(WAIT);
      const shown = await rows.count();
      await tabTo(page, (f) => f.name === 'Export CSV', 'Export CSV');
      const download = page.waitForEvent('download', WAIT);
      await page.keyboard.press('Enter');
      expect((await readFile(await (await download).path(), 'utf8')).trim().split(/\r?\n/)).toHaveLength(shown + 1);

      // Explain a transfer.
      await byKeyboard('Assignments', 'Assignments and policy');
      await tabTo(page, (f) => f.tag === 'input' && f.name === 'User', 'the explain user');
      await page.keyboard.type('alice');
      await tabTo(page, (f) => f.tag === 'button' && f.name === 'Explain', 'Explain');
      await page.keyboard.press('Enter');
      await page.getByText(/^\s*alice \(groups: .*\) gets:/).waitFor(WAIT);

      // Move a channel.
      await byKeyboard('Workspaces', 'Workspaces');
      const payroll = page.locator('[data-workspace="payroll"]');
      await payroll.locator('tr[data-channel="stable"] .version').waitFor(WAIT);
      await tabTo(
        page,
        (f) => f.name === 'to version' && f.workspace === 'payroll',
        'the "to version" field of payroll',
      );
      await page.keyboard.type('1.2.0');
      await tabTo(page, (f) => f.name === 'Move channel' && f.workspace === 'payroll', 'Move channel of payroll');
      await page.keyboard.press('Enter');
      await page.getByRole('status').filter({ hasText: 'is now 1.2.0' }).waitFor(WAIT);
      await expect.poll(() => payroll.locator('tr[data-channel="stable"] .version').textContent(), WAIT).toBe('1.2.0');

      // Open an endpoint from the table.
      await byKeyboard('Endpoints', 'Endpoints');
      await page.locator('.endpoints-table a').first().waitFor(WAIT);
      await tabTo(page, (f) => f.tag === 'a' && f.title === endpoint.deviceId, 'the endpoint link in the table');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Endpoint alice-laptop' }).waitFor(WAIT);

      // Log out.
      await page.evaluate('document.activeElement?.blur()');
      await tabTo(page, (f) => f.name === 'Log out', 'Log out');
      await page.keyboard.press('Enter');
      await page.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
      expect(cspViolations).toEqual([]);
    },
  );
});
