import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { syncDir } from './install-dir.js';
import { PACKAGE_SELF, parseManifest, type ChunkLocation } from './manifest.js';
import { WRITE_BATCH_BYTES, type PackageSink, type WorkspacePackage } from './package-file.js';

/**
 * The workspace package directory: the same manifest as a package file, next to the compressed
 * chunks split over data files of at most a volume size each, so that no file is too large for
 * FAT32 media or for a distribution system that copies plain files.
 *
 * ```
 * manifest.zst      the manifest (zstd-compressed JSON); storage.packs names the data files
 * data-0000.pack    compressed chunks back to back; locations are [data file, offset, size]
 * data-0001.pack    ...
 * ```
 *
 * The manifest is written last and the directory is renamed into place once complete, so a
 * directory without `manifest.zst` is never a package.
 */
export const PACKAGE_MANIFEST_FILE = 'manifest.zst';

/**
 * Default largest data file of a package directory: 1 GiB, well under FAT32's limit of 4 GiB
 * less one byte, and small enough that a distribution system copies and resumes it in pieces.
 */
export const DEFAULT_VOLUME_SIZE = 1024 * 1024 * 1024;

/** A manifest never needs more than this compressed (the decompressed limit is 256 MiB). */
const MAX_MANIFEST_FILE_BYTES = 256 * 1024 * 1024;
const DATA_FILE = /^data-\d{4,}\.pack$/;
/** Data files kept open while reading; a push reads them in order, so a few suffice. */
const OPEN_DATA_FILES = 4;

/** The name of data file `index`. */
function dataFileName(index: number): string {
  return `data-${String(index).padStart(4, '0')}.pack`;
}

/**
 * The smallest volume size that holds any compressed chunk of at most `maxSize` bytes (zstd's
 * worst case for incompressible data is a little over the input, plus a frame header).
 */
export function minVolumeSize(maxSize: number): number {
  return maxSize + (maxSize >> 8) + 4096;
}

/** Opens a package directory; see {@link PACKAGE_MANIFEST_FILE} for its layout. */
export async function openPackageDirectory(path: string): Promise<WorkspacePackage> {
  const bad = (
    why: string,
    todo = 'copy the whole directory again, or make it again with `tandem pack`',
    details: Record<string, unknown> = {},
  ): InvalidInputError =>
    new InvalidInputError(`${path} is not a complete Tandem package directory: ${why}; ${todo}.`, {
      details: { path, ...details },
    });
  const manifestFile = join(path, PACKAGE_MANIFEST_FILE);
  let bytes: Buffer;
  try {
    const st = await stat(manifestFile);
    if (!st.isFile()) throw bad(`${PACKAGE_MANIFEST_FILE} is not a file`);
    if (st.size > MAX_MANIFEST_FILE_BYTES) throw bad(`${PACKAGE_MANIFEST_FILE} is ${st.size} bytes, too large`);
    bytes = await readFile(manifestFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw bad(
        `it has no ${PACKAGE_MANIFEST_FILE}`,
        'give the package file or directory made by `tandem pack` (a directory still being packed has none)',
      );
    }
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`Cannot read ${manifestFile}: ${(err as Error).message}.`, {
      cause: err,
      details: { path: manifestFile },
    });
  }
  const manifest = parseManifest(bytes, manifestFile);
  const files = manifest.storage.packs;
  const sizes: number[] = [];
  for (const name of files) {
    // parseManifest has checked that every name stays inside the directory.
    if (name === PACKAGE_SELF) throw bad(`its manifest points into a package file ("${PACKAGE_SELF}")`);
    const st = await stat(join(path, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT')
        throw bad(`data file ${name}, which its manifest lists, is missing`, undefined, { file: name });
      throw new InvalidInputError(`Cannot read ${join(path, name)}: ${err.message}.`, {
        cause: err,
        details: { path: join(path, name) },
      });
    });
    if (!st.isFile()) throw bad(`data file ${name} is not a file`, undefined, { file: name });
    sizes.push(st.size);
  }
  for (const [id, [index, offset, length]] of Object.entries(manifest.storage.locations)) {
    const size = sizes[index]!;
    if (offset + length > size) {
      throw bad(
        `chunk ${id} lies at bytes ${offset}-${offset + length} of ${files[index]}, which has ${size} bytes (truncated, or from another package)`,
        undefined,
        { file: files[index], chunk: id },
      );
    }
  }

  // A few data files stay open; one evicted while a read is in flight closes when the read ends.
  interface OpenDataFile {
    readonly handle: Promise<FileHandle>;
    reads: number;
    evicted: boolean;
  }
  const handles = new Map<number, OpenDataFile>();
  const closeFile = (file: OpenDataFile): void => {
    void file.handle.then((h) => h.close()).catch(() => undefined);
  };
  const acquire = (index: number): OpenDataFile => {
    let file = handles.get(index);
    if (file) handles.delete(index);
    else {
      if (handles.size >= OPEN_DATA_FILES) {
        const [oldest, evicted] = handles.entries().next().value!;
        handles.delete(oldest);
        evicted.evicted = true;
        if (evicted.reads === 0) closeFile(evicted);
      }
      file = { handle: open(join(path, files[index]!), 'r'), reads: 0, evicted: false };
    }
    handles.set(index, file); // most recently used last, so the first is evicted
    file.reads++;
    return file;
  };
  const release = (index: number, file: OpenDataFile, failed: boolean): void => {
    file.reads--;
    if (failed && handles.get(index) === file) {
      handles.delete(index);
      file.evicted = true;
    }
    if (file.evicted && file.reads === 0) closeFile(file);
  };
  return {
    path,
    format: 'directory',
    manifest,
    size: bytes.length + sizes.reduce((n, s) => n + s, 0),
    async readChunk([index, offset, length]) {
      const name = files[index];
      if (name === undefined) throw bad(`no data file ${index}`);
      const file = acquire(index);
      let failed = true;
      try {
        let handle: FileHandle;
        try {
          handle = await file.handle;
        } catch (err) {
          throw new InvalidInputError(`Cannot read ${join(path, name)}: ${(err as Error).message}.`, {
            cause: err,
            details: { path: join(path, name) },
          });
        }
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buf, 0, length, offset);
        if (bytesRead !== length)
          throw bad(`data file ${name} was cut short while it was read`, undefined, { file: name });
        failed = false;
        return buf;
      } finally {
        release(index, file, failed);
      }
    },
    async close() {
      const open = [...handles.values()];
      handles.clear();
      await Promise.all(open.map((f) => f.handle.then((h) => h.close()).catch(() => undefined)));
    },
  };
}

