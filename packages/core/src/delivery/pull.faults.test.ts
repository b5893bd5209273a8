// Faults during a pull, against a real HTTP server on loopback: each is detected, reported as a
// typed error, and leaves the installed version untouched and usable.
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { HostError, IntegrityError, TandemError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { changeImage, makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { InstallDir } from './install-dir.js';
import { parseManifest, sha256Hex } from './manifest.js';
import { packWorkspace } from './pack.js';
import { fileSha256, pullWorkspace, type PullOptions } from './pull.js';
import { manifestPathFor, pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { initRepository } from './trust/publisher.js';

let base: string;
let v1: Buffer;
let v2: Buffer;
let rootJson: Buffer;
let oldTimestamp: Buffer;
const servers: TestServer[] = [];

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-faults-'));
  v1 = makeImage(3 << 20, [[1 << 20, 512 << 10]]);
  v2 = changeImage(v1, 6, 64 << 10);
  const store = new DirectoryStore(join(base, 'repo'));
  const { keys, root } = await initRepository({ store });
  rootJson = root;
  for (const [version, image] of [
    ['1.0.0', v1],
    ['2.0.0', v2],
  ] as const) {
    const ws = await writeWorkspace(join(base, `ws-${version}`), { name: 'erp', version, image });
    const pkg = await packWorkspace({ workspaceFile: ws, out: join(base, `erp-${version}.tandem`) });
    await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
    if (version === '1.0.0') oldTimestamp = await readFile(join(base, 'repo', 'timestamp.json'));
  }
}); // the hook limit of vitest.config.ts (packing and pushing images)

afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});

/** A fresh copy of the repository, served over HTTP, and an endpoint with v1 installed. */
async function setup(): Promise<{
  repo: string;
  server: TestServer;
  dir: string;
  pull: (o?: Partial<PullOptions>) => ReturnType<typeof pullWorkspace>;
}> {
  const work = await mkdtemp(join(base, 'case-'));
  const repo = join(work, 'repo');
  await cp(join(base, 'repo'), repo, { recursive: true });
  const server = await serveDirectory(repo);
  servers.push(server);
  const dir = join(work, 'endpoint');
  const pull = (o: Partial<PullOptions> = {}) =>
    pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir,
      trustedRoot: rootJson,
      storeOptions: { retries: 2, retryDelayMs: 5 },
      ...o,
    });
  const first = await pull({ version: '1.0.0' });
  expect(first.version).toBe('1.0.0');
  return { repo, server, dir, pull };
}

/** The installed version is v1, complete and intact. */
async function expectV1Installed(dir: string): Promise<void> {
  const pointer = await new InstallDir(dir).installed();
  expect(pointer?.version).toBe('1.0.0');
  const image = await fileSha256(join(dir, pointer!.image));
  expect(image.sha256).toBe(sha256Hex(v1));
  expect((await readFile(join(dir, pointer!.workspaceFile), 'utf8')).includes('version: 1.0.0')).toBe(true);
}

async function v2ChunkLocation(repo: string): Promise<{ pack: string; offset: number; size: number }> {
  const m2 = parseManifest(await readFile(join(repo, manifestPathFor('erp', '2.0.0'))), 'v2');
  const m1 = parseManifest(await readFile(join(repo, manifestPathFor('erp', '1.0.0'))), 'v1');
  const id = Object.keys(m2.storage.locations).find((i) => !(i in m1.storage.locations))!;
  const [p, offset, size] = m2.storage.locations[id]!;
  return { pack: m2.storage.packs[p]!, offset, size };
}

async function failure(p: Promise<unknown>): Promise<TandemError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(TandemError.is(err)).toBe(true);
  return err as TandemError;
}

