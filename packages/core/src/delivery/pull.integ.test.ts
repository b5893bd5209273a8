// Pull faults that need more than a loopback HTTP server: a really full disk (a tiny tmpfs,
// mounted for the test) and a really killed process (the `tandem pull` command, SIGKILLed).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostError } from '../errors.js';
import { integrationGate } from '../testing/integration.js';
import { changeImage, makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { InstallDir } from './install-dir.js';
import { parseManifest, sha256Hex } from './manifest.js';
import { packWorkspace } from './pack.js';
import { fileSha256, pullWorkspace } from './pull.js';
import { manifestPathFor, pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { initRepository } from './trust/publisher.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../../cli/dist/bin.js');

let base: string;
let rootJson: Buffer;
let server: TestServer;
const images: Record<string, Buffer> = {};

async function publish(
  version: string,
  image: Buffer,
  store: DirectoryStore,
  keys: Awaited<ReturnType<typeof initRepository>>['keys'],
): Promise<void> {
  images[version] = image;
  const ws = await writeWorkspace(join(base, `ws-${version}`), { name: 'erp', version, image });
  const pkg = await packWorkspace({ workspaceFile: ws, out: join(base, `erp-${version}.tandem`) });
  await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-pull-integ-'));
  const store = new DirectoryStore(join(base, 'repo'));
  const { keys, root } = await initRepository({ store });
  rootJson = root;
  const v1 = makeImage(2 << 20, [[512 << 10, 512 << 10]]);
  await publish('1.0.0', v1, store, keys);
  await publish('2.0.0', changeImage(v1, 6, 64 << 10), store, keys);
  // Mostly new data: too big for the small disk below.
  await publish('3.0.0', makeImage(6 << 20), store, keys);
  server = await serveDirectory(join(base, 'repo'));
}); // the hook limit of vitest.config.ts (packing and pushing images)

afterAll(async () => {
  await server?.close();
});

async function expectInstalled(dir: string, version: string): Promise<void> {
  const pointer = await new InstallDir(dir).installed();
  expect(pointer?.version).toBe(version);
  expect((await fileSha256(join(dir, pointer!.image))).sha256).toBe(sha256Hex(images[version]!));
}

const tmpfs = await integrationGate(
  'tmpfs (full-disk test)',
  () => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'mounting a tmpfs needs root on Linux';
    const probe = join(tmpdir(), `tandem-tmpfs-probe-${process.pid}`);
    spawnSync('mkdir', ['-p', probe]);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
    if (mounted.status !== 0) return `mount -t tmpfs failed: ${String(mounted.stderr).trim()}`;
    spawnSync('umount', [probe]);
    return null;
  },
  'run the tests as root on Linux (CI does)',
);

describe.skipIf(!tmpfs.enabled)('full disk (a 5 MiB tmpfs)', () => {
  let mountPoint: string;
  beforeAll(async () => {
    mountPoint = join(base, 'small-disk');
    await mkdir(mountPoint, { recursive: true });
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=5m', 'tmpfs', mountPoint]);
    expect(r.status).toBe(0);
  });
  afterAll(() => {
    spawnSync('umount', [mountPoint]);
  });

  it('is a retryable HostError saying the disk is full; the installed version stays', async () => {
    const dir = join(mountPoint, 'endpoint');
    await pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: rootJson, version: '1.0.0' });
    await expectInstalled(dir, '1.0.0');
    const err = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '3.0.0' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HostError);
    expect((err as HostError).message).toMatch(/disk is full/);
    expect((err as HostError).retryable).toBe(true);
    await expectInstalled(dir, '1.0.0');
    // Once there is room (the staging area of the failed pull is dropped), pulls work again.
    await rm(join(dir, 'staging'), { recursive: true, force: true });
    const ok = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '2.0.0' });
    expect(ok.version).toBe('2.0.0');
    await expectInstalled(dir, '2.0.0');
  });
});

const cli = await integrationGate(
  'tandem CLI build',
  () => (existsSync(CLI) ? null : `${CLI} is not built`),
  'run npx tsc -b first (npm test does)',
);

describe.skipIf(!cli.enabled)('killed process', () => {
  it('a pull killed midway leaves the installed version; the next pull resumes without refetching journaled chunks', async () => {
    const dir = join(base, 'killed');
    await pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: rootJson, version: '1.0.0' });
    server.delayMs = 100;
    const before = server.requests.length;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'pull',
        server.url,
        'erp',
        '--dir',
        dir,
        '--release',
        '2.0.0',
        '--json',
        '--parallel',
        '1',
        '--max-range-kib',
        '64',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let errText = '';
    child.stderr.on('data', (d: Buffer) => (errText += String(d)));
    const killed = new Promise<void>((resolvePromise) => {
      child.stdout.on('data', (d: Buffer) => {
        out += String(d);
        const fetched = out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { event?: string; bytesFetched?: number })
          .filter((e) => e.event === 'sync.progress' && (e.bytesFetched ?? 0) > 0);
        if (fetched.length >= 3 && !child.killed) child.kill('SIGKILL');
      });
      child.on('exit', () => resolvePromise());
    });
    await killed;
    server.delayMs = 0;
    expect(child.signalCode, `the pull ended by itself: ${out}\n${errText}`).toBe('SIGKILL');
    await expectInstalled(dir, '1.0.0');
    const journal = (await readFile(join(dir, 'staging', '2.0.0', '.tandem', 'journal'), 'utf8'))
      .split('\n')
      .filter(Boolean);
    expect(journal.length).toBeGreaterThan(0);

    const resumedFrom = server.requests.length;
    expect(resumedFrom).toBeGreaterThan(before);
    const result = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, version: '2.0.0' });
    expect(result.bytesResumed).toBeGreaterThan(0);
    await expectInstalled(dir, '2.0.0');
    // No range asked for after the restart covers a chunk the killed pull had journaled.
    const manifest = parseManifest(await readFile(join(base, 'repo', manifestPathFor('erp', '2.0.0'))), 'v2');
    const journaled = journal
      .map((id) => manifest.storage.locations[id]!)
      .map(([p, offset, size]) => ({ pack: manifest.storage.packs[p]!, offset, size }));
    for (const r of server.requests.slice(resumedFrom).filter((q) => q.path.startsWith('packs/'))) {
      const [from, to] = /^bytes=(\d+)-(\d+)$/.exec(r.range!)!.slice(1).map(Number) as [number, number];
      for (const j of journaled) if (j.pack === r.path) expect(j.offset + j.size <= from || j.offset > to).toBe(true);
    }
  });
});
