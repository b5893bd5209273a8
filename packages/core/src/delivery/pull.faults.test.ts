// Faults during a pull, against a real HTTP server on loopback: each is detected, reported as a
// typed error, and leaves the installed version untouched and usable. One table over plaintext
// and encrypted workspaces (issue 11: an encrypted pull keeps the same faults, resume and atomic
// switch); the encrypted rows pull into the test stand-in for at-rest encryption.
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { DataKey } from '../crypto/data-key.js';
import { HostError, IntegrityError, TandemError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { openImages, testEncryptedImages } from './at-rest.test-helper.js';
import { changeImage, makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { InstallDir } from './install-dir.js';
import { parseManifest, sha256Hex } from './manifest.js';
import { packWorkspace } from './pack.js';
import { diskKeyFor } from './pull-encrypted.js';
import { pullWorkspace, type PullOptions } from './pull.js';
import { manifestPathFor, pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { consistentTargetPath } from './trust/metadata.js';
import { initRepository } from './trust/publisher.js';

let v1: Buffer;
let v2: Buffer;
const servers: TestServer[] = [];
let dataKey: DataKey;

/** A repository with v1 and v2 of one workspace, packed plaintext or encrypted. */
interface Repository {
  base: string;
  rootJson: Buffer;
  oldTimestamp: Buffer;
}

/** How one row of the table packs, pulls and reads back an installed image. */
interface Mode {
  readonly name: string;
  readonly encrypted: boolean;
  repo?: Repository;
  /** Extra options of every pull. */
  pullOptions(): Partial<PullOptions>;
  /** The plaintext of an installed image (the encrypted one read through its at-rest key). */
  plaintextOf(path: string, size: number): Promise<Buffer>;
}

const plaintext: Mode = {
  name: 'plaintext',
  encrypted: false,
  pullOptions: () => ({}),
  plaintextOf: async (path) => readFile(path),
};

const encrypted: Mode = {
  name: 'encrypted',
  encrypted: true,
  // The pull disposes of the key it is given, so each pull gets a copy.
  pullOptions: () => ({
    key: () => Promise.resolve(new DataKey(dataKey.use((b) => Buffer.from(b)))),
    encryptedImages: testEncryptedImages,
  }),
  async plaintextOf(path, size) {
    const k = diskKeyFor(dataKey);
    const image = await testEncryptedImages.open(path, k, { readOnly: true });
    try {
      return await image.read(0, size);
    } finally {
      await image.close();
      k.fill(0);
    }
  },
};

async function makeRepository(encrypt: boolean): Promise<Repository> {
  const base = await mkdtemp(join(tmpdir(), `tandem-faults-${encrypt ? 'enc' : 'plain'}-`));
  const store = new DirectoryStore(join(base, 'repo'));
  const { keys, root } = await initRepository({ store });
  let oldTimestamp = Buffer.alloc(0);
  for (const [version, image] of [
    ['1.0.0', v1],
    ['2.0.0', v2],
  ] as const) {
    const ws = await writeWorkspace(join(base, `ws-${version}`), { name: 'erp', version, image });
    const pkg = await packWorkspace({
      workspaceFile: ws,
      out: join(base, `erp-${version}.tandem`),
      ...(encrypt ? { encryption: { dataKey } } : {}),
    });
    await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
    if (version === '1.0.0') oldTimestamp = await readFile(join(base, 'repo', 'timestamp.json'));
  }
  return { base, rootJson: root, oldTimestamp };
}

beforeAll(async () => {
  v1 = makeImage(3 << 20, [[1 << 20, 512 << 10]]);
  v2 = changeImage(v1, 6, 64 << 10);
  dataKey = DataKey.generate();
  plaintext.repo = await makeRepository(false);
  encrypted.repo = await makeRepository(true);
}); // the hook limit of vitest.config.ts (packing and pushing images)

afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
  // Every encrypted image a pull opened, it closed, whatever the fault.
  expect(openImages.size).toBe(0);
});

afterAll(() => dataKey?.dispose());

/** A fresh copy of the repository, served over HTTP, and an endpoint with v1 installed. */
async function setup(mode: Mode): Promise<{
  repo: string;
  server: TestServer;
  dir: string;
  pull: (o?: Partial<PullOptions>) => ReturnType<typeof pullWorkspace>;
}> {
  const { base, rootJson } = mode.repo!;
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
      ...mode.pullOptions(),
      ...o,
    });
  const first = await pull({ version: '1.0.0' });
  expect(first.version).toBe('1.0.0');
  return { repo, server, dir, pull };
}

