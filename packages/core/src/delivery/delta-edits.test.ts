// Deltas around edits that shift data (duplicate-adjacency candidates at push), and a pull whose
// connection drops while it fetches deltas (the chunks rebuilt before the drop are kept).
import { createCipheriv } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostError } from '../errors.js';
import { serveDirectory, writeWorkspace, type TestServer } from './fixtures.test.util.js';
import { parseManifest, sha256Hex, type ImageManifest } from './manifest.js';
import { packWorkspace } from './pack.js';
import { pullWorkspace } from './pull.js';
import { manifestPathFor, pushPackage, type PushResult } from './push.js';
import { DirectoryStore } from './store/directory.js';
import type { KeySet } from './trust/keys.js';
import { initRepository } from './trust/publisher.js';

/** `size` pseudo-random bytes, the same on every run for a label (AES-128-CTR of zeros). */
function fixedRandom(size: number, label: string): Buffer {
  const key = Buffer.alloc(16);
  key.write(label.slice(0, 16));
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

const INSERTED = 256 << 10;
const INSERTS = 4;

/** `image` with `INSERTS` blocks of new data inserted at scattered places (everything after them shifts). */
function withInserts(image: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = 1; i <= INSERTS; i++) {
    // Not on a 4 KiB boundary, so nothing lines up with the old chunks by luck.
    const pos = Math.floor((image.length * i) / (INSERTS + 1)) + 1234 * i;
    parts.push(image.subarray(at, pos), fixedRandom(INSERTED, `insert-${i}`));
    at = pos;
  }
  parts.push(image.subarray(at));
  return Buffer.concat(parts);
}

describe('deltas around edits', () => {
  let dir: string;
  let server: TestServer;
  let root: Buffer;
  let keys: KeySet;
  let store: DirectoryStore;
  const images: Record<string, Buffer> = {};
  const pushed: Record<string, PushResult> = {};

  const manifestOf = async (version: string): Promise<ImageManifest> =>
    parseManifest(await readFile(join(dir, 'repo', manifestPathFor('erp', version))), version);
  const pull = (into: string, version: string, extra: object = {}) =>
    pullWorkspace({ repo: server.url, workspace: 'erp', dir: join(dir, into), version, trustedRoot: root, ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-delta-edits-'));
    store = new DirectoryStore(join(dir, 'repo'));
    ({ keys, root } = await initRepository({ store }));
    images['1.0.0'] = fixedRandom(6 << 20, 'tandem-v1');
    images['2.0.0'] = withInserts(images['1.0.0']);
    for (const version of ['1.0.0', '2.0.0']) {
      const ws = await writeWorkspace(join(dir, `ws-${version}`), { name: 'erp', version, image: images[version]! });
      const pkg = await packWorkspace({ workspaceFile: ws, out: join(dir, `erp-${version}.tandem`) });
      pushed[version] = await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
    }
    server = await serveDirectory(join(dir, 'repo'));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('the chunks around an insert (partly old) get deltas against the chunks that were there', async () => {
    // Each insert leaves a chunk before it and one after it that are partly old: they get a
    // delta (found through their unchanged neighbours; not when the old part is under an eighth),
    // so a pull fetches little more than the inserted bytes; fetching them whole costs about a
    // chunk per insert more.
    // (Measured: 1.04x the inserted bytes with them, 1.29x without.)
    expect(pushed['2.0.0']!.deltas).toBeGreaterThanOrEqual(INSERTS);
    await pull('a', '1.0.0');
    const r = await pull('a', '2.0.0');
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    expect(r.chunksFromDeltas).toBe(pushed['2.0.0']!.deltas);
    expect(r.bytesFetched).toBeLessThan(INSERTS * INSERTED + INSERTS * (8 << 10) + (32 << 10));
  });

  it('a connection that drops while deltas are fetched: the next pull keeps the chunks rebuilt before it', async () => {
    await pull('d', '1.0.0');
    const m = await manifestOf('2.0.0');
    const deltaPacks = new Set(
      Object.values(m.deltas ?? {}).flatMap((refs) => refs.map((d) => m.storage.packs[d.location[0]]!)),
    );
    // One delta per request, one request at a time; the third and later ones are cut off.
    const options = { parallel: 1, maxRangeBytes: 1, storeOptions: { retries: 0 } };
    let served = 0;
    server.fault = (req, res, path) => {
      if (!deltaPacks.has(path) || served++ < 2) return false;
      res.destroy();
      return true;
    };
    try {
      const err = await pull('d', '2.0.0', options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostError);
    } finally {
      server.fault = undefined;
    }
    const from = server.requests.length;
    const r = await pull('d', '2.0.0', options);
    expect(sha256Hex(await readFile(r.image))).toBe(sha256Hex(images['2.0.0']!));
    // The two deltas fetched before the drop are not fetched again: their chunks were journaled.
    expect(r.chunksFromDeltas).toBe(pushed['2.0.0']!.deltas - 2);
    expect(server.requests.slice(from).filter((q) => deltaPacks.has(q.path)).length).toBe(pushed['2.0.0']!.deltas - 2);
  });
});
