import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { loadWorkspaceFile } from '../workspace/load.js';
import { changeImage, makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { InstallDir } from './install-dir.js';
import { sha256Hex } from './manifest.js';
import { packWorkspace } from './pack.js';
import { pullWorkspace } from './pull.js';
import { pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { initRepository } from './trust/publisher.js';

let base: string;
let server: TestServer;
let root: Buffer;
const images: Record<string, Buffer> = {};

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-pull-'));
  const store = new DirectoryStore(join(base, 'repo'));
  const init = await initRepository({ store });
  root = init.root;
  images['1.0.0'] = makeImage(3 << 20, [[1 << 20, 1 << 20]]);
  images['1.1.0'] = changeImage(images['1.0.0'], 4, 48 << 10);
  images['2.0.0'] = changeImage(images['1.1.0'], 4, 48 << 10);
  for (const version of ['1.0.0', '1.1.0', '2.0.0']) {
    const ws = await writeWorkspace(join(base, `ws-${version}`), { name: 'erp', version, image: images[version]! });
    const pkg = await packWorkspace({ workspaceFile: ws, out: join(base, `erp-${version}.tandem`) });
    await pushPackage({
      package: pkg.path,
      store,
      keys: init.keys,
      channels: version === '2.0.0' ? ['pilot'] : ['stable'],
    });
  }
  server = await serveDirectory(join(base, 'repo'));
}); // the hook limit of vitest.config.ts (packing and pushing images)

afterAll(async () => {
  await server?.close();
});

const imageOf = async (path: string): Promise<string> => sha256Hex(await readFile(path));

describe('pullWorkspace', () => {
  it('installs the stable channel: a valid workspace file next to the verified image; zeros are never fetched', async () => {
    const dir = join(base, 'a');
    const r = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: root });
    expect(r.version).toBe('1.1.0');
    expect(await imageOf(r.image)).toBe(sha256Hex(images['1.1.0']!));
    expect(r.bytesFromSeeds).toBeGreaterThan(0);
    const loaded = await loadWorkspaceFile(r.workspaceFile);
    expect(loaded.workspace.metadata.version).toBe('1.1.0');
    expect(join(loaded.baseDir, loaded.workspace.spec.image.source)).toBe(r.image);
    const again = await pullWorkspace({ repo: server.url, workspace: 'erp', dir });
    expect(again.upToDate).toBe(true);
    expect(again.requests).toBeLessThan(6);
  });

  it('uses --seed files, emits progress events, keeps the previous version, and applies retention', async () => {
    const dir = join(base, 'b');
    const seed = join(base, 'seed.img');
    await writeFile(seed, images['1.1.0']!);
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const r = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir,
      trustedRoot: root,
      channel: 'pilot',
      seeds: [seed],
      events,
    });
    expect(r.version).toBe('2.0.0');
    expect(await imageOf(r.image)).toBe(sha256Hex(images['2.0.0']!));
    // Most of the image came from the seed file, not the network.
    expect(r.bytesFromSeeds).toBeGreaterThan(r.bytesTotal * 0.4);
    expect(r.bytesFetched).toBeLessThan(r.bytesTotal * 0.5);
    expect(seen.some((e) => e.type === 'sync.progress' && e.workspace === 'erp')).toBe(true);
    const done = seen.find((e) => e.type === 'sync.completed');
    expect(done?.data).toMatchObject({ version: '2.0.0', bytesFromSeeds: r.bytesFromSeeds });

    await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '1.0.0' });
    await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '1.1.0', retain: 2 });
    expect((await readdir(join(dir, 'versions'))).sort()).toEqual(['1.1.0', '2.0.0']);
    expect((await new InstallDir(dir).installed())?.version).toBe('1.1.0');
    // Going back to a retained version needs no chunk at all.
    const before = server.requests.length;
    const back = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '2.0.0' });
    expect(back.chunksFetched).toBe(0);
    expect(server.requests.slice(before).some((q) => q.path.startsWith('packs/'))).toBe(false);
    expect(await imageOf(back.image)).toBe(sha256Hex(images['2.0.0']!));
  });

  it('never removes a version whose disk a defined VM still uses, and reports the bytes saved', async () => {
    const dir = join(base, 'in-use');
    const first = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: root, version: '1.0.0' });
    expect(first.bytesSaved).toBe(Math.max(0, first.bytesTotal - first.bytesFetched));
    expect(first.bytesSaved).toBeGreaterThan(0); // the run of zeros is never fetched
    // A VM still runs 1.0.0's disk while 1.1.0 and then 2.0.0 arrive with retain 2.
    const inUse = [first.image];
    await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '1.1.0', retain: 2, inUse });
    const last = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '2.0.0', retain: 2, inUse });
    expect(last.removedVersions).toEqual(['1.1.0']);
    expect((await readdir(join(dir, 'versions'))).sort()).toEqual(['1.0.0', '2.0.0']);
    expect(await imageOf(first.image)).toBe(sha256Hex(images['1.0.0']!));
  });

  it('refuses a second pull into the same directory while one runs', async () => {
    const dir = join(base, 'c');
    const first = pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: root });
    await new Promise((r) => setTimeout(r, 5));
    const second = pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: root });
    const results = await Promise.allSettled([first, second]);
    const rejected = results.filter((x) => x.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect((rejected[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
  });
});
