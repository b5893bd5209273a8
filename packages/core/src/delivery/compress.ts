import { promisify } from 'node:util';
import { constants, zstdCompress, zstdDecompressSync } from 'node:zlib';
import { IntegrityError } from '../errors.js';

const compressAsync = promisify(zstdCompress);

/** zstd level used by default: fast, and random data costs almost nothing extra. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** Compresses a chunk with zstd on libuv's thread pool, so chunking goes on meanwhile. */
export function compressChunk(data: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Promise<Buffer> {
  return compressAsync(data, { params: { [constants.ZSTD_c_compressionLevel]: level } });
}

/**
 * Decompresses a chunk, refusing to produce more than `expectedLength` bytes (a hostile chunk
 * cannot make us allocate more). Throws IntegrityError when the data is not valid zstd.
 */
export function decompressChunk(data: Uint8Array, expectedLength: number, id: string): Buffer {
  try {
    return zstdDecompressSync(data, { maxOutputLength: Math.max(1, expectedLength) });
  } catch (err) {
    throw new IntegrityError(`Chunk ${id} is not valid zstd data (${(err as Error).message}); the repository copy is damaged or was tampered with.`, {
      cause: err,
      details: { chunk: id },
    });
  }
}
