import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packWorkspace } from './pack.js';
import { pushPackage } from './push.js';
import { pullWorkspace } from './pull.js';
import { DirectoryStore } from './store/directory.js';
import { initRepository } from './trust/publisher.js';
import { changeImage, makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';

describe('pack, push, pull over HTTP', () => {
  let tmp: string;
  let server: TestServer;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tandem-e2e-'));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('delivers v1, then only the delta of v2', async () => {
    const v1 = makeImage(4 << 20, [[1 << 20, 1 << 20]]);
    const v2 = changeImage(v1, 8, 4096);
    const ws1 = await writeWorkspace(join(tmp, 'ws1'), { name: 'erp', version: '1.0.0', image: v1 });
    const ws2 = await writeWorkspace(join(tmp, 'ws2'), { name: 'erp', version: '2.0.0', image: v2 });
    const repoDir = join(tmp, 'repo');
    const store = new DirectoryStore(repoDir);
    const { keys, root } = await initRepository({ store });
    const p1 = await packWorkspace({ workspaceFile: ws1, out: join(tmp, 'erp-1.tandem') });
    await pushPackage({ package: p1.path, store, keys, channels: ['stable'] });
    server = await serveDirectory(repoDir);
    const dir = join(tmp, 'endpoint');
    const r1 = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: root });
    expect(r1.version).toBe('1.0.0');
    expect(Buffer.compare(await readFile(r1.image), v1)).toBe(0);
    const p2 = await packWorkspace({ workspaceFile: ws2, out: join(tmp, 'erp-2.tandem') });
    const push2 = await pushPackage({ package: p2.path, store, keys, channels: ['stable'] });
    expect(push2.chunksSkipped).toBeGreaterThan(0);
    const r2 = await pullWorkspace({ repo: server.url, workspace: 'erp', dir });
    expect(r2.version).toBe('2.0.0');
    expect(Buffer.compare(await readFile(r2.image), v2)).toBe(0);
    console.log(r1, r2, push2);
  });
});
