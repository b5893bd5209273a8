import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { syncDir } from './install-dir.js';
import { PACKAGE_SELF, parseManifest, type ChunkLocation, type ImageManifest } from './manifest.js';
import { openPackageDirectory } from './package-directory.js';

/**
 * The two forms of a workspace package: `file` (everything in one file) and `directory` (a
 * manifest and data files of at most a volume size each, for media and distribution systems
 * that limit the size of a file).
 */
export type PackageFormat = 'file' | 'directory';

/**
 * The workspace package file: everything in one file, so it can be copied to removable media or
 * handed to a software distribution system.
 *
 * ```
 * 0        "TNDMPKG1"
 * 8        compressed chunks, back to back (manifest locations point here, pack "@package")
 * H        the manifest, zstd-compressed JSON
 * end-24   "TNDMPKG1", H (u64 big-endian), manifest length (u64 big-endian)
 * ```
 */
export const PACKAGE_MAGIC = Buffer.from('TNDMPKG1', 'ascii');
const TRAILER = 24;
/** Compressed chunks are written in batches: one write per chunk costs more than the chunking. */
export const WRITE_BATCH_BYTES = 8 * 1024 * 1024;

/**
 * An open workspace package, either form. Its manifest has been checked and every chunk
 * location lies inside the package's data; the chunks themselves are checked by whoever
 * decompresses them (`pushPackage` does).
 */
export interface WorkspacePackage {
  /** The package file or directory. */
  readonly path: string;
  readonly format: PackageFormat;
  readonly manifest: ImageManifest;
  /** Size of the package: the file, or the manifest and data files of the directory. */
  readonly size: number;
  /** Reads a chunk's compressed bytes. */
  readChunk(location: ChunkLocation): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Where `packWorkspace` writes a package while it is made: compressed chunks are added in order,
 * then the manifest, which names the data files, completes it and moves it into place.
 */
export interface PackageSink {
  /**
   * Queues a compressed chunk and says where it is in the package. An encrypted chunk comes in
   * parts (ciphertext, tag), written back to back without being copied together first.
   */
  add(data: Buffer | readonly Buffer[]): Promise<ChunkLocation>;
  /** Writes the manifest made for the data files, syncs, and moves the package to its path. */
  commit(manifestFor: (packs: readonly string[]) => Buffer): Promise<{ bytes: number; dataFiles: readonly string[] }>;
  /** Removes what was written; nothing is left at the package's path. */
  abort(): Promise<void>;
}

/**
 * Opens a workspace package, a file or a directory (told apart by what is at `path`), and checks
 * its manifest and that every chunk lies inside its data. Throws NotFoundError when nothing is
 * at `path` and InvalidInputError when it is not a Tandem package or is truncated or incomplete;
 * the message names the path and what was expected.
 *
 * @example
 * ```ts
 * const pkg = await openPackage('erp-3.2.0.tandem'); // or a package directory
 * try {
 *   console.log(pkg.format, pkg.manifest.workspace.name, pkg.manifest.workspace.version);
 * } finally {
 *   await pkg.close();
 * }
 * ```
 */
export async function openPackage(path: string): Promise<WorkspacePackage> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (err) {
    throw openError(path, err);
  }
  return isDirectory ? openPackageDirectory(path) : openPackageFile(path);
}

/** NotFoundError for a package that is not there, InvalidInputError for one that cannot be opened. */
function openError(path: string, err: unknown): NotFoundError | InvalidInputError {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT')
    return new NotFoundError(`Package ${path} does not exist.`, { cause: err, details: { path } });
  return new InvalidInputError(`Cannot open package ${path}: ${(err as Error).message}.`, {
    cause: err,
    details: { path },
  });
}

async function openPackageFile(path: string): Promise<WorkspacePackage> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw openError(path, err);
  }
  try {
    const { size } = await handle.stat();
    const bad = (why: string): InvalidInputError =>
      new InvalidInputError(`${path} is not a Tandem workspace package (${why}); make one with \`tandem pack\`.`, {
        details: { path },
      });
    if (size < PACKAGE_MAGIC.length + TRAILER) throw bad('too short');
    const trailer = Buffer.alloc(TRAILER);
    await handle.read(trailer, 0, TRAILER, size - TRAILER);
    const head = Buffer.alloc(PACKAGE_MAGIC.length);
    await handle.read(head, 0, head.length, 0);
    if (!head.equals(PACKAGE_MAGIC) || !trailer.subarray(0, 8).equals(PACKAGE_MAGIC))
      throw bad('no package signature at its start and end; is it truncated?');
    const headerAt = Number(trailer.readBigUInt64BE(8));
    const headerLength = Number(trailer.readBigUInt64BE(16));
    if (headerAt < PACKAGE_MAGIC.length || headerAt + headerLength !== size - TRAILER)
      throw bad('its trailer points outside the file');
    const header = Buffer.alloc(headerLength);
    await handle.read(header, 0, headerLength, headerAt);
    const manifest = parseManifest(header, path);
    if (manifest.storage.packs.length !== 1 || manifest.storage.packs[0] !== PACKAGE_SELF)
      throw bad('its manifest does not point into the package');
    for (const [id, [, offset, length]] of Object.entries(manifest.storage.locations)) {
      if (offset < PACKAGE_MAGIC.length || offset + length > headerAt)
        throw bad(`chunk ${id} lies outside the chunk data`);
    }
    return {
      path,
      format: 'file',
      manifest,
      size,
      async readChunk([, offset, length]) {
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buf, 0, length, offset);
        if (bytesRead !== length) throw bad('a chunk is cut short');
        return buf;
      },
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Starts a package file at `out`: it is written to `<out>.partial-<pid>` and renamed to `out`
 * (replacing a file there) only once complete, so a crash never leaves a package at `out`.
 */
export async function createPackageFile(out: string): Promise<PackageSink> {
  const existing = await stat(out).catch(() => null);
  if (existing?.isDirectory()) {
    throw new InvalidInputError(
      `${out} is a directory; the file form needs a file path (or ask for the directory form: --format directory).`,
      { details: { path: out } },
    );
  }
  const tmp = `${out}.partial-${process.pid}`;
  const handle = await open(tmp, 'w');
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let at = PACKAGE_MAGIC.length;
  let written = 0;
  const write = async (data: Buffer[]): Promise<void> => {
    const bytes = data.reduce((n, b) => n + b.length, 0);
    await handle.writev(data, written);
    written += bytes;
  };
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await write(batch);
    batch = [];
    batchBytes = 0;
  };
  try {
    await write([PACKAGE_MAGIC]);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  return {
    async add(data) {
      const parts = Buffer.isBuffer(data) ? [data] : data;
      const length = parts.reduce((n, p) => n + p.length, 0);
      const location: ChunkLocation = [0, at, length];
      at += length;
      batch.push(...parts);
      batchBytes += length;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      return location;
    },
    async commit(manifestFor) {
      await flush();
      const header = manifestFor([PACKAGE_SELF]);
      await write([header, packageTrailer(at, header.length)]);
      await handle.sync();
      await handle.close();
      await rename(tmp, out);
      await syncDir(dirname(out));
      return { bytes: written, dataFiles: [] };
    },
    async abort() {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
    },
  };
}

/** The package trailer that follows the manifest. */
function packageTrailer(headerAt: number, headerLength: number): Buffer {
  const trailer = Buffer.alloc(TRAILER);
  PACKAGE_MAGIC.copy(trailer, 0);
  trailer.writeBigUInt64BE(BigInt(headerAt), 8);
  trailer.writeBigUInt64BE(BigInt(headerLength), 16);
  return trailer;
}
