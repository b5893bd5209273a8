import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../errors.js';
import { compressChunkSync, decompressChunk } from './compress.js';
import { serveDirectory, writeWorkspace } from './fixtures.test.util.js';
import { sha256Hex } from './manifest.js';
import { packWorkspace } from './pack.js';
import { pullWorkspace } from './pull.js';
import { pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { HttpStore } from './store/http.js';
import type { RepoStore } from './store/types.js';
import { initRepository } from './trust/publisher.js';
import { alignedBuffer, ChunkWorkers } from './workers.js';

/** Text-like data: zstd makes it much smaller. */
function compressible(size: number): Buffer {
  const words = ['tandem', 'workspace', 'policy', 'image', 'chunk', 'session', 'guest', 'host'];
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const w = `${words[(i * 7 + (i >> 3)) % words.length]}${i % 97} `;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-encoding-'));
});

describe('chunk encoding', () => {
  it('compresses what zstd makes smaller and stores the rest as is', () => {
    const random = randomBytes(64 << 10);
    const stored = compressChunkSync(random);
    expect(stored.length).toBe(random.length);
    expect(stored.equals(random)).toBe(true);
    expect(stored.buffer).not.toBe(random.buffer); // a copy: the packer reuses its read buffer
    const text = compressible(64 << 10);
    const compressed = compressChunkSync(text);
    expect(compressed.length).toBeLessThan(text.length / 2);
    expect(decompressChunk(compressed, text.length, 'x').equals(text)).toBe(true);
    expect(decompressChunk(stored, random.length, 'x').equals(random)).toBe(true);
    expect(() => decompressChunk(Buffer.from('not zstd'), 100, 'abc')).toThrow(IntegrityError);
  });

  it('packs, publishes and pulls an image of compressible and incompressible chunks byte for byte', async () => {
    const image = Buffer.concat([
      compressible(1 << 20),
      randomBytes(1 << 20),
      Buffer.alloc(512 << 10),
      compressible(700 << 10),
    ]);
    const ws = await writeWorkspace(join(base, 'ws'), { name: 'mixed', version: '1.0.0', image });
    const pkg = await packWorkspace({ workspaceFile: ws, out: join(base, 'mixed.tandem') });
    const sizes = new Map(pkg.manifest.chunks.map((c) => [c.id, c.length]));
    const locations = Object.entries(pkg.manifest.storage.locations);
    const storedAsIs = locations.filter(([id, [, , size]]) => size === sizes.get(id)).length;
    const compressed = locations.filter(([id, [, , size]]) => size < sizes.get(id)!).length;
    expect(storedAsIs).toBeGreaterThan(0);
    expect(compressed).toBeGreaterThan(0);
    expect(storedAsIs + compressed).toBe(locations.length);

    const store = new DirectoryStore(join(base, 'repo'));
    const { keys, root } = await initRepository({ store });
    await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
    const server = await serveDirectory(join(base, 'repo'));
    try {
      const r = await pullWorkspace({ repo: server.url, workspace: 'mixed', dir: join(base, 'ep'), trustedRoot: root });
      expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(image));
      expect(r.chunksFetched).toBe(locations.length);
    } finally {
      await server.close();
    }
  });
});

const chunkOf = (data: Buffer, at: number, size: number, offsets: readonly number[]) => ({
  id: sha256Hex(data),
  at,
  size,
  length: data.length,
  offsets,
});

describe('ChunkWorkers', () => {
  it('verifies and writes stored and compressed chunks of one range, taking its memory without a copy', async () => {
    const file = join(base, 'w1.img');
    const a = randomBytes(3000);
    const b = compressible(5000);
    await writeFile(file, Buffer.alloc(a.length + b.length * 2));
    const bz = zstdCompressSync(b);
    // A buffer of its own (Buffer.concat may use the shared pool), so it can be handed over.
    const range = Buffer.from(Uint8Array.from(Buffer.concat([a, bz])).buffer);
    const workers = new ChunkWorkers(file, 1);
    try {
      await workers.verifyAndWrite(
        range,
        [chunkOf(a, 0, a.length, [0]), chunkOf(b, a.length, bz.length, [a.length, a.length + b.length])],
        'test',
      );
      expect(range.byteLength).toBe(0); // handed over, not copied
      workers.hashTo(a.length + 2 * b.length);
      const digest = await workers.digest();
      expect(digest.sha256).toBe(sha256Hex(Buffer.concat([a, b, b])));
    } finally {
      await workers.close();
    }
    expect((await readFile(file)).equals(Buffer.concat([a, b, b]))).toBe(true);
  });

  it('rejects a stored chunk with a changed byte, and a compressed chunk that is not zstd', async () => {
    const file = join(base, 'w2.img');
    await writeFile(file, Buffer.alloc(8192));
    const a = randomBytes(4096);
    const workers = new ChunkWorkers(file, 1);
    try {
      const bad = Buffer.from(a);
      bad[100] = bad[100]! ^ 1;
      await expect(workers.verifyAndWrite(bad, [chunkOf(a, 0, a.length, [0])], 'pack-x')).rejects.toThrow(
        /does not match its id/,
      );
      const garbage = randomBytes(1000);
      await expect(workers.verifyAndWrite(garbage, [chunkOf(a, 0, 1000, [0])], 'pack-y')).rejects.toThrow(
        /not valid zstd/,
      );
    } finally {
      await workers.close();
    }
    expect((await readFile(file)).equals(Buffer.alloc(8192))).toBe(true);
  });
});

