// `tandem policy explain --server`: the local command's question and output, answered by the
// management server's view (its assignment, policy layers and the user's directory groups).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDeployment, type Deployment } from '@tandem/server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliHarness } from '../cli-harness.test-helper.js';

const LAYER = `
apiVersion: tandem/v1
kind: PolicyLayer
layer: machine-policy
policy:
  dataTransfer:
    - { id: dlp, channel: clipboard, direction: guest-to-host, action: deny }
assignments:
  - groups: [finance]
    policy:
      webRedirection:
        rules:
          - { id: finance-portal, match: { host: portal.example }, target: guest }
`;

let root: string;
let serverDir: string;
let deployment: Deployment | undefined;
let url: string;
const tandem = cliHarness(() => join(root, 'state'));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-cli-explain-'));
  serverDir = join(root, 'server');
}, 60_000);
afterAll(async () => {
  delete process.env['TANDEM_PASSWORD'];
  await deployment?.close();
  await rm(root, { recursive: true, force: true });
});

it(
  'decides a question as the server sees it, printed as the local command prints it',
  { timeout: 180_000 },
  async () => {
    expect((await tandem('server', 'init', '--dir', serverDir, '--listen', '127.0.0.1:0', '--json')).code).toBe(0);
    process.env['TANDEM_PASSWORD'] = 'ana-secret-1';
    expect((await tandem('admin', 'user', 'add', 'ana', '--dir', serverDir, '--json')).code).toBe(0);
    expect((await tandem('admin', 'group', 'add', 'finance', '--member', 'ana', '--dir', serverDir)).code).toBe(0);
    expect(
      (await tandem('admin', 'group', 'add', 'erp-users', '--member', 'group:finance', '--dir', serverDir)).code,
    ).toBe(0);
    const layerFile = join(root, 'machine.yaml');
    await writeFile(layerFile, LAYER);
    const valid = await tandem('admin', 'validate-policy', layerFile, '--dir', serverDir, '--json');
    expect(valid.json).toMatchObject({ ok: true, issues: [] });
    const badFile = join(root, 'bad.yaml');
    await writeFile(badFile, LAYER.replace('action: deny', 'action: sometimes'));
    const bad = await tandem('admin', 'validate-policy', badFile, '--dir', serverDir, '--json');
    expect(bad.code).not.toBe(0);
    expect(bad.json.error.details.issues[0]).toMatchObject({ path: 'policy.dataTransfer[0].action', line: 7 });
    expect(bad.stderr).toContain('bad.yaml:7: policy.dataTransfer[0].action:');
    expect((await tandem('admin', 'policy', 'machine', layerFile, '--dir', serverDir)).code).toBe(0);
    expect(
      (await tandem('admin', 'assign', 'erp', '--group', 'erp-users', '--policy', 'machine', '--dir', serverDir)).code,
    ).toBe(0);
    deployment = await openDeployment(serverDir);
    url = (await deployment.serve({ port: 0 }, { consoleDir: false })).url;

    const remote = (...args: string[]) =>
      tandem('policy', 'explain', 'erp', '--server', url, '--dir', serverDir, ...args);
    const portal = await remote('--user', 'ana', '--url', 'http://portal.example/', '--json');
    expect(portal.code).toBe(0);
    expect(portal.json).toMatchObject({
      kind: 'url',
      target: 'guest',
      rule: { label: 'finance-portal' },
      layer: 'machine-policy',
      server: { user: 'ana' },
    });
    expect(portal.json.server.groups).toContain('builtin:group:finance');
    const clip = await remote('--user', 'ana', '--transfer', 'clipboard', '--direction', 'guest-to-host');
    expect(clip.code).toBe(0);
    // The same lines the local command prints for the same layer (and a line naming the server).
    const wsFile = join(root, 'erp.yaml');
    await writeFile(
      wsFile,
      'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./erp.qcow2, format: qcow2 }\n  hardware: { memory: { fixedMiB: 512 } }\n',
    );
    const local = await tandem(
      'policy',
      'explain',
      wsFile,
      '--layer',
      layerFile,
      '--user',
      'ana',
      '--group',
      'finance',
      '--transfer',
      'clipboard',
      '--direction',
      'guest-to-host',
    );
    expect(local.code).toBe(0);
    const firstLines = (text: string) => text.split('\n').filter((l) => /^(decision|transfer|rule):/.test(l));
    expect(firstLines(clip.stdout)).toEqual(firstLines(local.stdout));
    expect(clip.stdout).toContain(`server: ${url}`);
    // A user outside the groups: the server's view says so; a user with no assignment is an error.
    const other = await remote('--user', 'nobody', '--provisioning', '--json');
    expect(other.json.error).toMatchObject({ code: 'TANDEM_NOT_FOUND' });
    const noToken = await tandem(
      'policy',
      'explain',
      'erp',
      '--server',
      url,
      '--user',
      'ana',
      '--provisioning',
      '--admin-token-file',
      join(root, 'missing-token'),
      '--dir',
      join(root, 'nowhere'),
      '--json',
    );
    expect(noToken.code).not.toBe(0);
    const wrongToken = join(root, 'wrong-token');
    await writeFile(wrongToken, 'x'.repeat(32));
    const refused = await tandem(
      'policy',
      'explain',
      'erp',
      '--server',
      url,
      '--user',
      'ana',
      '--provisioning',
      '--admin-token-file',
      wrongToken,
      '--dir',
      serverDir,
      '--json',
    );
    expect(refused.json.error).toMatchObject({ code: 'TANDEM_AUTH' });
    expect((await remote('--url', 'http://portal.example/')).code).not.toBe(0); // no user or device
  },
);
