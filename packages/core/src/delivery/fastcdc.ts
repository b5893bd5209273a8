import { open } from 'node:fs/promises';
import { InvalidInputError } from '../errors.js';
import { GEAR, GEAR_TABLE_NAME, gearTableDigest } from './gear.js';

/**
 * How an image is cut into chunks. Recorded in every manifest, so that any client can cut a
 * seed file the same way and find chunks it already has.
 */
export interface ChunkingParams {
  readonly algorithm: 'fastcdc';
  /** Name of the gear table (`tandem-gear-v1`). */
  readonly gear: string;
  /** SHA-256 of the gear table, so a client can tell whether it has the same one. */
  readonly gearSha256: string;
  /** No chunk is shorter, except the last. */
  readonly minSize: number;
  /** Target average; a power of two. */
  readonly avgSize: number;
  /** No chunk is longer. */
  readonly maxSize: number;
  /** FastCDC normalization level (0-3): higher gives chunk sizes closer to the average; 0 by default. */
  readonly normalization: number;
}

/** Options for {@link chunkingParams}; everything defaults to 16/64/256 KiB, normalization 0. */
export interface ChunkingOptions {
  minSize?: number;
  avgSize?: number;
  maxSize?: number;
  normalization?: number;
}

const GEAR_SHA256 = gearTableDigest();

/**
 * Builds and checks chunking parameters.
 *
 * @example
 * ```ts
 * const params = chunkingParams({ avgSize: 64 * 1024 }); // 16/64/256 KiB
 * ```
 */
export function chunkingParams(options: ChunkingOptions = {}): ChunkingParams {
  const avgSize = options.avgSize ?? 64 * 1024;
  const minSize = options.minSize ?? Math.max(64, avgSize / 4);
  const maxSize = options.maxSize ?? avgSize * 4;
  const normalization = options.normalization ?? 0;
  const params: ChunkingParams = {
    algorithm: 'fastcdc',
    gear: GEAR_TABLE_NAME,
    gearSha256: GEAR_SHA256,
    minSize,
    avgSize,
    maxSize,
    normalization,
  };
  checkChunkingParams(params);
  return params;
}

/**
 * The default: FastCDC 16/64/256 KiB with Tandem's gear table and normalization level 0, which
 * measured 5% fewer bytes per delta than level 2 on scattered edits (bench/delivery.mjs):
 * without normalization a boundary depends on the content alone, not on the distance from the
 * previous one, so boundaries re-synchronise sooner after an edit.
 */
export const DEFAULT_CHUNKING: ChunkingParams = chunkingParams();

/**
 * Throws InvalidInputError unless `params` can be used here: a known gear table, sizes with
 * `64 <= minSize < avgSize < maxSize <= 64 MiB`, `avgSize` a power of two.
 */
export function checkChunkingParams(params: ChunkingParams, where = 'chunking parameters'): void {
  const problems: string[] = [];
  if (params.algorithm !== 'fastcdc')
    problems.push(`algorithm is ${JSON.stringify(params.algorithm)}, expected "fastcdc"`);
  if (params.gear !== GEAR_TABLE_NAME || params.gearSha256 !== GEAR_SHA256) {
    problems.push(`gear table ${params.gear} (${params.gearSha256.slice(0, 12)}...) is not ${GEAR_TABLE_NAME}`);
  }
  const { minSize, avgSize, maxSize, normalization } = params;
  const ints = [minSize, avgSize, maxSize, normalization].every((n) => Number.isSafeInteger(n));
  if (!ints) problems.push('sizes and normalization must be integers');
  else {
    if (!(minSize >= 64 && minSize < avgSize && avgSize < maxSize && maxSize <= 64 * 1024 * 1024)) {
      problems.push(`expected 64 <= minSize < avgSize < maxSize <= 64 MiB, got ${minSize}/${avgSize}/${maxSize}`);
    }
    if ((avgSize & (avgSize - 1)) !== 0) problems.push(`avgSize ${avgSize} is not a power of two`);
    if (normalization < 0 || normalization > 3) problems.push(`normalization ${normalization} is not 0 to 3`);
  }
  if (problems.length > 0) {
    throw new InvalidInputError(`Unusable ${where}: ${problems.join('; ')}.`, { details: { params } });
  }
}

/**
 * Cut thresholds on the 32-bit gear hash (read as unsigned): a byte ends a chunk when the hash
 * is below the threshold. With `span = avgSize - minSize`, the chance per byte is
 * `1 / (span * 2^level)` before the normal point and `2^level / span` after it, so with level 0
 * the mean chunk is exactly `minSize + span = avgSize` (thresholds, unlike FastCDC's bit masks,
 * allow any span, not only powers of two).
 */
interface Thresholds {
  /** Harder to reach: used before the normal point. */
  readonly small: number;
  /** Easier to reach: used after it. */
  readonly large: number;
}

function thresholdsFor(params: ChunkingParams): Thresholds {
  const span = params.avgSize - params.minSize;
  const scale = 2 ** params.normalization;
  const limit = 2 ** 32 - 1;
  return {
    small: Math.min(limit, Math.floor(2 ** 32 / (span * scale))),
    large: Math.min(limit, Math.floor((2 ** 32 * scale) / span)),
  };
}

