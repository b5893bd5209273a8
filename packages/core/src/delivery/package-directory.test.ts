import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { decompressChunk } from './compress.js';
import { InvalidInputError, NotFoundError, TandemError } from '../errors.js';
import { makeImage, writeWorkspace } from './fixtures.test.util.js';
import { parseManifest, serializeManifest, sha256Hex, type ChunkLocation, type ImageManifest } from './manifest.js';
import { packWorkspace, type PackResult } from './pack.js';
import { DEFAULT_VOLUME_SIZE, minVolumeSize, PACKAGE_MANIFEST_FILE } from './package-directory.js';
import { openPackage } from './package-file.js';
import { pullWorkspace } from './pull.js';
import { pushPackage } from './push.js';
import { DirectoryStore } from './store/directory.js';
import { initRepository } from './trust/publisher.js';

// Small chunks (4/16/64 KiB) and small volumes, so a 1.5 MiB image spreads over several data files.
const chunking = { avgSize: 16 * 1024 };
const VOLUME = 256 * 1024;

let base: string;
let ws: string;
let image: Buffer;
let dirPkg: PackResult;
let filePkg: PackResult;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-package-dir-'));
  image = makeImage(1536 * 1024, [[300 * 1024, 200 * 1024]]);
  ws = await writeWorkspace(join(base, 'ws'), { name: 'erp', version: '1.0.0', image });
  dirPkg = await packWorkspace({
    workspaceFile: ws,
    out: join(base, 'erp-dir'),
    format: 'directory',
    volumeSize: VOLUME,
    chunking,
  });
  filePkg = await packWorkspace({ workspaceFile: ws, out: join(base, 'erp.tandem'), chunking });
});

