import { CancelledError, NotFoundError } from '../errors.js';
import type { RangeRequest } from './fetch-plan.js';
import type { NeededChunks } from './seeds.js';
import type { Staging } from './staging.js';
import type { RepoStore } from './store/types.js';
import { alignedBuffer, PAGE_BYTES, type ChunkWorkers } from './workers.js';

/** What fetching needs. */
export interface FetchContext {
  readonly store: RepoStore;
  readonly needed: NeededChunks;
  readonly staging: Staging;
  readonly workers: ChunkWorkers;
  readonly parallel: number;
  /** Called after each range is written and journaled, with the image offsets it filled. */
  readonly written: (offsets: number[]) => void;
  readonly signal?: AbortSignal;
}

/**
 * Fetches ranges with `parallel` requests in flight; worker threads verify and write each
 * range, then its chunks are journaled. The first error stops everything (requests in flight
 * are aborted) and is thrown. Returns the number of chunks fetched.
 */
export async function fetchRanges(ranges: readonly RangeRequest[], ctx: FetchContext): Promise<number> {
  const queue = [...ranges];
  const stop = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
  let failure: Error | undefined;
  let count = 0;
  // Range buffers are reused: filled by a response, read by a worker in place (shared memory),
  // filled again. Memory touched once costs far less than fresh allocations (and their
  // collection) for every range. Each body lands at the offset within its buffer that puts image
  // pages on memory pages, so whole pages go to the disk with direct I/O without a copy.
  const slot = ranges.reduce((n, r) => Math.max(n, r.length), 0) + PAGE_BYTES;
  const pool: Buffer[] = [];
  const worker = async (): Promise<void> => {
    for (let r = queue.shift(); r && failure === undefined; r = queue.shift()) {
      if (ctx.signal?.aborted) throw new CancelledError('The pull was cancelled; run it again to resume.');
      const buffer = ctx.store.ranges ? (pool.pop() ?? alignedBuffer(slot)) : undefined;
      const first = r.chunks[0] ? (ctx.needed.get(r.chunks[0].id)?.offsets[0] ?? 0) : 0;
      const into = buffer?.subarray(first % PAGE_BYTES);
      const data = into
        ? await ctx.store.getRange(r.pack, r.offset, r.length, { signal, into })
        : await wholePack(ctx.store, r.pack, signal);
      const chunks = r.chunks.map((c) => ({
        id: c.id,
        at: ctx.store.ranges ? c.at : c.offset,
        size: c.size,
        length: c.length,
        offsets: ctx.needed.get(c.id)!.offsets,
      }));
      try {
        await ctx.workers.verifyAndWrite(data, chunks, r.pack);
      } finally {
        if (buffer) pool.push(buffer);
      }
      // Journaled only once written: a pull killed in between fetches these chunks again.
      await ctx.staging.record(...chunks.map((c) => c.id));
      for (const c of chunks) ctx.needed.delete(c.id);
      count += chunks.length;
      ctx.written(chunks.flatMap((c) => c.offsets));
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(ctx.parallel, queue.length)) }, () =>
    worker().catch((err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
      stop.abort();
    }),
  );
  await Promise.all(workers);
  if (failure !== undefined) throw failure;
  return count;
}

async function wholePack(store: RepoStore, pack: string, signal: AbortSignal): Promise<Buffer> {
  const data = await store.get(pack, { signal });
  if (!data)
    throw new NotFoundError(
      `Pack ${pack} is listed in the manifest but missing from ${store.location}; the repository is incomplete.`,
    );
  return data;
}
