// `node scripts/console-screenshots.mjs`: docs/images/console-<page>.png at 1440x900, from a
// server seeded here (embedded defaults: SQLite and the built-in directory, in a temporary
// directory) and the console that `npm run build` made. Needs Debian's Chromium (/usr/bin/chromium).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'packages/server/package.json'));
const { chromium } = require('playwright-core');
const { parse } = require('yaml');
const { initServerDirectory, openDeployment } = await import('@tandem/server');
const { openEndpointKeys } = await import('@tandem/core/crypto');
const { ManagementClient } = await import('@tandem/core/management');

const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium.`);
if (!existsSync(join(root, 'packages/server/console/dist/index.html')))
  throw new Error('The console is not built: run npm run build first.');
const out = join(root, 'docs/images');
const dir = await mkdtemp(join(tmpdir(), 'tandem-console-shots-'));
const PASSWORD = 'Screenshot-pw-1';

try {
  const serverDir = join(dir, 'server');
  await initServerDirectory(serverDir, { tls: 'none' });
  const d = await openDeployment(serverDir);
  const { url } = await d.serve({ host: '127.0.0.1', port: 0 });
  const a = d.admin;
  for (const [name, displayName] of [
    ['ana', 'Ana Admin'],
    ['ben', 'Ben Brooks'],
    ['cho', 'Cho Chen'],
    ['dev', 'Devi Das'],
  ])
    await a.addUser('setup', { name, password: PASSWORD, displayName });
  await a.addMembers('setup', 'admins', ['ana']);
  await a.addMembers('setup', 'erp-users', ['ben', 'cho', 'dev']);
  await a.addMembers('setup', 'pilot-users', ['dev']);
  await a.putWorkspaceKey('setup', 'quickstart');
  await a.putWorkspaceKey('setup', 'payroll');
  const layer = parse(await readFile(join(root, 'examples/policy/user.policy.yaml'), 'utf8'));
  await a.putPolicyLayer('setup', 'corp-user-policy', layer);
  // A layer for the ERP users, so "Explain" has a rule to name.
  await a.putPolicyLayer('setup', 'erp-rules', {
    apiVersion: 'tandem/v1',
    kind: 'PolicyLayer',
    metadata: { name: 'erp-rules' },
    layer: 'user-policy',
    assignments: [
      {
        groups: ['erp-users'],
        policy: {
          webRedirection: { rules: [{ id: 'erp-portal', match: { host: 'erp.corp.example' }, target: 'guest' }] },
        },
      },
    ],
  });
  await a.assign('setup', {
    workspace: 'quickstart',
    channel: 'stable',
    version: '3.2.0',
    groups: ['erp-users'],
    policyLayers: ['corp-user-policy', 'erp-rules'],
    lease: 'P7D',
  });
  await a.assign('setup', { workspace: 'payroll', channel: 'pilot', version: '1.1.0', groups: ['pilot-users'] });
  await a.assign('setup', { workspace: 'payroll', channel: 'stable', version: '1.0.0', users: ['ben'] });

  // Endpoints: 24 devices of three users, reporting versions and sessions, with events.
  for (let i = 0; i < 24; i++) {
    const user = ['ben', 'cho', 'dev'][i % 3];
    const { device } = await openEndpointKeys(join(dir, `pc-${i}`, 'keys'));
    const client = new ManagementClient({ baseUrl: url, device });
    await client.enroll({ user, password: PASSWORD, hostName: `${user}-pc-${String(i).padStart(2, '0')}` });
    if (i % 7 === 6) continue; // enrolled, never checked in
    const version = i % 4 === 0 ? '3.1.0' : '3.2.0';
    const events = Array.from({ length: 3 }, (_, j) => ({
      id: `${(0x10000000 + i * 16 + j).toString(16)}-0000-4000-8000-000000000000`,
      type: 'session.transition',
      at: new Date(Date.now() - (i * 3 + j) * 60_000).toISOString(),
      workspace: 'quickstart',
      session: `s${i}`,
      data: { from: 'stopped', to: 'running', operation: 'start', vm: 'tandem-quickstart' },
    }));
    await client.checkIn({
      agentVersion: '0.1.0',
      workspaces: [{ workspace: 'quickstart', version, state: i % 3 === 0 ? 'running' : 'stopped' }],
      events,
    });
  }

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  page.setDefaultTimeout(60_000);
  const shot = async (name) => {
    // The live stream keeps a request open, so no "network idle": let the last replies render.
    await page.waitForTimeout(1000);
    await page.screenshot({ path: join(out, `console-${name}.png`) });
    process.stdout.write(`docs/images/console-${name}.png\n`);
  };
  const nav = async (label, heading) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };

  await page.goto(`${url}/console/`);
  await page.getByLabel('User name').fill('ana');
  await shot('signin');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  await page.locator('canvas').first().waitFor();
  await shot('overview');
  await nav('Workspaces', 'Workspaces');
  // A change made in the console, so the audit shows the admin as its actor.
  await page.getByLabel('to version').first().fill('1.2.0');
  await page.getByRole('button', { name: 'Move channel' }).first().click();
  await page.getByRole('status').filter({ hasText: 'is now 1.2.0' }).waitFor();
  await shot('workspaces');
  await nav('Assignments', 'Assignments and policy');
  await page.getByLabel('Search the directory for users and groups').fill('erp');
  await page.getByRole('button', { name: /Add group erp-users/ }).waitFor();
  await shot('assignments');
  // Explain where a URL opens for a user on one of their devices.
  const explain = page.getByRole('form', { name: 'Explain' });
  await explain.getByLabel('User', { exact: true }).fill('ben');
  await explain.getByLabel('Device', { exact: true }).selectOption({ index: 1 });
  await explain.getByLabel('Question').selectOption('url');
  await explain.getByLabel('Workspace (optional)').fill('quickstart');
  await explain.getByLabel('URL', { exact: true }).fill('https://erp.corp.example/orders');
  await explain.getByRole('button', { name: 'Explain', exact: true }).click();
  await explain.locator('[data-decision="quickstart"] [data-field="rule"]').filter({ hasText: 'erp-portal' }).waitFor();
  await page.waitForTimeout(500);
  await explain.screenshot({ path: join(out, 'console-explain.png') });
  process.stdout.write('docs/images/console-explain.png\n');
  await nav('Policy', 'Policy layers');
  await page.getByRole('button', { name: 'Edit corp-user-policy' }).click();
  const doc = page.getByLabel(/^Document/);
  await doc.fill((await doc.inputValue()).replace('P3D', 'three days'));
  await page.locator('#policy-document-errors li').first().waitFor();
  await shot('policy');
  await nav('Endpoints', 'Endpoints');
  await page.locator('.endpoints-table a').first().waitFor();
  await shot('endpoints');
  await page.locator('.endpoints-table a').first().click();
  await page.getByRole('heading', { level: 1, name: /^Endpoint / }).waitFor();
  await shot('endpoint');
  await nav('Events', 'Events');
  await page.locator('table.events tbody tr').first().waitFor();
  await shot('events');
  await nav('Audit', 'Audit');
  await page.locator('tbody tr').first().waitFor();
  await shot('audit');
  await browser.close();
  await d.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
