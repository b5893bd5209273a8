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
import { initServerDirectory, openDeployment, type Deployment } from './deployment.js';
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

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
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
});
