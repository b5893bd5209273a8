import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { IntegrityError } from '../errors.js';

/** zstd level used by default: fast, and random data costs almost nothing extra. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** Compresses a chunk with zstd. */
export function compressChunkSync(data: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Buffer {
  return zstdCompressSync(data, {
    params: { [constants.ZSTD_c_compressionLevel]: level },
    chunkSize: Math.max(64, data.length + 512),
  });
}

/**
 * Decompresses a chunk, refusing to produce more than `expectedLength` bytes (a hostile chunk
 * cannot make us allocate more). Throws IntegrityError when the data is not valid zstd.
 */
export function decompressChunk(data: Uint8Array, expectedLength: number, id: string): Buffer {
  try {
    // One output buffer of the expected size: no concatenation of 16 KiB pieces afterwards.
    return zstdDecompressSync(data, {
      maxOutputLength: Math.max(1, expectedLength),
      chunkSize: Math.max(64, expectedLength),
    });
  } catch (err) {
    throw new IntegrityError(
      `Chunk ${id} is not valid zstd data (${(err as Error).message}); the repository copy is damaged or was tampered with.`,
      {
        cause: err,
        details: { chunk: id },
      },
    );
  }
}
