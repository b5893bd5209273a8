// Deltas of encrypted images (issues 11 and 18): made at `pack --encrypt` time against the
// previous version's encrypted package, encrypted, published by a push without the key, and
// applied by the endpoint against the installed (encrypted at rest) version, with fallbacks.
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkCipher } from '../crypto/chunk-cipher.js';
import { DataKey } from '../crypto/data-key.js';
import { HostError } from '../errors.js';
import { openImages, testEncryptedImages } from './at-rest.test-helper.js';
import { changeImage, makeImage, seededBytes, writeWorkspace } from './fixtures.test.util.js';
import { parseManifest, type ImageManifest } from './manifest.js';
import { packWorkspace, type PackResult } from './pack.js';
import { diskKeyFor } from './pull-encrypted.js';
import { pullWorkspace, type PullResult } from './pull.js';
import { manifestPathFor, pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import type { ReadOptions } from './store/types.js';
import type { KeySet } from './trust/keys.js';
import { initRepository } from './trust/publisher.js';

/** A new version with `pages` scattered 4 KiB pages each given a few changed bytes, in place. */
function touchPages(image: Buffer, pages: number, seed: number): Buffer {
  const out = Buffer.from(image);
  const count = Math.floor(image.length / 4096);
  for (let i = 0; i < pages; i++) {
    const page = ((Math.imul(i + 1, 2654435761) >>> 0) + seed) % count;
    out.writeUInt32LE((Math.imul(i, 40503) + seed) >>> 0, page * 4096 + ((i * 97) % 4000));
  }
  return out;
}

const MARKER = Buffer.from('TANDEM-DELTA-CANARY-51c0e2');
let dir: string;
let key: DataKey;
// Seeded, so the delta counts below are the same on every run.
const bytes = seededBytes(18);
const v1 = makeImage(4 << 20, [[1 << 20, 256 << 10]], bytes);
const v2 = touchPages(v1, 24, 7);
// The marker sits in a changed chunk of v2 only, so it is in some delta's plaintext.
MARKER.copy(v2, 3 << 20);
let p1: PackResult;
let p2: PackResult;
let keys: KeySet;
let root: Buffer;
let repo: string;

const keyFn = (): Promise<DataKey> => Promise.resolve(new DataKey(key.use((b) => Buffer.from(b))));

async function installedImage(endpoint: string, version: string, m: ImageManifest): Promise<Buffer> {
  const image = await testEncryptedImages.open(join(endpoint, 'versions', version, m.image.path), diskKeyFor(key), {
    readOnly: true,
  });
  try {
    return await image.read(0, m.image.size);
  } finally {
    await image.close();
  }
}

/** Pulls 1.0.0 then 2.0.0 from `from` into a fresh endpoint; returns the second pull. */
async function pullBoth(from: string, endpoint: string): Promise<PullResult> {
  const options = { repo: from, workspace: 'erp', dir: endpoint, key: keyFn, encryptedImages: testEncryptedImages };
  await pullWorkspace({ ...options, version: '1.0.0', trustedRoot: root });
  const r = await pullWorkspace({ ...options, version: '2.0.0' });
  expect((await installedImage(endpoint, '2.0.0', p2.manifest)).equals(v2)).toBe(true);
  return r;
}

async function repoManifest(at: string): Promise<ImageManifest> {
  const path = manifestPathFor('erp', '2.0.0');
  return parseManifest(await readFile(join(at, path)), path);
}

/** Rewrites every delta object of the repository copy at `at` with `edit`. */
async function editDeltas(at: string, edit: (id: string, base: string, sealed: Buffer) => Buffer): Promise<void> {
  const m = await repoManifest(at);
  for (const [id, refs] of Object.entries(m.deltas ?? {})) {
    for (const { base, location } of refs) {
      const file = join(at, m.storage.packs[location[0]]!);
      const pack = await readFile(file);
      const sealed = pack.subarray(location[1], location[1] + location[2]);
      const out = edit(id, base, Buffer.from(sealed));
      expect(out.length).toBe(sealed.length);
      out.copy(pack, location[1]);
      await writeFile(file, pack);
    }
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tandem-enc-delta-'));
  key = DataKey.generate();
  const ws1 = await writeWorkspace(join(dir, 'ws-1'), { name: 'erp', version: '1.0.0', image: v1 });
  const ws2 = await writeWorkspace(join(dir, 'ws-2'), { name: 'erp', version: '2.0.0', image: v2 });
  p1 = await packWorkspace({ workspaceFile: ws1, out: join(dir, 'erp-1.tandem'), encryption: { dataKey: key } });
  p2 = await packWorkspace({
    workspaceFile: ws2,
    out: join(dir, 'erp-2'),
    format: 'directory',
    encryption: { dataKey: key, deltaFrom: p1.path },
  });
  repo = join(dir, 'repo');
  const store = new DirectoryStore(repo);
  const init = await initRepository({ store });
  [keys, root] = [init.keys, init.root];
  await pushPackage({ package: p1.path, store, keys, channels: ['stable'] });
}, 120_000);

afterAll(async () => {
  key?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('encrypted deltas', () => {
  it('pack --encrypt with deltaFrom stores encrypted deltas for the changed chunks', () => {
    expect(p2.deltas).toBeGreaterThan(10);
    expect(p2.manifest.format).toBe('tandem.manifest/v2');
    const changed = p2.manifest.chunks.filter((c) => !c.zero && !p1.manifest.chunks.some((o) => o.id === c.id)).length;
    expect(p2.deltas).toBeLessThanOrEqual(changed);
    // Each delta names a base from the previous version, and is much smaller than its chunk.
    const previous = new Set(p1.manifest.chunks.map((c) => c.id));
    for (const [id, refs] of Object.entries(p2.manifest.deltas!)) {
      expect(previous.has(refs[0]!.base)).toBe(true);
      expect(refs[0]!.location[2] * 2).toBeLessThanOrEqual(p2.manifest.storage.locations[id]![2]);
    }
    expect(p2.deltaBytes).toBeLessThan(p2.deltas * 2048);
  });

  it('push publishes them without the key; the endpoint rebuilds the chunks and fetches far less', async () => {
    const store = new DirectoryStore(repo);
    const pushed = await pushPackage({ package: p2.path, store, keys, channels: ['stable'] });
    expect(pushed.deltas).toBe(p2.deltas);
    // A copy of the repository as it was, pushed without deltas: what a pull costs without them.
    const whole = join(dir, 'repo-whole');
    const init = await initRepository({ store: new DirectoryStore(whole) });
    const r0 = { repo: whole, workspace: 'erp', key: keyFn, encryptedImages: testEncryptedImages };
    await pushPackage({ package: p1.path, store: new DirectoryStore(whole), keys: init.keys, channels: ['stable'] });
    await pushPackage({
      package: p2.path,
      store: new DirectoryStore(whole),
      keys: init.keys,
      channels: ['stable'],
      deltas: false,
    });
    expect((await repoManifest(whole)).deltas).toBeUndefined();
    const ep0 = join(dir, 'ep-whole');
    await pullWorkspace({ ...r0, dir: ep0, version: '1.0.0', trustedRoot: init.root });
    const without = await pullWorkspace({ ...r0, dir: ep0, version: '2.0.0' });
    expect(without.chunksFromDeltas).toBe(0);

    // The repository shows no plaintext: the marker is only inside an encrypted delta and chunk.
    const m = await repoManifest(repo);
    for (const pack of new Set(m.storage.packs))
      expect((await readFile(join(repo, pack))).includes(MARKER)).toBe(false);

    const r = await pullBoth(repo, join(dir, 'ep'));
    expect(r.chunksFromDeltas).toBe(Object.keys(m.deltas!).length);
    expect(r.deltasRejected).toBe(0);
    expect(r.bytesFetched * 2).toBeLessThan(without.bytesFetched);
    expect(openImages.size).toBe(0);
  });

  it('a tampered delta is rejected and its chunk fetched whole; the image is still right', async () => {
    const copy = join(dir, 'repo-tampered');
    await cp(repo, copy, { recursive: true });
    await editDeltas(copy, (_id, _base, sealed) => {
      sealed[sealed.length >> 1]! ^= 0x40;
      return sealed;
    });
    const r = await pullBoth(copy, join(dir, 'ep-tampered'));
    expect(r.chunksFromDeltas).toBe(0);
    expect(r.deltasRejected).toBe(Object.keys((await repoManifest(copy)).deltas!).length);
  });

  it('a delta sealed under another data key, or for another pair of chunks, is rejected', async () => {
    using cipher = new ChunkCipher(key);
    using wrong = new ChunkCipher(DataKey.generate());
    const copy = join(dir, 'repo-wrong-key');
    await cp(repo, copy, { recursive: true });
    let n = 0;
    await editDeltas(copy, (id, base, sealed) => {
      const delta = cipher.decryptDelta(id, base, sealed);
      // Half under another key, half under the right key for another chunk id (swapped ids).
      return n++ % 2 === 0 ? wrong.encryptDelta(id, base, delta) : cipher.encryptDelta(base, id, delta);
    });
    const r = await pullBoth(copy, join(dir, 'ep-wrong-key'));
    expect(r.chunksFromDeltas).toBe(0);
    expect(r.deltasRejected).toBe(n);
  });

  it('an endpoint without the base (a cold pull) or whose base changed on disk fetches whole chunks', async () => {
    const cold = await pullWorkspace({
      repo,
      workspace: 'erp',
      dir: join(dir, 'ep-cold'),
      version: '2.0.0',
      trustedRoot: root,
      key: keyFn,
      encryptedImages: testEncryptedImages,
    });
    expect(cold.chunksFromDeltas).toBe(0);
    expect(cold.deltasRejected).toBe(0);
    expect((await installedImage(join(dir, 'ep-cold'), '2.0.0', p2.manifest)).equals(v2)).toBe(true);

    // Version 1 installed, then the bases in its encrypted image damaged (as a disk fault would).
    const ep = join(dir, 'ep-damaged');
    const options = { repo, workspace: 'erp', dir: ep, key: keyFn, encryptedImages: testEncryptedImages };
    await pullWorkspace({ ...options, version: '1.0.0', trustedRoot: root });
    const file = join(ep, 'versions', '1.0.0', p1.manifest.image.path);
    const image = await readFile(file);
    const m = await repoManifest(repo);
    const offsets = new Map(p1.manifest.chunks.map((c) => [c.id, c.offset]));
    for (const refs of Object.values(m.deltas!)) image[offsets.get(refs[0]!.base)! + 10]! ^= 1;
    await writeFile(file, image);
    const r = await pullWorkspace({ ...options, version: '2.0.0' });
    expect(r.chunksFromDeltas).toBe(0);
    expect(r.deltasRejected).toBe(Object.keys(m.deltas!).length);
    expect((await installedImage(ep, '2.0.0', p2.manifest)).equals(v2)).toBe(true);
  });

  it('a delta pack missing from the repository: those chunks are fetched whole', async () => {
    const copy = join(dir, 'repo-no-delta-pack');
    await cp(repo, copy, { recursive: true });
    const m = await repoManifest(copy);
    const wholePacks = new Set(Object.values(m.storage.locations).map(([p]) => p));
    const deltaPacks = new Set(Object.values(m.deltas!).flatMap((refs) => refs.map((d) => d.location[0])));
    for (const p of deltaPacks) if (!wholePacks.has(p)) await rm(join(copy, m.storage.packs[p]!));
    const r = await pullBoth(copy, join(dir, 'ep-no-delta-pack'));
    expect(r.chunksFromDeltas).toBe(0);
    expect(r.deltasRejected).toBe(Object.keys(m.deltas!).length);
  });

  it('a delta range the repository fails to serve fails the pull; the other fetches stop; v1 stays', async () => {
    const ep = join(dir, 'ep-failing');
    const options = { workspace: 'erp', dir: ep, key: keyFn, encryptedImages: testEncryptedImages };
    await pullWorkspace({ ...options, repo, version: '1.0.0', trustedRoot: root });
    const m = await repoManifest(repo);
    const deltaPacks = new Set(
      Object.values(m.deltas!).flatMap((refs) => refs.map((d) => m.storage.packs[d.location[0]]!)),
    );
    // The first delta range fails at once; every other one answers a turn of the event loop later,
    // so the other worker is still fetching when the first fails.
    const real = new DirectoryStore(repo);
    let deltaRanges = 0;
    let inFlight = 0;
    const getRange = async (path: string, offset: number, length: number, o?: ReadOptions): Promise<Buffer> => {
      if (!deltaPacks.has(path)) return real.getRange(path, offset, length, o);
      if (deltaRanges++ === 0) throw new HostError('The repository answered 500 (test).', { retryable: true });
      inFlight++;
      try {
        await new Promise((r) => setImmediate(r));
        return await real.getRange(path, offset, length, o);
      } finally {
        inFlight--;
      }
    };
    const failing = new Proxy(real, {
      get: (target, name) => {
        if (name === 'getRange') return getRange;
        const value: unknown = Reflect.get(target, name);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const parallel = 2;
    const err = await pullWorkspace({ ...options, repo: failing, version: '2.0.0', parallel, maxRangeBytes: 1 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HostError);
    // Nothing still running when the pull failed, and no range taken after the failure.
    expect(inFlight).toBe(0);
    expect(Object.keys(m.deltas!).length).toBeGreaterThan(parallel * 2);
    expect(deltaRanges).toBeLessThanOrEqual(parallel);
    expect(existsSync(join(ep, 'versions', '2.0.0'))).toBe(false);
    expect((await installedImage(ep, '1.0.0', p1.manifest)).equals(v1)).toBe(true);
  });

  it('a chunk the endpoint already has (from a seed) needs no delta', async () => {
    const ep = join(dir, 'ep-seeded');
    const options = { repo, workspace: 'erp', dir: ep, key: keyFn, encryptedImages: testEncryptedImages };
    await pullWorkspace({ ...options, version: '1.0.0', trustedRoot: root });
    const seed = join(dir, 'v2-seed.img');
    await writeFile(seed, v2);
    const r = await pullWorkspace({ ...options, version: '2.0.0', seeds: [seed] });
    expect(r.chunksFromDeltas).toBe(0);
    expect(r.chunksFetched).toBe(0);
    expect((await installedImage(ep, '2.0.0', p2.manifest)).equals(v2)).toBe(true);
  });

  it('the chunks around an insert or overwrite of new data get deltas against their old neighbours', async () => {
    // Random data inserted and overwritten: the chunks at the edges are partly old, partly new.
    const v3 = changeImage(v1, 6, 40 << 10, bytes);
    const ws3 = await writeWorkspace(join(dir, 'ws-3'), { name: 'erp', version: '3.0.0', image: v3 });
    const p3 = await packWorkspace({
      workspaceFile: ws3,
      out: join(dir, 'erp-3.tandem'),
      encryption: { dataKey: key, deltaFrom: p1.path },
    });
    // 9 or 10 here (of 12 edge chunks); 3 by resemblance alone.
    expect(p3.deltas).toBeGreaterThanOrEqual(6);
  });

  it('deltaFrom must be the previous encrypted package of the same workspace and data key', async () => {
    const ws = join(dir, 'ws-2', 'tandem.workspace.yaml');
    const plain = await packWorkspace({
      workspaceFile: join(dir, 'ws-1', 'tandem.workspace.yaml'),
      out: join(dir, 'plain-1.tandem'),
    });
    const attempt = (deltaFrom: string, dataKey = key): Promise<unknown> =>
      packWorkspace({ workspaceFile: ws, out: join(dir, 'bad.tandem'), encryption: { dataKey, deltaFrom } });
    await expect(attempt(plain.path)).rejects.toMatchObject({
      code: 'TANDEM_INVALID_INPUT',
      message: expect.stringMatching(/not an encrypted package/),
    });
    using other = DataKey.generate();
    await expect(attempt(p1.path, other)).rejects.toMatchObject({
      code: 'TANDEM_INVALID_INPUT',
      message: expect.stringMatching(/encrypted with data key/),
    });
    const otherWs = await writeWorkspace(join(dir, 'ws-other'), { name: 'crm', version: '1.0.0', image: v1 });
    await expect(
      packWorkspace({
        workspaceFile: otherWs,
        out: join(dir, 'bad.tandem'),
        encryption: { dataKey: key, deltaFrom: p1.path },
      }),
    ).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT', message: expect.stringMatching(/package of erp/) });
    await expect(attempt(join(dir, 'nothing.tandem'))).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
  });
});
