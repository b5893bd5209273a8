// An encrypted pull that stops half way (cancelled, the repository failing, a tampered chunk)
// and is pulled again, on real qemu-img/qemu-nbd (issue 11): the stopped pull leaves its
// LUKS-encrypted staging image behind (ciphertext only), and the next pull reads it back,
// keeps every chunk whose keyed id checks out, fetches only the rest, and installs an image that
// verifies against the manifest's keyed digest. The installed version is untouched meanwhile.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DirectoryStore,
  HostError,
  TandemError,
  diskKeyFor,
  initRepository,
  packWorkspace,
  pullWorkspace,
  pushPackage,
  type RepoStore,
} from '@tandem/core';
import { DataKey } from '@tandem/core/crypto';
import { integrationGate } from '@tandem/core/testing';
import { libvirtEncryptedImages } from './encrypted-images.js';
import { imageDir } from './testing/fixtures.test.helpers.js';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const CANARY = Buffer.from('TANDEM-RESUME-CANARY-77a1-PLAINTEXT');

const gate = await integrationGate(
  'qemu-img and qemu-nbd',
  async () => {
    for (const tool of ['qemu-img', 'qemu-nbd']) {
      try {
        await run(tool, ['--version']);
      } catch {
        return `${tool} is not installed`;
      }
    }
    return null;
  },
  'install qemu-utils (apt-get install -y qemu-utils)',
);

/** A store that serves `healthy` range reads, then does what `fault` says with the next ones. */
function faulty(store: RepoStore, healthy: number, fault: (data: Buffer) => Buffer): RepoStore {
  let served = 0;
  return {
    location: store.location,
    ranges: store.ranges,
    get: (path, options) => store.get(path, options),
    has: (path) => store.has(path),
    stats: () => store.stats(),
    getRange: async (path, offset, length, options) => {
      const data = await store.getRange(path, offset, length, options);
      return served++ < healthy ? data : fault(data);
    },
  };
}

// Both at-rest layouts: every byte through qemu-nbd, or Tandem's own XTS into a qcow2's data file.
const layouts = [{ layout: 'nbd' as const }, { layout: 'data-file' as const }];

describe.skipIf(!gate.enabled).each(layouts)('an interrupted encrypted pull resumes (layout $layout)', ({ layout }) => {
  const images = libvirtEncryptedImages({ luksIterTimeMs: 10, layout });
  let tmp: Awaited<ReturnType<typeof imageDir>>;
  let repoDir: string;
  let root: Uint8Array;
  let disk: Buffer;
  let dataKey: DataKey;

  beforeAll(async () => {
    tmp = await imageDir();
    // 24 MiB: random data (distinct chunks, several 4 MiB writes) with the canary in it, then zeros.
    disk = Buffer.alloc(24 * MIB);
    randomBytes(20 * MIB).copy(disk, 0);
    for (let at = 4096; at < 20 * MIB; at += 3 * MIB) CANARY.copy(disk, at);
    const ws = join(tmp.dir, 'ws');
    await mkdir(join(ws, 'images'), { recursive: true });
    await writeFile(join(ws, 'images', 'disk.img'), disk);
    await writeFile(
      join(ws, 'tandem.workspace.yaml'),
      'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 128 } }\n',
    );
    dataKey = DataKey.generate();
    const pkg = await packWorkspace({
      workspaceFile: join(ws, 'tandem.workspace.yaml'),
      out: join(tmp.dir, 'erp.tandem'),
      encryption: { dataKey },
    });
    repoDir = join(tmp.dir, 'repo');
    const repo = new DirectoryStore(repoDir);
    const init = await initRepository({ store: repo });
    root = init.root;
    await pushPackage({ package: pkg.path, store: repo, keys: init.keys, channels: ['stable'] });
  });
  afterAll(async () => {
    dataKey?.dispose();
    await tmp?.remove();
  });

  const cases: { what: string; fault: (data: Buffer) => Buffer; code: string }[] = [
    {
      what: 'the repository failing',
      fault: () => {
        throw new HostError('connection reset (injected)', { retryable: false });
      },
      code: 'TANDEM_HOST',
    },
    {
      what: 'a tampered ciphertext chunk',
      fault: (data) => {
        const bad = Buffer.from(data);
        const at = bad.length >> 1;
        bad[at] = bad[at]! ^ 0x40;
        return bad;
      },
      code: 'TANDEM_INTEGRITY',
    },
  ];

  for (const c of cases)
    it(`stops on ${c.what}, keeps only ciphertext, and the next pull fetches only what is missing`, async () => {
      const dir = join(tmp.dir, `install-${c.code}`);
      const key = async (): Promise<DataKey> => new DataKey(dataKey.use((b) => Buffer.from(b)));
      const pull = (repo: RepoStore) =>
        pullWorkspace({
          repo,
          workspace: 'erp',
          dir,
          trustedRoot: root,
          key,
          encryptedImages: images,
          parallel: 1,
          maxRangeBytes: 512 * 1024,
        });
      // 24 of about 40 ranges arrive (more than two 4 MiB writes), then the fault.
      const first = faulty(new DirectoryStore(repoDir), 24, c.fault);
      const err = await pull(first).catch((e: unknown) => e);
      expect(TandemError.is(err, c.code), String(err)).toBe(true);
      expect(await readFile(join(dir, 'installed.json')).catch(() => null)).toBeNull();
      const staged = (await readdir(join(dir, 'staging'), { recursive: true, withFileTypes: true })).filter((e) =>
        e.isFile(),
      );
      expect(staged.length).toBeGreaterThan(0);
      for (const f of staged) expect((await readFile(join(f.parentPath, f.name))).includes(CANARY)).toBe(false);

      const second = faulty(new DirectoryStore(repoDir), Number.MAX_SAFE_INTEGER, (d) => d);
      const result = await pull(second);
      expect(result.version).toBe('1.0.0');
      expect(result.bytesResumed).toBeGreaterThanOrEqual(8 * MIB);
      // Fetched again: only what the first pull had not written.
      expect(result.bytesFetched).toBeLessThan(disk.length - result.bytesResumed);
      // The installed image is the plaintext, encrypted at rest, and nothing of it in clear on disk.
      const installed = await images.open(result.image, diskKeyFor(dataKey), { readOnly: true });
      try {
        expect((await installed.read(0, disk.length)).equals(disk)).toBe(true);
      } finally {
        await installed.close();
      }
      for (const f of await readdir(dir, { recursive: true, withFileTypes: true }))
        if (f.isFile()) expect((await readFile(join(f.parentPath, f.name))).includes(CANARY)).toBe(false);
      expect(await readdir(join(dir, 'staging')).catch(() => [])).toEqual([]);
    });
});
