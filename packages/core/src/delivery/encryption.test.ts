// Encrypted packages and repositories (issue 11): keyed chunk ids, AES-256-GCM chunks, an
// authenticated manifest; versions share unchanged chunks; a pull without the key stops before
// fetching any chunk.
import { createHash } from 'node:crypto';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkCipher } from '../crypto/chunk-cipher.js';
import { DataKey } from '../crypto/data-key.js';
import { TandemError } from '../errors.js';
import { decodeEncryptedChunk, verifyManifest } from './encryption.js';
import { openImages, testEncryptedImages } from './at-rest.test-helper.js';
import { diskKeyFor } from './pull-encrypted.js';
import { changeImage, makeImage, serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { parseManifest, type ImageManifest } from './manifest.js';
import { openPackage } from './package-file.js';
import { packWorkspace, type PackResult } from './pack.js';
import { pullWorkspace } from './pull.js';
import { pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { initRepository } from './trust/publisher.js';

const CANARY = Buffer.from('TANDEM-CANARY-7f3a9c1e-PLAINTEXT-MARKER');

/** A disk-like image with the canary written at many places, and runs of zeros. */
function canaryImage(size: number): Buffer {
  const image = makeImage(size, [[size / 4, size / 4]]);
  for (let at = 4096; at + CANARY.length < size; at += 97 * 1024) CANARY.copy(image, at);
  return image;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** Fails when the canary (or its zstd-compressed form's telltale) is in any file under `dir`. */
async function expectNoCanary(dir: string): Promise<void> {
  for (const file of await filesUnder(dir)) {
    const data = await readFile(file);
    expect(data.includes(CANARY), `${file} holds the canary`).toBe(false);
    expect(data.includes(CANARY.subarray(0, 16)), `${file} holds part of the canary`).toBe(false);
  }
}

let base: string;
let key: DataKey;
const v1 = canaryImage(3 << 20);
// Not a whole number of sectors: an encrypted image at rest is rounded up, the plaintext is not.
const v2 = Buffer.concat([changeImage(v1, 4, 48 << 10), Buffer.from('an odd tail')]);
let p1: PackResult;
let p2: PackResult;
let plain1: PackResult;
let plain2: PackResult;
let server: TestServer;
let root: Buffer;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-enc-'));
  key = DataKey.generate();
  const ws1 = await writeWorkspace(join(base, 'ws-1'), { name: 'erp', version: '1.0.0', image: v1 });
  const ws2 = await writeWorkspace(join(base, 'ws-2'), { name: 'erp', version: '1.1.0', image: v2 });
  p1 = await packWorkspace({
    workspaceFile: ws1,
    out: join(base, 'pkg', 'erp-1.tandem'),
    encryption: { dataKey: key },
  });
  p2 = await packWorkspace({
    workspaceFile: ws2,
    out: join(base, 'pkg', 'erp-2'),
    format: 'directory',
    encryption: { dataKey: key },
  });
  plain1 = await packWorkspace({ workspaceFile: ws1, out: join(base, 'plain', 'erp-1.tandem') });
  plain2 = await packWorkspace({ workspaceFile: ws2, out: join(base, 'plain', 'erp-2.tandem') });
  const store = new DirectoryStore(join(base, 'repo'));
  const init = await initRepository({ store });
  root = init.root;
  await pushPackage({ package: p1.path, store, keys: init.keys, channels: ['stable'] });
  const second = await pushPackage({ package: p2.path, store, keys: init.keys, channels: ['pilot'] });
  expect(second.chunksSkipped).toBeGreaterThan(0);
  server = await serveDirectory(join(base, 'repo'));
}, 60_000);

afterAll(async () => {
  await server?.close();
  key?.dispose();
});

describe('encrypted packages', () => {
  it('show the package, the repository and the medium only ciphertext under keyed ids', async () => {
    await expectNoCanary(join(base, 'pkg'));
    await expectNoCanary(join(base, 'repo'));
    const m = p1.manifest;
    expect(m.encryption).toMatchObject({ imageId: 'erp', keyId: key.id });
    expect(m.image.sha256).not.toBe(createHash('sha256').update(v1).digest('hex'));
    // No chunk id is the SHA-256 of any plaintext chunk.
    for (const c of m.chunks) {
      const plain = v1.subarray(c.offset, c.offset + c.length);
      expect(c.id).not.toBe(createHash('sha256').update(plain).digest('hex'));
    }
  });

  it('share unchanged chunks between versions as plaintext packages do', () => {
    const shared = (a: ImageManifest, b: ImageManifest): number => {
      const ids = new Set(a.chunks.map((c) => c.id));
      return b.chunks.filter((c) => ids.has(c.id)).length;
    };
    const plainIds = new Set(plain2.manifest.chunks.map((c) => c.id));
    expect(plainIds.size).toBeGreaterThan(0);
    // Same cut points (chunking is on plaintext), so the same chunks are shared.
    expect(p2.manifest.chunks.map((c) => c.length)).toEqual(plain2.manifest.chunks.map((c) => c.length));
    expect(shared(p1.manifest, p2.manifest)).toBe(shared(plain1.manifest, plain2.manifest));
    expect(shared(p1.manifest, p2.manifest)).toBeGreaterThan(p2.manifest.chunks.length / 2);
    // Ciphertext adds one 16-byte tag per distinct chunk.
    const enc = Object.values(p2.manifest.storage.locations).reduce((n, l) => n + l[2], 0);
    const pl = Object.values(plain2.manifest.storage.locations).reduce((n, l) => n + l[2], 0);
    expect(enc).toBe(pl + 16 * Object.keys(p2.manifest.storage.locations).length);
  });

  it('decrypt with the data key and refuse a tampered chunk or a wrong key', async () => {
    const pkg = await openPackage(p1.path);
    try {
      using cipher = new ChunkCipher(key);
      using wrong = new ChunkCipher(DataKey.generate());
      const chunk = pkg.manifest.chunks.find((c) => !c.zero)!;
      const sealed = await pkg.readChunk(pkg.manifest.storage.locations[chunk.id]!);
      const plain = decodeEncryptedChunk(cipher, chunk.id, sealed, chunk.length);
      expect(plain.equals(v1.subarray(chunk.offset, chunk.offset + chunk.length))).toBe(true);
      const bad = Buffer.from(sealed);
      bad[bad.length >> 1]! ^= 1;
      expect(() => decodeEncryptedChunk(cipher, chunk.id, bad, chunk.length)).toThrow(
        expect.objectContaining({ code: 'TANDEM_INTEGRITY' }),
      );
      expect(() => decodeEncryptedChunk(wrong, chunk.id, sealed, chunk.length)).toThrow(
        expect.objectContaining({ code: 'TANDEM_INTEGRITY' }),
      );
    } finally {
      await pkg.close();
    }
  });

  it('refuse a tampered encrypted manifest and a wrong data key', async () => {
    const bytes = await readFile(join(p2.path, 'manifest.zst'));
    const m = parseManifest(bytes, 'm');
    expect(() => verifyManifest(m, key, 'm')).not.toThrow();
    const text = zstdDecompressSync(bytes).toString();
    // Another workspace file (a policy change), still consistent with its own digest.
    const data = JSON.parse(text) as { workspace: { file: { text: string; sha256: string } } };
    data.workspace.file.text += '# changed\n';
    data.workspace.file.sha256 = createHash('sha256').update(data.workspace.file.text).digest('hex');
    const forged = zstdCompressSync(Buffer.from(JSON.stringify(data)));
    const fm = parseManifest(forged, 'forged');
    expect(() => verifyManifest(fm, key, 'forged')).toThrow(
      expect.objectContaining({
        code: 'TANDEM_INTEGRITY',
        details: expect.objectContaining({ reason: 'manifest-mac' }),
      }),
    );
    using other = DataKey.generate();
    expect(() => verifyManifest(m, other, 'm')).toThrow(
      expect.objectContaining({ code: 'TANDEM_AUTH', details: expect.objectContaining({ reason: 'wrong-data-key' }) }),
    );
  });

  it('are published without the key (sizes checked), and a damaged chunk is refused where it is decrypted', async () => {
    const copy = join(base, 'damaged.tandem');
    const data = await readFile(p1.path);
    const [id, loc] = Object.entries(p1.manifest.storage.locations)[0]!;
    const broken = Buffer.from(data);
    broken.fill(0, loc[1], loc[1] + loc[2]);
    await writeFile(copy, broken);
    const store = new DirectoryStore(join(base, 'repo-damaged'));
    const init = await initRepository({ store });
    await pushPackage({ package: copy, store, keys: init.keys });
    const pkg = await openPackage(copy);
    try {
      using cipher = new ChunkCipher(key);
      const length = pkg.manifest.chunks.find((c) => c.id === id)!.length;
      expect(() => decodeEncryptedChunk(cipher, id, broken.subarray(loc[1], loc[1] + loc[2]), length)).toThrow(
        expect.objectContaining({ code: 'TANDEM_INTEGRITY' }),
      );
    } finally {
      await pkg.close();
    }
    expect((await stat(copy)).size).toBe(data.length);
  });
});

describe('pull of an encrypted workspace', () => {
  const chunkRequests = (): number => server.requests.filter((r) => r.path.startsWith('packs/')).length;

  it('without a key stops before fetching any chunk, saying what is missing and how to get it', async () => {
    const before = chunkRequests();
    const err = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir: join(base, 'no-key'),
      trustedRoot: root,
    }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_KEY_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/envelope/);
    expect((err as Error).message).toMatch(/tandem keys device show/);
    expect(chunkRequests()).toBe(before);
    const err2 = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir: join(base, 'no-key'),
      key: () => Promise.resolve(undefined),
    }).catch((e: unknown) => e);
    expect(TandemError.is(err2, 'TANDEM_KEY_UNAVAILABLE')).toBe(true);
    expect(chunkRequests()).toBe(before);
  });

  it('with a wrong key is refused before fetching any chunk', async () => {
    const before = chunkRequests();
    using other = DataKey.generate();
    const err = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir: join(base, 'wrong-key'),
      trustedRoot: root,
      key: () => Promise.resolve(other),
    }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_AUTH')).toBe(true);
    expect(chunkRequests()).toBe(before);
  });
});