/** The installed version is v1, complete and intact. */
async function expectV1Installed(mode: Mode, dir: string): Promise<void> {
  const pointer = await new InstallDir(dir).installed();
  expect(pointer?.version).toBe('1.0.0');
  const image = await mode.plaintextOf(join(dir, pointer!.image), v1.length);
  expect(sha256Hex(image.subarray(0, v1.length))).toBe(sha256Hex(v1));
  const workspaceFile = await readFile(join(dir, pointer!.workspaceFile), 'utf8');
  expect(workspaceFile.includes('version: 1.0.0')).toBe(true);
  if (mode.encrypted) expect(workspaceFile).toMatch(/keyId: erp/);
}

/** The pulled image is v2. */
async function expectV2(mode: Mode, image: string): Promise<void> {
  expect(sha256Hex((await mode.plaintextOf(image, v2.length)).subarray(0, v2.length))).toBe(sha256Hex(v2));
}

/**
 * Where a chunk new in v2 is stored: its whole copy, and its delta against a v1 chunk when push
 * made one. An endpoint holding v1 rebuilds such a chunk from its delta and never reads the whole
 * copy, so tampering with the whole copy alone would go unnoticed (correctly) and fail a test by
 * chance: the images are random, and only some new chunks get a delta.
 */
async function v2ChunkLocations(repo: string): Promise<{ pack: string; offset: number; size: number }[]> {
  const m2 = parseManifest(await readFile(join(repo, manifestPathFor('erp', '2.0.0'))), 'v2');
  const m1 = parseManifest(await readFile(join(repo, manifestPathFor('erp', '1.0.0'))), 'v1');
  const id = Object.keys(m2.storage.locations).find((i) => !(i in m1.storage.locations))!;
  return [m2.storage.locations[id]!, ...(m2.deltas?.[id] ?? []).map((d) => d.location)].map(([p, offset, size]) => ({
    pack: m2.storage.packs[p]!,
    offset,
    size,
  }));
}

async function failure(p: Promise<unknown>): Promise<TandemError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(TandemError.is(err)).toBe(true);
  return err as TandemError;
}

