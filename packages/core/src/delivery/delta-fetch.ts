import { hash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, NotFoundError } from '../errors.js';
import { decodeDelta, zstdDictionarySupported } from './delta.js';
import { planRanges, type ChunkToFetch } from './fetch-plan.js';
import { parseManifest, type ImageManifest } from './manifest.js';
import type { NeededChunks } from './seeds.js';
import type { RepoStore } from './store/types.js';

/** Where a base chunk is on this endpoint: a file, an offset in it and a length. */
export interface BaseLocation {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

/** Base chunks this endpoint holds, by id (read lazily, checked against the id when read). */
export type BaseIndex = Map<string, BaseLocation>;

/**
 * Indexes the chunks of every complete local version (from their manifests; nothing is read)
 * that are bases of a delta of a chunk still needed.
 */
export async function indexBases(
  versionDirs: readonly string[],
  manifest: ImageManifest,
  needed: NeededChunks,
  out: BaseIndex = new Map(),
): Promise<BaseIndex> {
  const wanted = wantedBases(manifest, needed);
  if (wanted.size === 0) return out;
  for (const dir of versionDirs) {
    let old: ImageManifest;
    try {
      const file = join(dir, '.tandem', 'manifest.zst');
      old = parseManifest(await readFile(file), file);
    } catch {
      continue;
    }
    const image = join(dir, ...old.image.path.split('/'));
    for (const c of old.chunks)
      if (!c.zero && wanted.has(c.id) && !out.has(c.id))
        out.set(c.id, { file: image, offset: c.offset, length: c.length });
  }
  return out;
}

/** The ids of the bases of the deltas of chunks still needed. */
export function wantedBases(manifest: ImageManifest, needed: NeededChunks): Set<string> {
  const wanted = new Set<string>();
  if (manifest.deltas) for (const id of needed.keys()) for (const d of manifest.deltas[id] ?? []) wanted.add(d.base);
  return wanted;
}

/** What {@link fetchDeltas} needs. */
export interface DeltaFetchContext {
  readonly store: RepoStore;
  readonly manifest: ImageManifest;
  readonly needed: NeededChunks;
  readonly bases: BaseIndex;
  readonly parallel: number;
  readonly maxRangeBytes: number;
  /** Takes a rebuilt, verified chunk (and removes it from `needed`), like a seed's. */
  readonly put: (id: string, data: Uint8Array) => Promise<void>;
  readonly signal?: AbortSignal;
}

/** What {@link fetchDeltas} did. */
export interface DeltaFetchResult {
  /** Chunks rebuilt from deltas. */
  readonly rebuilt: number;
  /** Deltas that did not rebuild their chunk (bad data, or a base that changed on disk): those chunks are fetched whole. */
  readonly rejected: number;
}

/**
 * For every needed chunk with a delta whose base this endpoint holds: fetches the deltas (merged
 * range requests, `parallel` in flight), rebuilds each chunk from its base, and hands it on only
 * when it matches its id. A chunk whose delta fails stays needed and is fetched whole. Nothing
 * happens on a store without byte ranges (a delta pack would be read whole) or on a Node.js whose
 * zstd has no dictionaries.
 */
export async function fetchDeltas(ctx: DeltaFetchContext): Promise<DeltaFetchResult> {
  return fetchDeltaRanges(
    ctx,
    (id) => ctx.bases.get(id),
    (file) => open(file, 'r').then(plainSource),
    {
      baseMatches: (id, base) => hash('sha256', base, 'hex') === id,
      rebuild: (c, delta, base) => {
        let plain: Buffer;
        try {
          plain = decodeDelta(delta, base, c.length);
        } catch {
          return null;
        }
        return plain.length === c.length && hash('sha256', plain, 'hex') === c.id ? plain : null;
      },
    },
  );
}

/** The part of {@link DeltaFetchContext} that {@link fetchDeltaRanges} uses (bases and `put` aside). */
export interface DeltaRangesContext {
  readonly store: RepoStore;
  readonly manifest: ImageManifest;
  readonly needed: NeededChunks;
  readonly parallel: number;
  readonly maxRangeBytes: number;
  readonly put: (id: string, data: Buffer) => Promise<void>;
  /** Told the bytes of each range of deltas received. */
  readonly fetched?: (bytes: number) => void;
  readonly signal?: AbortSignal;
}

/** An open file of bases: reads at an offset (short at its end), and closes. */
export interface BaseSource {
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * How the chunks of one kind of image are rebuilt from their deltas: the plaintext pull's
 * (SHA-256 ids) or the encrypted pull's (sealed deltas, keyed ids). Every check returns false or
 * null instead of throwing: a delta or base that fails one is rejected and its chunk fetched whole.
 */
export interface DeltaRebuildStep {
  /** True when `base`, read from the endpoint's file, is still the chunk `id` (the file may have changed). */
  baseMatches(id: string, base: Buffer): boolean;
  /** The chunk rebuilt from its (fetched) delta and its base, or null when it does not match its id. */
  rebuild(chunk: { id: string; base: string; length: number }, delta: Uint8Array, base: Buffer): Buffer | null;
  /** Called with every buffer of plaintext the loop is done with (the encrypted pull wipes them). */
  discard?(buf: Buffer): void;
}

/**
 * The fetch loop of both pulls' deltas. Plans the needed chunks with a delta whose base
 * `locate` finds into merged range requests; `parallel` workers fetch them, read their bases in
 * batches (each file opened once, neighbours in one read) while the previous batch is rebuilt, and
 * hand each chunk that `step` rebuilds to `put`. A missing delta pack (NotFoundError) rejects its
 * chunks (fetched whole later); any other failure stops every worker taking ranges and is thrown
 * once none runs, so nothing reaches `put` after this returns.
 */
export async function fetchDeltaRanges(
  ctx: DeltaRangesContext,
  locate: (base: string) => BaseLocation | undefined,
  openSource: (file: string) => Promise<BaseSource>,
  step: DeltaRebuildStep,
): Promise<DeltaFetchResult> {
  const { manifest, needed } = ctx;
  if (!manifest.deltas || !ctx.store.ranges || !zstdDictionarySupported()) return { rebuilt: 0, rejected: 0 };
  const items: (ChunkToFetch & { base: string })[] = [];
  for (const [id, entry] of needed) {
    const ref = manifest.deltas[id]?.find((d) => locate(d.base) !== undefined);
    if (!ref) continue;
    const [p, offset, size] = ref.location;
    items.push({ id, pack: manifest.storage.packs[p]!, offset, size, length: entry.length, base: ref.base });
  }
  if (items.length === 0) return { rebuilt: 0, rejected: 0 };
  const baseOf = new Map(items.map((i) => [i.id, i.base]));
  const queue = planRanges(items, { maxBytes: ctx.maxRangeBytes, maxGap: 0 });
  const reader = new BaseReader(locate, openSource, step);
  let rebuilt = 0;
  let rejected = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    for (let r = queue.shift(); r && !failure; r = queue.shift()) {
      if (ctx.signal?.aborted) throw new CancelledError('The pull was cancelled; run it again to resume.');
      let data: Buffer;
      try {
        data = await ctx.store.getRange(r.pack, r.offset, r.length, ctx.signal ? { signal: ctx.signal } : {});
      } catch (err) {
        // A delta pack that is missing: the whole chunks are fetched instead. Any other failure
        // (the server or the network) would fail the whole chunks as well, and is reported.
        if (!(err instanceof NotFoundError) || ctx.signal?.aborted) throw err;
        rejected += r.chunks.length;
        continue;
      }
      ctx.fetched?.(r.length);
      // The bases of a batch are read together (in image order, neighbours in one read) while
      // the previous batch is rebuilt: one read per chunk, each waiting for the disk in turn, made
      // the pull of an update three times slower than fetching the chunks whole.
      const batches: (typeof r.chunks)[] = [];
      for (let i = 0; i < r.chunks.length; i += BASE_BATCH) batches.push(r.chunks.slice(i, i + BASE_BATCH));
      const readBatch = (b: number): Promise<BaseBatch> | undefined =>
        b < batches.length ? reader.read(batches[b]!.map((c) => baseOf.get(c.id)!)) : undefined;
      let next = readBatch(0);
      try {
        for (let b = 0; b < batches.length; b++) {
          const read = await next!;
          next = readBatch(b + 1);
          try {
            for (const c of batches[b]!) {
              const baseId = baseOf.get(c.id)!;
              const base = read.bases.get(baseId);
              const chunk = base
                ? step.rebuild({ id: c.id, base: baseId, length: c.length }, data.subarray(c.at, c.at + c.size), base)
                : null;
              if (!chunk) {
                rejected++;
                continue;
              }
              try {
                await ctx.put(c.id, chunk);
                rebuilt++;
              } finally {
                step.discard?.(chunk);
              }
            }
          } finally {
            read.release();
          }
        }
      } finally {
        // A batch read ahead when a put failed: waited for, so its buffers are released too.
        if (next) (await next).release();
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(ctx.parallel, queue.length)) }, () =>
      worker().catch((error: unknown) => {
        failure ??= { error };
      }),
    ),
  );
  await reader.close();
  if (failure) throw failure.error;
  return { rebuilt, rejected };
}