describe('direct I/O', () => {
  for (const direct of [true, false]) {
    it(`writes whole pages ${direct ? 'past' : 'through'} the page cache and hashes the image back`, async () => {
      const file = join(base, `direct-${direct}.img`);
      const size = 5 << 20;
      await writeFile(file, Buffer.alloc(0));
      const image = Buffer.alloc(size);
      // Three neighbouring chunks from an odd offset (partial pages at both ends), one chunk
      // written twice, and a short chunk alone (too short for direct I/O).
      const a = randomBytes(1_000_001);
      const b = randomBytes(777_777);
      const c = randomBytes(300_000);
      const d = randomBytes(5000);
      const at = 12_345;
      const range = Buffer.from(Uint8Array.from(Buffer.concat([a, b, c, d])).buffer);
      const chunks = [
        chunkOf(a, 0, a.length, [at]),
        chunkOf(b, a.length, b.length, [at + a.length, 4 << 20]),
        chunkOf(c, a.length + b.length, c.length, [at + a.length + b.length]),
        chunkOf(d, a.length + b.length + c.length, d.length, [3 << 20]),
      ];
      for (const [data, offsets] of [
        [a, [at]],
        [b, [at + a.length, 4 << 20]],
        [c, [at + a.length + b.length]],
        [d, [3 << 20]],
      ] as const)
        for (const o of offsets) data.copy(image, o);
      await truncate(file, size);
      const workers = new ChunkWorkers(file, 2, direct);
      try {
        await workers.verifyAndWrite(range, chunks, 'test');
        workers.hashTo(size);
        const digest = await workers.digest();
        expect(digest.sha256).toBe(sha256Hex(image));
        expect(digest.bytes).toBe(size);
        if (direct) {
          expect(workers.directBytesWritten).toBeGreaterThan(2 << 20);
          expect(digest.directBytesRead).toBeGreaterThan(0);
        } else {
          expect(workers.directBytesWritten).toBe(0);
          expect(digest.directBytesRead).toBe(0);
        }
      } finally {
        await workers.close();
      }
      expect(sha256Hex(await readFile(file))).toBe(sha256Hex(image));
    });
  }
});

describe('direct I/O from shared, page-aligned range buffers', () => {
  it('writes whole pages in place when image pages fall on memory pages, and copies when they do not', async () => {
    const file = join(base, 'aligned.img');
    const size = 4 << 20;
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, size);
    const a = randomBytes(700_001);
    const b = randomBytes(900_000);
    const image = Buffer.alloc(size);
    const offsetA = 8192 + 1234; // lands at 1234 into its buffer: pages line up
    const offsetB = (2 << 20) + 77; // lands at 1234 too: they do not
    a.copy(image, offsetA);
    b.copy(image, offsetB);
    const workers = new ChunkWorkers(file, 1, true);
    try {
      for (const [data, offset] of [
        [a, offsetA],
        [b, offsetB],
      ] as const) {
        const buffer = alignedBuffer(1 << 20);
        expect(buffer.buffer).toBeInstanceOf(SharedArrayBuffer);
        const view = buffer.subarray(1234, 1234 + data.length);
        data.copy(view);
        await workers.verifyAndWrite(view, [chunkOf(data, 0, data.length, [offset])], 'test');
        expect(view.equals(data)).toBe(true); // still ours: shared, not handed over
      }
      expect(workers.directBytesWritten).toBeGreaterThan(1 << 20);
      workers.hashTo(size);
      expect((await workers.digest()).sha256).toBe(sha256Hex(image));
    } finally {
      await workers.close();
    }
    expect(sha256Hex(await readFile(file))).toBe(sha256Hex(image));
  });
});

describe('getRange into a caller buffer', () => {
  it('fills the buffer given (directory and HTTP stores), and allocates when it is too small', async () => {
    const dir = join(base, 'into');
    const data = randomBytes(100_000);
    const store = new DirectoryStore(dir);
    await store.put('packs/x.pack', data);
    const server = await serveDirectory(dir);
    try {
      for (const s of [store, new HttpStore(server.url)] as RepoStore[]) {
        const into = Buffer.allocUnsafeSlow(64 << 10);
        const got = await s.getRange('packs/x.pack', 1000, 50_000, { into });
        expect(got.buffer).toBe(into.buffer);
        expect(got.equals(data.subarray(1000, 51_000))).toBe(true);
        const small = Buffer.allocUnsafeSlow(10);
        const other = await s.getRange('packs/x.pack', 0, 20, { into: small });
        expect(other.buffer).not.toBe(small.buffer);
        expect(other.equals(data.subarray(0, 20))).toBe(true);
        s.close?.();
      }
    } finally {
      await server.close();
    }
  });
});
