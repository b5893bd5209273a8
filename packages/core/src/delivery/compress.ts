import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { IntegrityError } from '../errors.js';

/** zstd level used by default: fast, and random data costs almost nothing extra. */
export const DEFAULT_ZSTD_LEVEL = 3;

/**
 * Encodes a chunk for a pack: zstd-compressed, or stored as is when zstd does not make it
 * smaller (random or already compressed data). A stored chunk is recognised by its size: it is
 * exactly the chunk's length, while a compressed one is always shorter (compression is kept only
 * when it is). Storing incompressible data as is saves the frame overhead in transfer and a
 * decompression per chunk on every endpoint.
 */
export function compressChunkSync(data: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Buffer {
  const compressed = zstdCompressSync(data, {
    params: { [constants.ZSTD_c_compressionLevel]: level },
    chunkSize: Math.max(64, data.length + 512),
  });
  // A copy: the caller's buffer is reused for the next chunk.
  return compressed.length < data.length ? compressed : Buffer.from(data);
}

/**
 * Decodes a chunk from a pack, refusing to produce more than `expectedLength` bytes (a hostile
 * chunk cannot make us allocate more): stored bytes (size equal to the length) are returned as
 * they are, anything else is decompressed. Throws IntegrityError when the data is not valid zstd.
 */
export function decompressChunk(data: Uint8Array, expectedLength: number, id: string): Buffer {
  if (data.length === expectedLength) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
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
