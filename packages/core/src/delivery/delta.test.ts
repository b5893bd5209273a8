import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { DataKey } from '../crypto/data-key.js';
import { testEncryptedImages } from './at-rest.test-helper.js';
import {
  decodeDelta,
  encodeDelta,
  parseSketch,
  ResemblanceIndex,
  serializeSketch,
  superFeatures,
  zstdDictionarySupported,
} from './delta.js';
import { chunkingParams } from './fastcdc.js';
import { makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { parseManifest, serializeManifest, sha256Hex, type ImageManifest } from './manifest.js';
import { packWorkspace } from './pack.js';
import { pullWorkspace } from './pull.js';
import { manifestPathFor, pushPackage, type PushResult } from './push.js';
import { DirectoryStore } from './store/directory.js';
import type { KeySet } from './trust/keys.js';
import { initRepository } from './trust/publisher.js';

/** A new version with `pages` scattered 4 KiB pages each given a few changed bytes, in place. */
function touchPages(image: Buffer, pages: number, seed: number): Buffer {
  const out = Buffer.from(image);
  const count = Math.floor(image.length / 4096);
  for (let i = 0; i < pages; i++) {
    const page = ((Math.imul(i + 1, 2654435761) >>> 0) + seed) % count;
    const at = page * 4096 + ((i * 97) % 4000);
    out.writeUInt32LE((Math.imul(i, 40503) + seed) >>> 0, at);
  }
  return out;
}

describe('resemblance detection and deltas', () => {
  it('this Node.js has zstd dictionaries (Node 24; the feature detection says so)', () => {
    expect(zstdDictionarySupported()).toBe(true);
  });

  it('a chunk with a few bytes changed shares super-features with the original; unrelated chunks do not', () => {
    const a = randomBytes(64 << 10);
    const b = Buffer.from(a);
    for (const at of [100, 20000, 40000, 60000]) b.writeUInt32LE(0xdeadbeef, at);
    const index = new ResemblanceIndex();
    index.add('a', superFeatures(a));
    for (let i = 0; i < 50; i++) index.add(`r${i}`, superFeatures(randomBytes(64 << 10)));
    expect(index.find(superFeatures(b))).toBe('a');
    expect(index.find(superFeatures(randomBytes(64 << 10)))).toBeUndefined();
    const delta = encodeDelta(b, a);
    expect(delta.length).toBeLessThan(200);
    expect(decodeDelta(delta, a, b.length).equals(b)).toBe(true);
    expect(() => decodeDelta(delta, randomBytes(a.length), b.length).equals(b)).not.toThrow(/never/);
  });

  it('sketches round-trip; anything else is not a sketch', () => {
    const f = superFeatures(randomBytes(32 << 10));
    const id = 'ab'.repeat(32);
    const s = serializeSketch([id], () => f);
    expect([...parseSketch(s)!.get(id)!]).toEqual([...f]);
    expect(parseSketch(Buffer.from('nope'))).toBeNull();
    expect(parseSketch(s.subarray(0, s.length - 1))).toBeNull();
  });
});

describe('manifest v2 (deltas)', () => {
  const base = (): ImageManifest => ({
    format: 'tandem.manifest/v1',
    workspace: { name: 'erp', version: '1', file: { name: 'w.yaml', text: 'x', sha256: sha256Hex('x') } },
    image: { path: 'disk.img', format: 'raw', size: 200, sha256: '00'.repeat(32) },
    chunking: chunkingParams(),
    compression: 'zstd',
    createdAt: '2026-01-01T00:00:00Z',
    chunks: [
      { id: '11'.repeat(32), offset: 0, length: 100 },
      { id: '22'.repeat(32), offset: 100, length: 100 },
    ],
    storage: {
      packs: ['packs/a.pack', 'packs/d.pack'],
      locations: { ['11'.repeat(32)]: [0, 0, 100], ['22'.repeat(32)]: [0, 100, 100] },
    },
  });

  it('writes v2 only with deltas, reads both, and the deltas survive the round trip', () => {
    const plain = parseManifest(serializeManifest(base()), 'v1');
    expect(plain.format).toBe('tandem.manifest/v1');
    expect(plain.deltas).toBeUndefined();
    const withDeltas: ImageManifest = {
      ...base(),
      deltas: { ['22'.repeat(32)]: [{ base: '33'.repeat(32), location: [1, 0, 17] }] },
    };
    const back = parseManifest(serializeManifest(withDeltas), 'v2');
    expect(back.format).toBe('tandem.manifest/v2');
    expect(back.deltas).toEqual(withDeltas.deltas);
  });

  it('refuses a delta in a pack that is not listed, with a clear error', () => {
    const bad: ImageManifest = {
      ...base(),
      deltas: { ['22'.repeat(32)]: [{ base: '33'.repeat(32), location: [7, 0, 17] }] },
    };
    expect(() => parseManifest(serializeManifest(bad), 'bad.manifest')).toThrow(InvalidInputError);
    expect(() => parseManifest(serializeManifest(bad), 'bad.manifest')).toThrow(/delta of chunk 2222.*pack 7/);
  });
});

describe('push and pull with deltas', () => {
  let dir: string;
  let server: TestServer;
  let root: Buffer;
  let keys: KeySet;
  let store: DirectoryStore;
  const images: Record<string, Buffer> = {};
  const pushed: Record<string, PushResult> = {};

  const push = async (version: string, image: Buffer, extra: object = {}): Promise<PushResult> => {
    const ws = await writeWorkspace(join(dir, `ws-${version}`), { name: 'erp', version, image });
    const pkg = await packWorkspace({ workspaceFile: ws, out: join(dir, `erp-${version}.tandem`), ...extra });
    return pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
  };
  const manifestOf = async (version: string): Promise<ImageManifest> =>
    parseManifest(await readFile(join(dir, 'repo', manifestPathFor('erp', version))), version);
  const deltaPacks = async (version: string): Promise<Set<string>> => {
    const m = await manifestOf(version);
    return new Set(Object.values(m.deltas ?? {}).flatMap((refs) => refs.map((r) => m.storage.packs[r.location[0]]!)));
  };
  const pull = (into: string, version: string, extra: object = {}) =>
    pullWorkspace({ repo: server.url, workspace: 'erp', dir: join(dir, into), version, trustedRoot: root, ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-delta-'));
    store = new DirectoryStore(join(dir, 'repo'));
    ({ keys, root } = await initRepository({ store }));
    images['1.0.0'] = makeImage(4 << 20, [[1 << 20, 256 << 10]]);
    images['2.0.0'] = touchPages(images['1.0.0'], 12, 1);
    images['3.0.0'] = touchPages(images['2.0.0'], 12, 2);
    for (const v of ['1.0.0', '2.0.0', '3.0.0']) pushed[v] = await push(v, images[v]!);
    server = await serveDirectory(join(dir, 'repo'));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('push stores deltas of near-duplicate chunks (and the whole chunks too), listed in the signed manifest', async () => {
    expect(pushed['1.0.0']!.deltas).toBe(0);
    expect(pushed['2.0.0']!.deltas).toBeGreaterThan(0);
    expect(pushed['2.0.0']!.deltaBytes).toBeLessThan(pushed['2.0.0']!.bytesUploaded / 20);
    const m = await manifestOf('2.0.0');
    expect(m.format).toBe('tandem.manifest/v2');
    expect(Object.keys(m.deltas!).length).toBe(pushed['2.0.0']!.deltas);
    for (const id of Object.keys(m.deltas!)) expect(m.storage.locations[id]).toBeDefined();
  });

  it('an endpoint holding the base fetches only the deltas and rebuilds a verified image', async () => {
    await pull('a', '1.0.0');
    server.requests.length = 0;
    const r = await pull('a', '2.0.0');
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    expect(r.chunksFromDeltas).toBe(pushed['2.0.0']!.deltas);
    expect(r.deltasRejected).toBe(0);
    expect(r.chunksFetched).toBe(0);
    // Deltas and metadata only: far less than one whole chunk per changed chunk.
    expect(r.bytesFetched).toBeLessThan(pushed['2.0.0']!.bytesUploaded / 4);
  });

  it('a tampered delta is rejected (it does not rebuild its chunk) and that chunk is fetched whole', async () => {
    await pull('t', '1.0.0');
    const packs = [...(await deltaPacks('2.0.0'))];
    const saved = new Map<string, Buffer>();
    for (const p of packs) {
      const file = join(dir, 'repo', p);
      const data = await readFile(file);
      saved.set(file, Buffer.from(data));
      for (let i = 0; i < data.length; i += 7) data[i]! ^= 0x55;
      await writeFile(file, data);
    }
    try {
      const r = await pull('t', '2.0.0');
      expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
      expect(r.deltasRejected).toBe(pushed['2.0.0']!.deltas);
      expect(r.chunksFromDeltas).toBe(0);
      expect(r.chunksFetched).toBe(pushed['2.0.0']!.deltas);
    } finally {
      for (const [file, data] of saved) await writeFile(file, data);
    }
  });

  it('a delta pack missing from the repository: those chunks are fetched whole', async () => {
    await pull('m', '1.0.0');
    const packs = [...(await deltaPacks('2.0.0'))];
    for (const p of packs) await rename(join(dir, 'repo', p), join(dir, 'repo', `${p}.away`));
    try {
      const r = await pull('m', '2.0.0');
      expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
      expect(r.deltasRejected).toBe(pushed['2.0.0']!.deltas);
      expect(r.chunksFetched).toBe(pushed['2.0.0']!.deltas);
    } finally {
      for (const p of packs) await rename(join(dir, 'repo', `${p}.away`), join(dir, 'repo', p));
    }
  });

  it('an endpoint without the base (a first pull) fetches whole chunks and no delta', async () => {
    server.requests.length = 0;
    const r = await pull('fresh', '2.0.0');
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    expect(r.chunksFromDeltas).toBe(0);
    const packs = await deltaPacks('2.0.0');
    expect(server.requests.some((q) => packs.has(q.path))).toBe(false);
  });

  it('a chunk the endpoint already holds (in a seed file) is not fetched as a delta either', async () => {
    await pull('s', '1.0.0');
    const seed = join(dir, 'seed.img');
    await writeFile(seed, images['2.0.0']!);
    server.requests.length = 0;
    const r = await pull('s', '2.0.0', { seeds: [seed] });
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    expect(r.chunksFromDeltas).toBe(0);
    expect(r.chunksFetched).toBe(0);
    const packs = await deltaPacks('2.0.0');
    expect(server.requests.some((q) => packs.has(q.path))).toBe(false);
  });

  it('a base in a seed file (no installed version) is used', async () => {
    const seed = join(dir, 'seed-v1.img');
    await writeFile(seed, images['1.0.0']!);
    const r = await pull('sf', '2.0.0', { seeds: [seed] });
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    expect(r.chunksFromDeltas).toBe(pushed['2.0.0']!.deltas);
  });

  it('a base that changed on disk since it was installed is detected; the chunk is fetched whole', async () => {
    await pull('c', '1.0.0');
    const installed = join(dir, 'c', 'versions', '1.0.0', 'images', 'disk.qcow2');
    await writeFile(installed, randomBytes(images['1.0.0']!.length));
    const r = await pull('c', '2.0.0');
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    expect(r.chunksFromDeltas).toBe(0);
  });

  it('an endpoint that skipped a version still gets a correct image (deltas whose base it lacks are fetched whole)', async () => {
    await pull('k', '1.0.0');
    const r = await pull('k', '3.0.0');
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['3.0.0']!));
    const m = await manifestOf('3.0.0');
    expect(r.chunksFromDeltas + r.chunksFetched).toBeGreaterThanOrEqual(Object.keys(m.deltas ?? {}).length);
  });

  it('deltas: false stores none; an encrypted package stores none and pulls as before', async () => {
    const ws = await writeWorkspace(join(dir, 'ws-nodelta'), {
      name: 'other',
      version: '1.0.0',
      image: images['1.0.0']!,
    });
    const pkg = await packWorkspace({ workspaceFile: ws, out: join(dir, 'other-1.tandem') });
    await pushPackage({ package: pkg.path, store, keys });
    const ws2 = await writeWorkspace(join(dir, 'ws-nodelta2'), {
      name: 'other',
      version: '2.0.0',
      image: images['2.0.0']!,
    });
    const pkg2 = await packWorkspace({ workspaceFile: ws2, out: join(dir, 'other-2.tandem') });
    const r = await pushPackage({ package: pkg2.path, store, keys, deltas: false });
    expect(r.deltas).toBe(0);

    const dataKey = DataKey.generate();
    const encStore = new DirectoryStore(join(dir, 'repo-enc'));
    const enc = await initRepository({ store: encStore });
    for (const [v, image] of [
      ['1.0.0', images['1.0.0']!],
      ['2.0.0', images['2.0.0']!],
    ] as const) {
      const w = await writeWorkspace(join(dir, `ws-enc-${v}`), { name: 'erp', version: v, image });
      const p = await packWorkspace({
        workspaceFile: w,
        out: join(dir, `enc-${v}.tandem`),
        encryption: { dataKey },
      });
      const res = await pushPackage({ package: p.path, store: encStore, keys: enc.keys, channels: ['stable'] });
      expect(res.deltas).toBe(0);
    }
    const options = {
      repo: join(dir, 'repo-enc'),
      workspace: 'erp',
      dir: join(dir, 'enc-endpoint'),
      trustedRoot: enc.root,
      key: () => Promise.resolve(new DataKey(dataKey.use((b) => Buffer.from(b)))),
      encryptedImages: testEncryptedImages,
    };
    await pullWorkspace({ ...options, version: '1.0.0' });
    const r2 = await pullWorkspace({ ...options, version: '2.0.0' });
    expect(r2.chunksFromDeltas).toBe(0);
    expect(r2.version).toBe('2.0.0');
    await rm(join(dir, 'enc-endpoint'), { recursive: true, force: true });
  });

  it('refuses deltas.versions that is not a whole number', async () => {
    await expect(
      pushPackage({ package: join(dir, 'erp-3.0.0.tandem'), store, keys, deltas: { versions: -1 } }),
    ).rejects.toThrow(/deltas.versions -1/);
  });
});