describe('pull of an encrypted workspace into an encrypted image', () => {
  // The pull disposes of the key it is given, so each pull gets a copy.
  const keyCopy = (): Promise<DataKey> => Promise.resolve(new DataKey(key.use((b) => Buffer.from(b))));
  const plainOf = async (path: string, size: number): Promise<Buffer> => {
    const k = diskKeyFor(key);
    const image = await testEncryptedImages.open(path, k, { readOnly: true });
    try {
      expect(image.size).toBe(Math.ceil(size / 512) * 512);
      return await image.read(0, size);
    } finally {
      await image.close();
      k.fill(0);
    }
  };

  it('installs v1 and then v2 as a delta; plaintext is on no disk at any step', async () => {
    const dir = join(base, 'enc-install');
    const first = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir,
      trustedRoot: root,
      key: keyCopy,
      encryptedImages: testEncryptedImages,
    });
    expect(first.version).toBe('1.0.0');
    expect((await plainOf(first.image, v1.length)).equals(v1)).toBe(true);
    await expectNoCanary(dir);
    const installed = await readFile(first.workspaceFile, 'utf8');
    expect(installed).toMatch(/format: qcow2/);
    expect(installed).toMatch(/keyId: erp/);

    const second = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir,
      channel: 'pilot',
      key: keyCopy,
      encryptedImages: testEncryptedImages,
    });
    expect(second.version).toBe('1.1.0');
    expect(v2.length % 512).not.toBe(0);
    expect((await plainOf(second.image, v2.length)).equals(v2)).toBe(true);
    expect(second.bytesFromSeeds).toBeGreaterThan(v2.length / 2);
    // What it fetched is what v2 adds (plus signed metadata and the manifest), nothing more.
    const added = Object.entries(p2.manifest.storage.locations)
      .filter(([id]) => !(id in p1.manifest.storage.locations))
      .reduce((n, [, loc]) => n + loc[2], 0);
    expect(second.bytesFetched).toBeGreaterThanOrEqual(added);
    expect(second.bytesFetched).toBeLessThan(added + 256 * 1024);
    await expectNoCanary(dir);
    await expectNoCanary(join(base, 'repo'));
    expect(openImages.size).toBe(0);
  });

  it('refuses a tampered ciphertext chunk: nothing installed, the installed version untouched', async () => {
    const dir = join(base, 'enc-tampered');
    await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir,
      trustedRoot: root,
      key: keyCopy,
      encryptedImages: testEncryptedImages,
    });
    const pointer = await readFile(join(dir, 'installed.json'), 'utf8');
    const repo = join(base, 'repo-tampered');
    await cp(join(base, 'repo'), repo, { recursive: true });
    // Damage every pack holding a chunk that v2 adds.
    const v2only = Object.keys(p2.manifest.storage.locations).filter((id) => !(id in p1.manifest.storage.locations));
    for (const file of await filesUnder(join(repo, 'packs'))) {
      const data = await readFile(file);
      data[data.length - 1]! ^= 0xff;
      await writeFile(file, data);
    }
    expect(v2only.length).toBeGreaterThan(0);
    const err = await pullWorkspace({
      repo,
      workspace: 'erp',
      dir,
      channel: 'pilot',
      key: keyCopy,
      encryptedImages: testEncryptedImages,
    }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_INTEGRITY')).toBe(true);
    expect(await readFile(join(dir, 'installed.json'), 'utf8')).toBe(pointer);
    expect(await readdir(join(dir, 'versions'))).toEqual(['1.0.0']);
    expect(openImages.size).toBe(0);
  });
});