/** Bases read at a time per range of deltas (at most this many chunks in memory, 16 MiB at 64 KiB). */
const BASE_BATCH = 256;
/** Bases this close on disk are read with one read (the gap is read and thrown away). */
const BASE_GAP = 256 * 1024;
/** Largest single read of bases. */
const BASE_READ = 8 * 1024 * 1024;

/** A plain file of bases. */
function plainSource(handle: FileHandle): BaseSource {
  return {
    async read(offset, length) {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    },
    close: () => handle.close(),
  };
}

/** The bases of a batch, by id, and a call that hands the buffers they sit in to `discard`. */
interface BaseBatch {
  readonly bases: Map<string, Buffer>;
  release(): void;
}

/**
 * Reads base chunks from the endpoint's files: each file opened once, the bases of a batch in
 * offset order with neighbours merged into one read, and each checked against its id. A base that
 * cannot be read or does not match is left out.
 */
class BaseReader {
  readonly #sources = new Map<string, Promise<BaseSource | null>>();

  constructor(
    private readonly locate: (id: string) => BaseLocation | undefined,
    private readonly openSource: (file: string) => Promise<BaseSource>,
    private readonly step: DeltaRebuildStep,
  ) {}

  async read(ids: readonly string[]): Promise<BaseBatch> {
    const wanted = [...new Set(ids)]
      .map((id) => ({ id, at: this.locate(id)! }))
      .sort((a, b) => (a.at.file < b.at.file ? -1 : a.at.file > b.at.file ? 1 : a.at.offset - b.at.offset));
    const runs: { file: string; offset: number; end: number; items: typeof wanted }[] = [];
    for (const w of wanted) {
      const last = runs[runs.length - 1];
      const end = w.at.offset + w.at.length;
      if (
        last &&
        last.file === w.at.file &&
        w.at.offset >= last.offset &&
        w.at.offset - last.end <= BASE_GAP &&
        Math.max(end, last.end) - last.offset <= BASE_READ
      ) {
        last.items.push(w);
        last.end = Math.max(last.end, end);
      } else runs.push({ file: w.at.file, offset: w.at.offset, end, items: [w] });
    }
    const bases = new Map<string, Buffer>();
    const buffers: Buffer[] = [];
    await Promise.all(
      runs.map(async (run) => {
        const source = await this.#open(run.file);
        if (!source) return;
        let buf: Buffer;
        try {
          buf = await source.read(run.offset, run.end - run.offset);
        } catch {
          return;
        }
        buffers.push(buf);
        for (const { id, at } of run.items) {
          const from = at.offset - run.offset;
          if (from + at.length > buf.length) continue;
          const base = buf.subarray(from, from + at.length);
          if (this.step.baseMatches(id, base)) bases.set(id, base);
        }
      }),
    );
    return {
      bases,
      release: () => {
        for (const b of buffers) this.step.discard?.(b);
      },
    };
  }

  #open(file: string): Promise<BaseSource | null> {
    let s = this.#sources.get(file);
    if (!s) {
      s = this.openSource(file).catch(() => null);
      this.#sources.set(file, s);
    }
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.#sources.values()) await (await s)?.close().catch(() => undefined);
    this.#sources.clear();
  }
}