describe.each([plaintext, encrypted])('pull faults ($name)', (mode) => {
  it('a tampered chunk is an IntegrityError, reported as an event; v1 stays installed', async () => {
    const { repo, dir, pull } = await setup(mode);
    // The whole chunk, and its delta if it has one (else the delta rebuilds it and the pull succeeds).
    for (const { pack, offset, size } of await v2ChunkLocations(repo)) {
      const file = join(repo, pack);
      const bytes = await readFile(file);
      bytes[offset + Math.floor(size / 2)]! ^= 0xff;
      await writeFile(file, bytes);
    }
    const events = new EventBus();
    const seen: AnyTandemEvent[] = [];
    events.on('*', (e) => seen.push(e));
    const err = await failure(pull({ events }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/chunk/i);
    expect(seen.map((e) => e.type)).toContain('integrity.failure');
    expect(seen.some((e) => e.type === 'sync.failed' && e.data.code === 'TANDEM_INTEGRITY')).toBe(true);
    await expectV1Installed(mode, dir);
  });

  it('a tampered manifest is an IntegrityError; v1 stays installed', async () => {
    const { repo, dir, pull } = await setup(mode);
    // Both copies: the consistent (hash-prefixed) one endpoints read, and the plain one.
    const path = manifestPathFor('erp', '2.0.0');
    const bytes = await readFile(join(repo, path));
    const consistent = join(repo, consistentTargetPath(path, sha256Hex(bytes)));
    bytes[bytes.length - 5]! ^= 0x01;
    await writeFile(join(repo, path), bytes);
    await writeFile(consistent, bytes);
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/does not match the SHA-256 signed/);
    await expectV1Installed(mode, dir);
  });

  it('a tampered signature is an IntegrityError; v1 stays installed', async () => {
    const { repo, dir, pull } = await setup(mode);
    const file = join(repo, 'timestamp.json');
    const ts = JSON.parse(await readFile(file, 'utf8')) as { signatures: { sig: string }[] };
    const sig = ts.signatures[0]!.sig;
    ts.signatures[0]!.sig = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    await writeFile(file, JSON.stringify(ts));
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/not signed by enough timestamp keys/);
    await expectV1Installed(mode, dir);
  });

  it('signed metadata changed without re-signing is an IntegrityError', async () => {
    const { repo, dir, pull } = await setup(mode);
    const ts = JSON.parse(await readFile(join(repo, 'timestamp.json'), 'utf8')) as {
      signed: { meta: { 'snapshot.json': { version: number } } };
    };
    const snapshotFile = join(repo, `${ts.signed.meta['snapshot.json'].version}.snapshot.json`);
    await writeFile(snapshotFile, (await readFile(snapshotFile, 'utf8')).replace('"spec_version"', '"spec_version" '));
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    await expectV1Installed(mode, dir);
  });

  it('a rollback to older metadata is an IntegrityError; v1 stays installed', async () => {
    const { dir, pull, server } = await setup(mode);
    server.fault = (_req, res, path) => {
      if (path !== 'timestamp.json') return false;
      const { oldTimestamp } = mode.repo!;
      res.writeHead(200, { 'content-length': oldTimestamp.length }).end(oldTimestamp);
      return true;
    };
    const err = await failure(pull());
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.details['kind']).toBe('rollback');
    await expectV1Installed(mode, dir);
  });

  it('expired metadata (a freeze) is an IntegrityError; v1 stays installed', async () => {
    const { dir, pull } = await setup(mode);
    const clock = new VirtualClock(Date.now() + 400 * 24 * 3600 * 1000);
    const err = await failure(pull({ clock }));
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.details['kind']).toBe('expired');
    await expectV1Installed(mode, dir);
  });

  it('a server answering 500 is a retryable HostError after the retries; v1 stays installed', async () => {
    const { dir, pull, server } = await setup(mode);
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
    await expectV1Installed(mode, dir);
  });

  it('a server ignoring Range is a HostError; pulling with ranges off then works', async () => {
    const { dir, pull, server } = await setup(mode);
    server.fault = (req, res, _path, file) => {
      if (!req.headers.range || !file) return false;
      res.writeHead(200, { 'content-length': file.length }).end(file);
      return true;
    };
    // Small ranges, so that no request covers a whole pack (a 200 would be right for that).
    const err = await failure(pull({ maxRangeBytes: 128 * 1024 }));
    expect(err).toBeInstanceOf(HostError);
    expect(err.message).toMatch(/ignored the Range header/);
    await expectV1Installed(mode, dir);
    const ok = await pull({ storeOptions: { ranges: false } });
    expect(ok.version).toBe('2.0.0');
    await expectV2(mode, ok.image);
  });

  it('a connection dropped mid-body is retried from where it stopped', async () => {
    const { pull, server } = await setup(mode);
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
    await expectV2(mode, result.image);
    const ranged = server.requests.slice(before).filter((r) => r.path.startsWith('packs/'));
    // The retry asked only for the rest of the range.
    const first = /^bytes=(\d+)-(\d+)$/.exec(ranged[0]!.range!)!;
    const second = /^bytes=(\d+)-(\d+)$/.exec(ranged[1]!.range!)!;
    expect(Number(second[1])).toBeGreaterThan(Number(first[1]));
    expect(second[2]).toBe(first[2]);
  });

  it('a connection that keeps dropping is a HostError; the next pull resumes without refetching verified chunks', async () => {
    const { dir, pull, server } = await setup(mode);
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
    await expectV1Installed(mode, dir);
    const good = server.requests
      .slice(before)
      .filter((r) => r.path.startsWith('packs/') && r.status === 206 && r.bytes > 0)
      .map((r) => `${r.path} ${r.range!}`);
    expect(good.length).toBe(2);
    server.fault = undefined;
    const resumedFrom = server.requests.length;
    const result = await pull(opts);
    expect(result.version).toBe('2.0.0');
    expect(result.bytesResumed).toBeGreaterThan(0);
    await expectV2(mode, result.image);
    const again = server.requests
      .slice(resumedFrom)
      .filter((r) => r.path.startsWith('packs/'))
      .map((r) => `${r.path} ${r.range!}`);
    // (Whole chunks and deltas alike: the first two ranges may be deltas, which are journaled too.)
    for (const range of good) expect(again).not.toContain(range);
  });
});