/**
 * Where the harder threshold gives way to the easier one (normalization levels above 0):
 * `avgSize - 3/4 minSize`, which keeps the mean close to `avgSize`.
 */
function normalPoint(params: ChunkingParams): number {
  return Math.max(params.minSize + 1, params.avgSize - Math.floor((params.minSize * 3) / 4));
}

/**
 * Length of the next chunk of `data[start, end)`. `end - start` may be shorter than
 * `maxSize` only at the end of the input.
 */
function cutPoint(
  data: Uint8Array,
  start: number,
  end: number,
  params: ChunkingParams,
  thresholds: Thresholds,
): number {
  let n = end - start;
  if (n <= params.minSize) return n;
  if (n > params.maxSize) n = params.maxSize;
  const switchAt = normalPoint(params);
  const normal = n < switchAt ? n : switchAt;
  const gear = GEAR;
  const { small, large } = thresholds;
  let hash = 0;
  // The first minSize bytes are skipped (FastCDC's cut-point skipping); the 32-bit hash only
  // depends on the last 32 bytes, so boundaries still re-synchronise after a change.
  let i = start + params.minSize;
  const normalEnd = start + normal;
  for (; i < normalEnd; i++) {
    hash = ((hash << 1) + gear[data[i]!]!) | 0;
    if (hash >>> 0 < small) return i + 1 - start;
  }
  const last = start + n;
  for (; i < last; i++) {
    hash = ((hash << 1) + gear[data[i]!]!) | 0;
    if (hash >>> 0 < large) return i + 1 - start;
  }
  return n;
}

/** One chunk's place in its input. */
export interface ChunkSpan {
  readonly offset: number;
  readonly length: number;
}

/**
 * Cuts a buffer into chunks. Pure and synchronous.
 *
 * @example
 * ```ts
 * for (const { offset, length } of chunkBuffer(data, DEFAULT_CHUNKING)) console.log(offset, length);
 * ```
 */
export function* chunkBuffer(data: Uint8Array, params: ChunkingParams = DEFAULT_CHUNKING): Generator<ChunkSpan> {
  checkChunkingParams(params);
  const thresholds = thresholdsFor(params);
  let offset = 0;
  while (offset < data.length) {
    const length = cutPoint(data, offset, data.length, params, thresholds);
    yield { offset, length };
    offset += length;
  }
}

/** A chunk of a file. */
export interface FileChunk extends ChunkSpan {
  /** A view of the chunk's bytes; copy it to keep it long, as it pins a whole read block. */
  readonly data: Uint8Array;
}

/**
 * Cuts a file into chunks, reading it in large blocks with the next read already under way
 * while the current block is cut.
 */
export async function* chunkFile(
  path: string,
  params: ChunkingParams = DEFAULT_CHUNKING,
  options: { blockSize?: number } = {},
): AsyncGenerator<FileChunk> {
  checkChunkingParams(params);
  const thresholds = thresholdsFor(params);
  const blockSize = Math.max(options.blockSize ?? 16 * 1024 * 1024, params.maxSize);
  const handle = await open(path, 'r');
  const readBlock = async (): Promise<Buffer> => {
    const block = Buffer.allocUnsafe(blockSize);
    let filled = 0;
    while (filled < blockSize) {
      const { bytesRead } = await handle.read(block, filled, blockSize - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return block.subarray(0, filled);
  };
  let next: Promise<Buffer> | undefined = readBlock();
  try {
    let carry: Buffer = Buffer.alloc(0);
    let fileOffset = 0;
    while (next) {
      const block: Buffer = await next;
      const eof: boolean = block.length < blockSize;
      next = eof ? undefined : readBlock();
      const data = carry.length > 0 ? Buffer.concat([carry, block]) : block;
      let pos = 0;
      while (pos < data.length && (eof || data.length - pos >= params.maxSize)) {
        const length = cutPoint(data, pos, data.length, params, thresholds);
        yield { offset: fileOffset, length, data: data.subarray(pos, pos + length) };
        pos += length;
        fileOffset += length;
      }
      carry = data.subarray(pos);
    }
  } finally {
    // Let a read still in flight finish before closing its handle.
    await next?.catch(() => undefined);
    await handle.close();
  }
}

/**
 * Cuts a stream of blocks into chunks (a seed read through a decrypting reader, where there is
 * no file to read). Blocks may have any sizes; the cut points are those of the whole stream.
 */
export async function* chunkStream(
  blocks: AsyncIterable<Uint8Array>,
  params: ChunkingParams = DEFAULT_CHUNKING,
): AsyncGenerator<FileChunk> {
  checkChunkingParams(params);
  const thresholds = thresholdsFor(params);
  let carry: Buffer = Buffer.alloc(0);
  let offset = 0;
  const cut = function* (data: Buffer, eof: boolean): Generator<FileChunk> {
    let pos = 0;
    while (pos < data.length && (eof || data.length - pos >= params.maxSize)) {
      const length = cutPoint(data, pos, data.length, params, thresholds);
      yield { offset, length, data: data.subarray(pos, pos + length) };
      pos += length;
      offset += length;
    }
    carry = data.subarray(pos);
  };
  for await (const block of blocks) {
    const data = carry.length > 0 ? Buffer.concat([carry, block]) : Buffer.from(block);
    yield* cut(data, false);
  }
  yield* cut(carry, true);
}
