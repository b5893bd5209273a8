import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialFileOf } from '@tandem/core/identity';
import { openDeployment, type Deployment } from '@tandem/server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliHarness } from '../cli-harness.test-helper.js';

let root: string;
let serverDir: string;
let endpointDir: string;
let deployment: Deployment | undefined;
let url: string;
const tandem = cliHarness(() => endpointDir);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-cli-server-'));
  serverDir = join(root, 'server');
  endpointDir = join(root, 'endpoint');
});
afterAll(async () => {
  delete process.env['TANDEM_PASSWORD'];
  await deployment?.close();
  await rm(root, { recursive: true, force: true });
});

function events(prefix: string): string {
  return (
    Array.from({ length: 10 }, (_, i) =>
      JSON.stringify({
        id: `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`,
        type: 'session.transition',
        at: new Date().toISOString(),
        workspace: 'quickstart',
        session: 's1',
        data: { from: 'stopped', to: 'running', operation: 'start', vm: 'tandem-quickstart' },
      }),
    ).join('\n') + '\n'
  );
}

it(
  'server init, admin, login over HTTPS with the self-signed certificate, checkin, reports, and a disabled account',
  { timeout: 120_000 },
  async () => {
    const init = await tandem('server', 'init', '--dir', serverDir, '--json');
    expect(init.code).toBe(0);
    expect(init.json).toMatchObject({
      created: true,
      config: { database: 'sqlite:server.db', tls: { cert: 'tls/server.crt' } },
    });
    expect(
      (await readFile(join(serverDir, 'tls', 'server.crt'), 'utf8')).startsWith('-----BEGIN CERTIFICATE-----'),
    ).toBe(true);

    process.env['TANDEM_PASSWORD'] = 'ana-secret-1';
    expect((await tandem('admin', 'user', 'add', 'ana', '--dir', serverDir, '--json')).code).toBe(0);
    expect(
      (await tandem('admin', 'group', 'add', 'erp-users', '--member', 'ana', '--dir', serverDir, '--json')).code,
    ).toBe(0);
    const key = await tandem('admin', 'workspace-key', 'quickstart', '--dir', serverDir, '--json');
    expect(key.json.dataKeyId).toMatch(/^[0-9a-f]{32}$/);
    const assign = await tandem(
      'admin',
      'assign',
      'quickstart',
      '--group',
      'erp-users',
      '--lease',
      'P7D',
      '--dir',
      serverDir,
      '--json',
    );
    expect(assign.code).toBe(0);
    const channel = await tandem('admin', 'channel', 'quickstart', 'stable', '1.0.0', '--dir', serverDir, '--json');
    expect(channel.json.error).toMatchObject({ code: 'TANDEM_NOT_FOUND' }); // the assignment follows no channel
    const explain = await tandem('admin', 'explain', 'ana', '--dir', serverDir, '--json');
    expect(explain.json.workspaces.map((w: { workspace: string }) => w.workspace)).toEqual(['quickstart']);

    deployment = await openDeployment(serverDir);
    url = (await deployment.serve({ host: '127.0.0.1', port: 0 })).url;
    expect(url).toMatch(/^https:/);

    // Without the certificate the endpoint refuses the server.
    const untrusted = await tandem('login', url, '--user', 'ana', '--json');
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.json.error).toMatchObject({ code: 'TANDEM_AUTH', details: { reason: 'untrusted-certificate' } });

    process.env['TANDEM_PASSWORD'] = 'wrong';
    const wrong = await tandem('login', url, '--user', 'ana', '--ca', join(serverDir, 'tls', 'server.crt'), '--json');
    expect(wrong.json.error).toMatchObject({ code: 'TANDEM_AUTH', details: { reason: 'bad-credentials' } });

    process.env['TANDEM_PASSWORD'] = 'ana-secret-1';
    const login = await tandem('login', url, '--user', 'ana', '--ca', join(serverDir, 'tls', 'server.crt'), '--json');
    expect(login.code).toBe(0);
    expect(login.json.signIn.groups).toEqual(['builtin:group:erp-users']);
    expect(existsSync(credentialFileOf(endpointDir, 'ana'))).toBe(true);

    // The online sign-in kept a verifier: offline sign-in works with the password, not without it,
    // and a server that cannot be reached falls back to it.
    const offline = await tandem('login', url, '--user', 'ana', '--offline', '--json');
    expect(offline.code).toBe(0);
    expect(offline.json).toMatchObject({ offline: true, user: 'ana' });
    const unreachable = await tandem('login', 'http://127.0.0.1:9', '--user', 'ana', '--json');
    expect(unreachable.code).toBe(0);
    expect(unreachable.json).toMatchObject({ offline: true, user: 'ana' });
    process.env['TANDEM_PASSWORD'] = 'wrong';
    const offlineWrong = await tandem('login', url, '--user', 'ana', '--offline', '--json');
    expect(offlineWrong.code).not.toBe(0);
    expect(offlineWrong.json.error).toMatchObject({ code: 'TANDEM_AUTH', details: { reason: 'bad-credentials' } });
    process.env['TANDEM_PASSWORD'] = 'ana-secret-1';

    const file = join(root, 'events.jsonl');
    await writeFile(file, events('aaaaaaaa'));
    const first = await tandem('checkin', '--events', file, '--json');
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({
      status: 'changed',
      events: { inserted: 10 },
      workspaces: [{ workspace: 'quickstart', lease: 'P7D', encrypted: true }],
    });
    expect(existsSync(join(endpointDir, 'envelopes', 'quickstart.envelope'))).toBe(true);
    const second = await tandem('checkin', '--events', file, '--json');
    expect(second.json).toMatchObject({ status: 'unchanged', events: { inserted: 0, duplicates: 10 } });

    const report = await tandem(
      'admin',
      'report',
      'events',
      '--type',
      'session.transition',
      '--dir',
      serverDir,
      '--json',
    );
    expect(report.json.events).toHaveLength(10);
    const endpoints = await tandem('admin', 'report', 'endpoints', '--dir', serverDir, '--json');
    expect(endpoints.json.rows).toHaveLength(1);
    const audit = await tandem('admin', 'report', 'audit', '--dir', serverDir, '--json');
    expect(audit.json.rows.map((r: { action: string }) => r.action).sort()).toEqual([
      'assignment.add',
      'group.put',
      'user.add',
      'workspace.key',
    ]);

    // Disabled through the admin (another process in real life): the next check-in deletes the cached sign-in and envelopes.
    expect((await tandem('admin', 'user', 'disable', 'ana', '--dir', serverDir, '--json')).code).toBe(0);
    let revoked: { json: { revokeCredentials?: { reason: string } } } | undefined;
    for (let i = 0; i < 100 && !revoked?.json.revokeCredentials; i++) {
      revoked = await tandem('checkin', '--json');
      if (!revoked.json.revokeCredentials) await new Promise((r) => setTimeout(r, 100));
    }
    expect(revoked?.json.revokeCredentials?.reason).toBe('disabled');
    expect(existsSync(join(endpointDir, 'envelopes', 'quickstart.envelope'))).toBe(false);
    const stored = JSON.parse(await readFile(join(endpointDir, 'management.json'), 'utf8')) as Record<string, unknown>;
    expect(stored['user']).toBeUndefined();
    // reconcile() forgot the cached credentials: no offline sign-in any more.
    expect(existsSync(credentialFileOf(endpointDir, 'ana'))).toBe(false);
    const after = await tandem('login', url, '--user', 'ana', '--offline', '--json');
    expect(after.code).not.toBe(0);
    expect(after.json.error).toMatchObject({ code: 'TANDEM_AUTH', details: { reason: 'bad-credentials' } });
  },
);
