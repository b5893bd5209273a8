import { open, type FileHandle } from 'node:fs/promises';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { PACKAGE_SELF, parseManifest, type ChunkLocation, type ImageManifest } from './manifest.js';

/**
 * The workspace package file: everything in one file, so it can be copied to removable media or
 * handed to a software distribution system.
 *
 * ```
 * 0        "TNDMPKG1"
 * 8        compressed chunks, back to back (manifest locations point here, pack "@package")
 * H        the manifest, JSON
 * end-24   "TNDMPKG1", H (u64 big-endian), manifest length (u64 big-endian)
 * ```
 */
export const PACKAGE_MAGIC = Buffer.from('TNDMPKG1', 'ascii');
const TRAILER = 24;

/** An open workspace package. */
export interface WorkspacePackage {
  readonly path: string;
  readonly manifest: ImageManifest;
  /** Size of the package file. */
  readonly size: number;
  /** Reads a chunk's compressed bytes. */
  readChunk(location: ChunkLocation): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Opens a package file and checks its manifest. Throws NotFoundError when it does not exist and
 * InvalidInputError when it is not a Tandem package or is truncated.
 */
export async function openPackage(path: string): Promise<WorkspacePackage> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`Package ${path} does not exist.`, { cause: err });
    throw new InvalidInputError(`Cannot open package ${path}: ${(err as Error).message}.`, { cause: err });
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

/** Writes the package trailer after the manifest. */
export function packageTrailer(headerAt: number, headerLength: number): Buffer {
  const trailer = Buffer.alloc(TRAILER);
  PACKAGE_MAGIC.copy(trailer, 0);
  trailer.writeBigUInt64BE(BigInt(headerAt), 8);
  trailer.writeBigUInt64BE(BigInt(headerLength), 16);
  return trailer;
}