describe('pull faults', () => {
  it('a tampered chunk is an IntegrityError, reported as an event; v1 stays installed', async () => {
    const { repo, dir, pull } = await setup();
    const { pack, offset, size } = await v2ChunkLocation(repo);
    const file = join(repo, pack);
    const bytes = await readFile(file);
    bytes[offset + Math.floor(size / 2)]! ^= 0xff;
    await writeFile(file, bytes);
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const err = await failure(pull({ events }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/chunk/i);
    expect(seen.some((e) => e.type === 'integrity.failure')).toBe(true);
    expect(seen.some((e) => e.type === 'sync.failed' && e.data.code === 'TANDEM_INTEGRITY')).toBe(true);
    await expectV1Installed(dir);
  });

  it('a tampered manifest is an IntegrityError; v1 stays installed', async () => {
    const { repo, dir, pull } = await setup();
    const file = join(repo, manifestPathFor('erp', '2.0.0'));
    const bytes = await readFile(file);
    bytes[bytes.length - 5]! ^= 0x01;
    await writeFile(file, bytes);
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/does not match the SHA-256 signed/);
    await expectV1Installed(dir);
  });

  it('a tampered signature is an IntegrityError; v1 stays installed', async () => {
    const { repo, dir, pull } = await setup();
    const file = join(repo, 'timestamp.json');
    const ts = JSON.parse(await readFile(file, 'utf8')) as { signatures: { sig: string }[] };
    const sig = ts.signatures[0]!.sig;
    ts.signatures[0]!.sig = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    await writeFile(file, JSON.stringify(ts));
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/not signed by enough timestamp keys/);
    await expectV1Installed(dir);
  });

  it('signed metadata changed without re-signing is an IntegrityError', async () => {
    const { repo, dir, pull } = await setup();
    const ts = JSON.parse(await readFile(join(repo, 'timestamp.json'), 'utf8')) as {
      signed: { meta: { 'snapshot.json': { version: number } } };
    };
    const snapshotFile = join(repo, `${ts.signed.meta['snapshot.json'].version}.snapshot.json`);
    await writeFile(snapshotFile, (await readFile(snapshotFile, 'utf8')).replace('"spec_version"', '"spec_version" '));
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    await expectV1Installed(dir);
  });

  it('a rollback to older metadata is an IntegrityError; v1 stays installed', async () => {
    const { dir, pull, server } = await setup();
    server.fault = (_req, res, path) => {
      if (path !== 'timestamp.json') return false;
      res.writeHead(200, { 'content-length': oldTimestamp.length }).end(oldTimestamp);
      return true;
    };
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.details['kind']).toBe('rollback');
    await expectV1Installed(dir);
  });

  it('expired metadata (a freeze) is an IntegrityError; v1 stays installed', async () => {
    const { dir, pull } = await setup();
    const clock = new VirtualClock(Date.now() + 400 * 24 * 3600 * 1000);
    const err = await failure(pull({ clock }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.details['kind']).toBe('expired');
    await expectV1Installed(dir);
  });

  it('a server answering 500 is a retryable HostError after the retries; v1 stays installed', async () => {
    const { dir, pull, server } = await setup();
    const before = server.requests.length;
    server.fault = (_req, res, path) => {
      if (!path.startsWith('packs/')) return false;
      res.writeHead(500).end('boom');
      return true;
    };
    const err = await failure(pull());
    expect(err).toBeInstanceOf(HostError);
    expect(err.retryable).toBe(true);
    expect(err.details['status']).toBe(500);
    // One attempt and two retries.
    expect(server.requests.slice(before).filter((r) => r.path.startsWith('packs/')).length).toBe(3);
    await expectV1Installed(dir);
  });

  it('a server ignoring Range is a HostError; pulling with ranges off then works', async () => {
    const { dir, pull, server } = await setup();
    server.fault = (req, res, _path, file) => {
      if (!req.headers.range || !file) return false;
      res.writeHead(200, { 'content-length': file.length }).end(file);
      return true;
    };
    // Small ranges, so that no request covers a whole pack (a 200 would be right for that).
    const err = await failure(pull({ maxRangeBytes: 128 * 1024 }));
    expect(err).toBeInstanceOf(HostError);
    expect(err.message).toMatch(/ignored the Range header/);
    await expectV1Installed(dir);
    const ok = await pull({ storeOptions: { ranges: false } });
    expect(ok.version).toBe('2.0.0');
    expect(sha256Hex(await readFile(ok.image))).toBe(sha256Hex(v2));
  });

  it('a connection dropped mid-body is retried from where it stopped', async () => {
    const { pull, server } = await setup();
    const before = server.requests.length;
    let dropped = 0;
    server.fault = (req, res, path, file) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!path.startsWith('packs/') || !m || !file || dropped > 0) return false;
      dropped++;
      const body = file.subarray(Number(m[1]), Number(m[2]) + 1);
      res.writeHead(206, { 'content-length': body.length, 'content-range': `bytes ${m[1]}-${m[2]}/${file.length}` });
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      return true;
    };
    const result = await pull();
    expect(result.version).toBe('2.0.0');
    expect(sha256Hex(await readFile(result.image))).toBe(sha256Hex(v2));
    const ranged = server.requests.slice(before).filter((r) => r.path.startsWith('packs/'));
    // The retry asked only for the rest of the range.
    const first = /^bytes=(\d+)-(\d+)$/.exec(ranged[0]!.range!)!;
    const second = /^bytes=(\d+)-(\d+)$/.exec(ranged[1]!.range!)!;
    expect(Number(second[1])).toBeGreaterThan(Number(first[1]));
    expect(second[2]).toBe(first[2]);
  });

  it('a connection that keeps dropping is a HostError; the next pull resumes without refetching verified chunks', async () => {
    const { dir, pull, server } = await setup();
    const before = server.requests.length;
    let served = 0;
    server.fault = (req, res, path, file) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!path.startsWith('packs/') || !m || !file) return false;
      if (served++ < 2) return false;
      const body = file.subarray(Number(m[1]), Number(m[2]) + 1);
      res.writeHead(206, { 'content-length': body.length, 'content-range': `bytes ${m[1]}-${m[2]}/${file.length}` });
      res.write(body.subarray(0, 1000), () => res.destroy());
      return true;
    };
    const opts = { parallel: 1, maxRangeBytes: 160 * 1024 };
    const err = await failure(pull(opts));
    expect(err).toBeInstanceOf(HostError);
    expect(err.message).toMatch(/dropped/);
    await expectV1Installed(dir);
    const good = server.requests
      .slice(before)
      .filter((r) => r.path.startsWith('packs/') && r.status === 206 && r.bytes > 0)
      .map((r) => r.range!);
    expect(good.length).toBe(2);
    server.fault = undefined;
    const resumedFrom = server.requests.length;
    const result = await pull(opts);
    expect(result.version).toBe('2.0.0');
    expect(result.bytesResumed).toBeGreaterThan(0);
    expect(sha256Hex(await readFile(result.image))).toBe(sha256Hex(v2));
    const again = server.requests
      .slice(resumedFrom)
      .filter((r) => r.path.startsWith('packs/'))
      .map((r) => r.range!);
    for (const range of good) expect(again).not.toContain(range);
  });
});