/** A fresh copy of the directory package to damage. */
async function copyOfPackage(name: string): Promise<string> {
  const dir = join(base, name);
  await cp(dirPkg.path, dir, { recursive: true });
  return dir;
}

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<TandemError> {
  try {
    await promise;
  } catch (err) {
    if (TandemError.is(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

async function newRepo(
  name: string,
): Promise<{ store: DirectoryStore; keys: Awaited<ReturnType<typeof initRepository>>['keys']; root: Buffer }> {
  const store = new DirectoryStore(join(base, name));
  const { keys, root } = await initRepository({ store });
  return { store, keys, root };
}

/** A clock that moves a second on every reading, so onProgress is called for every chunk. */
const hastyClock = (): Clock => {
  let t = 0;
  return { now: () => (t += 1000), sleep: () => Promise.resolve() };
};

describe('package directories', () => {
  it('are a manifest and data files of at most the volume size, named in storage.packs', async () => {
    expect(dirPkg.format).toBe('directory');
    expect(dirPkg.dataFiles.length).toBeGreaterThan(4); // more than stay open at once
    expect(dirPkg.manifest.storage.packs).toEqual(dirPkg.dataFiles);
    const entries = (await readdir(dirPkg.path)).sort();
    expect(entries).toEqual([...dirPkg.dataFiles, PACKAGE_MANIFEST_FILE].sort());
    let total = (await stat(join(dirPkg.path, PACKAGE_MANIFEST_FILE))).size;
    for (const name of dirPkg.dataFiles) {
      const { size } = await stat(join(dirPkg.path, name));
      expect(size).toBeLessThanOrEqual(VOLUME);
      expect(size).toBeGreaterThan(0);
      total += size;
    }
    expect(dirPkg.packageBytes).toBe(total);
    // Nothing left beside it.
    expect((await readdir(base)).filter((e) => e.includes('.partial-') || e.includes('.old-'))).toEqual([]);
    expect(DEFAULT_VOLUME_SIZE).toBeLessThan(4 * 1024 ** 3);
  });

  it('give the same chunk ids and image hash as a package file of the same image', async () => {
    expect(filePkg.format).toBe('file');
    expect(filePkg.dataFiles).toEqual([]);
    expect(dirPkg.manifest.chunks).toEqual(filePkg.manifest.chunks);
    expect(dirPkg.manifest.image).toEqual(filePkg.manifest.image);
    expect(Object.keys(dirPkg.manifest.storage.locations).sort()).toEqual(
      Object.keys(filePkg.manifest.storage.locations).sort(),
    );
    const opened = await openPackage(dirPkg.path);
    try {
      expect(opened.format).toBe('directory');
      expect(opened.size).toBe(dirPkg.packageBytes);
      expect(opened.manifest.chunks).toEqual(filePkg.manifest.chunks);
      // Every chunk at once, across more data files than stay open together.
      const lengths = new Map(opened.manifest.chunks.map((c) => [c.id, c.length]));
      const entries = Object.entries(opened.manifest.storage.locations);
      const read = await Promise.all(entries.map(([, location]) => opened.readChunk(location)));
      read.forEach((data, i) => {
        const id = entries[i]![0];
        expect(sha256Hex(decompressChunk(data, lengths.get(id)!, id))).toBe(id);
      });
    } finally {
      await opened.close();
    }
  });

  it('push to a repository and pull back the image byte for byte, as the package file does', async () => {
    const results: { packs: readonly string[]; manifest: ImageManifest }[] = [];
    for (const pkg of [dirPkg, filePkg]) {
      const { store, keys, root } = await newRepo(`repo-${pkg.format}`);
      const pushed = await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] });
      expect(pushed.alreadyPublished).toBe(false);
      expect(pushed.chunksUploaded).toBe(Object.keys(pkg.manifest.storage.locations).length);
      const pulled = await pullWorkspace({
        repo: store.location,
        workspace: 'erp',
        dir: join(base, `endpoint-${pkg.format}`),
        trustedRoot: root,
      });
      expect(pulled.version).toBe('1.0.0');
      expect(Buffer.compare(await readFile(pulled.image), image)).toBe(0);
      const published = await store.get(`manifests/erp/1.0.0.manifest`);
      results.push({ packs: pushed.packs, manifest: parseManifest(published!, 'published') });
    }
    // The repository does not care which form the package had.
    expect(results[0]!.manifest.chunks).toEqual(results[1]!.manifest.chunks);
    expect(results[0]!.manifest.storage).toEqual(results[1]!.manifest.storage);
  });

  it('replace an earlier package directory at the same path, and a repeated push is a no-op', async () => {
    const out = join(base, 'repacked');
    const first = await packWorkspace({ workspaceFile: ws, out, volumeSize: VOLUME, chunking });
    expect(first.format).toBe('directory');
    await writeFile(join(base, 'ws', 'images', 'disk.qcow2'), image.subarray(0, 1024 * 1024));
    try {
      const second = await packWorkspace({ workspaceFile: ws, out, volumeSize: VOLUME, chunking });
      expect(second.format).toBe('directory');
      expect(second.dataFiles.length).toBeLessThan(first.dataFiles.length);
      expect((await readdir(out)).sort()).toEqual([...second.dataFiles, PACKAGE_MANIFEST_FILE].sort());
      const pkg = await openPackage(out);
      expect(pkg.manifest.image.size).toBe(1024 * 1024);
      await pkg.close();
    } finally {
      await writeFile(join(base, 'ws', 'images', 'disk.qcow2'), image);
    }
  });
});

describe('the package form', () => {
  it('is a directory for a trailing slash, an existing empty directory or a volume size; a file otherwise', async () => {
    const slash = await packWorkspace({ workspaceFile: ws, out: join(base, 'slash') + '/', chunking });
    expect(slash.format).toBe('directory');
    expect(slash.path).toBe(join(base, 'slash'));
    expect(slash.dataFiles).toHaveLength(1); // the default volume size holds it all
    await mkdir(join(base, 'empty'));
    expect((await packWorkspace({ workspaceFile: ws, out: join(base, 'empty'), chunking })).format).toBe('directory');
    expect((await packWorkspace({ workspaceFile: ws, out: join(base, 'plain'), chunking })).format).toBe('file');
    expect((await stat(join(base, 'plain'))).isFile()).toBe(true);
    // --format wins over the path.
    const file = await packWorkspace({ workspaceFile: ws, out: join(base, 'forced') + '/', format: 'file', chunking });
    expect(file.format).toBe('file');
    expect((await stat(join(base, 'forced'))).isFile()).toBe(true);
  });

  it('refuses to replace a directory that is not a package, a file with a directory, or to split chunks', async () => {
    const other = join(base, 'documents');
    await mkdir(other);
    await writeFile(join(other, 'letter.txt'), 'keep me');
    const e1 = await failure(packWorkspace({ workspaceFile: ws, out: other, chunking }));
    expect(e1).toBeInstanceOf(InvalidInputError);
    expect(e1.message).toContain(`${other} is a directory that is not a Tandem package directory`);
    expect(await readdir(other)).toEqual(['letter.txt']);

    const e2 = await failure(packWorkspace({ workspaceFile: ws, out: filePkg.path, format: 'directory', chunking }));
    expect(e2).toBeInstanceOf(InvalidInputError);
    expect(e2.message).toContain(`${filePkg.path} is a file`);

    const e3 = await failure(packWorkspace({ workspaceFile: ws, out: dirPkg.path, format: 'file', chunking }));
    expect(e3.message).toContain(`${dirPkg.path} is a directory; the file form needs a file path`);

    const e4 = await failure(
      packWorkspace({ workspaceFile: ws, out: join(base, 'tiny'), volumeSize: 64 * 1024, chunking }),
    );
    expect(e4).toBeInstanceOf(InvalidInputError);
    expect(e4.message).toContain(`use at least ${minVolumeSize(64 * 1024)} bytes`);

    const e5 = await failure(
      packWorkspace({ workspaceFile: ws, out: join(base, 'f'), format: 'file', volumeSize: VOLUME, chunking }),
    );
    expect(e5.message).toMatch(/volume size applies to the directory form only/);
    expect(await readdir(base)).not.toContain('tiny');
  });
});

describe('an interrupted pack', () => {
  it('leaves nothing at the path and no partial directory beside it', async () => {
    const out = join(base, 'interrupted');
    let calls = 0;
    const err = await failure(
      packWorkspace({
        workspaceFile: ws,
        out,
        format: 'directory',
        volumeSize: VOLUME,
        chunking,
        clock: hastyClock(),
        onProgress: () => {
          // Late enough that several data files exist.
          if (++calls === 60) throw new InvalidInputError('stop here');
        },
      }),
    );
    expect(err.message).toBe('stop here');
    expect(calls).toBe(60);
    expect((await readdir(base)).filter((e) => e.startsWith('interrupted'))).toEqual([]);
  });

  it('keeps the earlier package at the path intact', async () => {
    const out = await copyOfPackage('kept');
    const err = await failure(
      packWorkspace({
        workspaceFile: ws,
        out,
        volumeSize: VOLUME,
        chunking,
        clock: hastyClock(),
        onProgress: () => {
          throw new InvalidInputError('stop here');
        },
      }),
    );
    expect(err.message).toBe('stop here');
    const pkg = await openPackage(out);
    expect(pkg.manifest.image.sha256).toBe(sha256Hex(image));
    await pkg.close();
    expect((await readdir(base)).filter((e) => e.startsWith('kept.'))).toEqual([]);
  });
});

describe('a damaged package directory', () => {
  /** Rewrites the manifest of a package directory. */
  async function editManifest(dir: string, edit: (m: ImageManifest) => ImageManifest): Promise<void> {
    const file = join(dir, PACKAGE_MANIFEST_FILE);
    await writeFile(file, serializeManifest(edit(parseManifest(await readFile(file), file))));
  }
  const firstChunkIn = (m: ImageManifest, index: number): [string, ChunkLocation] =>
    Object.entries(m.storage.locations).find(([, [p]]) => p === index)!;

  it('is not found when nothing is at the path', async () => {
    const err = await failure(openPackage(join(base, 'nothing-here')));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toContain(join(base, 'nothing-here'));
  });

  it('without its manifest (or a directory still being packed) is not a package', async () => {
    const dir = await copyOfPackage('no-manifest');
    await rm(join(dir, PACKAGE_MANIFEST_FILE));
    const err = await failure(openPackage(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(`${dir} is not a complete Tandem package directory: it has no manifest.zst`);
  });

  it('with a bad manifest names the manifest file', async () => {
    const dir = await copyOfPackage('bad-manifest');
    await writeFile(join(dir, PACKAGE_MANIFEST_FILE), 'this is not a manifest');
    const err = await failure(openPackage(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(`Manifest ${join(dir, PACKAGE_MANIFEST_FILE)} is not a Tandem manifest`);
  });

  it('with a data file missing says which one', async () => {
    const dir = await copyOfPackage('missing-data');
    await rm(join(dir, dirPkg.dataFiles[1]!));
    const err = await failure(openPackage(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(`data file ${dirPkg.dataFiles[1]}, which its manifest lists, is missing`);
    expect(err.details).toMatchObject({ path: dir, file: dirPkg.dataFiles[1] });
  });

  it('with a data file shorter than a location says is truncated', async () => {
    const dir = await copyOfPackage('short-data');
    const name = dirPkg.dataFiles[2]!;
    const { size } = await stat(join(dir, name));
    await truncate(join(dir, name), size - 100);
    const err = await failure(openPackage(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(
      new RegExp(`chunk [0-9a-f]{64} lies at bytes \\d+-${size} of ${name}, which has ${size - 100} bytes`),
    );
  });

  it('with a location outside its data file, or in a data file not listed, is refused', async () => {
    const dir = await copyOfPackage('outside');
    const name = dirPkg.dataFiles[0]!;
    const { size } = await stat(join(dir, name));
    await editManifest(dir, (m) => {
      const [id, [, , length]] = firstChunkIn(m, 0);
      return { ...m, storage: { ...m.storage, locations: { ...m.storage.locations, [id]: [0, size, length] } } };
    });
    const err = await failure(openPackage(dir));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toContain(`of ${name}, which has ${size} bytes`);

    const dir2 = await copyOfPackage('unlisted');
    await editManifest(dir2, (m) => ({ ...m, storage: { ...m.storage, packs: m.storage.packs.slice(0, 1) } }));
    const err2 = await failure(openPackage(dir2));
    expect(err2).toBeInstanceOf(InvalidInputError);
    expect(err2.message).toMatch(/is in pack \d+, which is not listed/);

    const dir3 = await copyOfPackage('escape');
    await editManifest(dir3, (m) => ({
      ...m,
      storage: { ...m.storage, packs: ['../erp.tandem', ...m.storage.packs.slice(1)] },
    }));
    const err3 = await failure(openPackage(dir3));
    expect(err3.message).toContain('leaves the repository');
  });

  it('with a chunk that does not match its id is refused by push, which publishes nothing', async () => {
    for (const form of ['directory', 'file'] as const) {
      let path: string;
      if (form === 'directory') {
        path = await copyOfPackage('bad-chunk');
        const name = dirPkg.dataFiles[1]!;
        const data = await readFile(join(path, name));
        const [, [, offset, length]] = firstChunkIn(dirPkg.manifest, 1);
        data[offset + Math.floor(length / 2)]! ^= 0xff;
        await writeFile(join(path, name), data);
      } else {
        path = join(base, 'bad-chunk.tandem');
        const data = await readFile(filePkg.path);
        const [, [, offset, length]] = Object.entries(filePkg.manifest.storage.locations)[5]!;
        data[offset + Math.floor(length / 2)]! ^= 0xff;
        await writeFile(path, data);
      }
      const { store, keys } = await newRepo(`repo-bad-${form}`);
      const err = await failure(pushPackage({ package: path, store, keys, channels: ['stable'] }));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.message).toMatch(
        new RegExp(`^Package ${path} is damaged: chunk [0-9a-f]{64} does not (match its id|decompress)`),
      );
      expect(await store.has('manifests/erp/1.0.0.manifest')).toBe(false);
    }
  });
});