/**
 * Checks that a package directory may be written at `out`: nothing is there, an empty directory,
 * or an earlier package directory (only files named like a package's), which is replaced.
 * Anything else is refused rather than deleted.
 */
async function checkDirectoryTarget(out: string): Promise<'absent' | 'replace'> {
  const st = await lstat(out).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st) return 'absent';
  const refuse = (why: string): InvalidInputError =>
    new InvalidInputError(
      `${out} ${why}; a package directory is written as a new directory: give a new path, such as ${join(out, 'erp-3.2.0')} inside it.`,
      { details: { path: out } },
    );
  if (!st.isDirectory()) {
    throw new InvalidInputError(
      `${out} is a file; remove it or give another path for the package directory (or ask for the file form: --format file).`,
      { details: { path: out } },
    );
  }
  const parent = dirname(out);
  if (parent === out || (await stat(parent)).dev !== st.dev) throw refuse('is a mount point');
  const entries = await readdir(out);
  if (!entries.every((e) => e === PACKAGE_MANIFEST_FILE || DATA_FILE.test(e)))
    throw refuse('is a directory that is not a Tandem package directory');
  return 'replace';
}

/**
 * Starts a package directory at `out` with data files of at most `volumeSize` bytes. It is
 * written to `<out>.partial-<pid>` and renamed to `out` only once complete (an empty directory
 * or an earlier package directory there is replaced), so a crash never leaves a package at
 * `out`, and a directory being written has no manifest.
 */
export async function createPackageDirectory(out: string, volumeSize: number): Promise<PackageSink> {
  await checkDirectoryTarget(out);
  const tmp = `${out}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const dataFiles: string[] = [];
  let handle: FileHandle | undefined;
  let planned = 0;
  let written = 0;
  let total = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async (): Promise<void> => {
    if (!handle || batch.length === 0) return;
    await handle.writev(batch, written);
    written += batchBytes;
    batch = [];
    batchBytes = 0;
  };
  const closeDataFile = async (): Promise<void> => {
    if (!handle) return;
    await flush();
    await handle.sync();
    await handle.close();
    handle = undefined;
  };
  return {
    async add(data) {
      const parts = Buffer.isBuffer(data) ? [data] : data;
      const length = parts.reduce((n, p) => n + p.length, 0);
      if (length > volumeSize)
        throw new InvalidInputError(`A compressed chunk of ${length} bytes is larger than the volume size.`);
      if (!handle || planned + length > volumeSize) {
        await closeDataFile();
        const name = dataFileName(dataFiles.length);
        handle = await open(join(tmp, name), 'wx');
        dataFiles.push(name);
        planned = 0;
        written = 0;
      }
      const location: ChunkLocation = [dataFiles.length - 1, planned, length];
      planned += length;
      total += length;
      batch.push(...parts);
      batchBytes += length;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      return location;
    },
    async commit(manifestFor) {
      await closeDataFile();
      const header = manifestFor(dataFiles);
      const file = await open(join(tmp, PACKAGE_MANIFEST_FILE), 'wx');
      try {
        await file.writeFile(header);
        await file.sync();
      } finally {
        await file.close();
      }
      await syncDir(tmp);
      // Checked again: something may have appeared at `out` while the image was packed.
      if ((await checkDirectoryTarget(out)) === 'replace') {
        const old = `${out}.old-${process.pid}`;
        await rm(old, { recursive: true, force: true });
        await rename(out, old);
        try {
          await rename(tmp, out);
        } catch (err) {
          await rename(old, out).catch(() => undefined);
          throw err;
        }
        await rm(old, { recursive: true, force: true });
      } else {
        await rename(tmp, out);
      }
      await syncDir(dirname(out));
      return { bytes: total + header.length, dataFiles };
    },
    async abort() {
      await handle?.close().catch(() => undefined);
      handle = undefined;
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
