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
  const { manifest, needed, bases } = ctx;
  if (!manifest.deltas || bases.size === 0 || !ctx.store.ranges || !zstdDictionarySupported())
    return { rebuilt: 0, rejected: 0 };
  const items: (ChunkToFetch & { base: string })[] = [];
  for (const [id, entry] of needed) {
    const ref = manifest.deltas[id]?.find((d) => bases.has(d.base));
    if (!ref) continue;
    const [p, offset, size] = ref.location;
    items.push({ id, pack: manifest.storage.packs[p]!, offset, size, length: entry.length, base: ref.base });
  }
  const baseOf = new Map(items.map((i) => [i.id, i.base]));
  const queue = planRanges(items, { maxBytes: ctx.maxRangeBytes, maxGap: 0 });
  const reader = new BaseReader(bases);
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
      // The bases of a batch are read together (in image order, neighbours in one read) while
      // the previous batch is rebuilt: one read per chunk, each waiting for the disk in turn, made
      // the pull of an update three times slower than fetching the chunks whole.
      const batches: (typeof r.chunks)[] = [];
      for (let i = 0; i < r.chunks.length; i += BASE_BATCH) batches.push(r.chunks.slice(i, i + BASE_BATCH));
      let next = batches.length > 0 ? reader.read(batches[0]!.map((c) => baseOf.get(c.id)!)) : undefined;
      for (let b = 0; b < batches.length; b++) {
        const read = await next!;
        next = b + 1 < batches.length ? reader.read(batches[b + 1]!.map((c) => baseOf.get(c.id)!)) : undefined;
        for (const c of batches[b]!) {
          const chunk = rebuild(data.subarray(c.at, c.at + c.size), read.get(baseOf.get(c.id)!), c);
          if (chunk) {
            await ctx.put(c.id, chunk);
            rebuilt++;
          } else rejected++;
        }
      }
    }
  };
  // The first failure stops the other workers taking ranges, and is thrown once none runs (so
  // nothing is handed to `put` after this returns).
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

/**
 * Reads base chunks from the endpoint's files: each file opened once, the bases of a batch in
 * offset order with neighbours merged into one read, and each checked against its id (the file
 * may have changed since it was installed). A base that cannot be read or does not match is
 * left out.
 */
class BaseReader {
  readonly #handles = new Map<string, Promise<FileHandle | null>>();

  constructor(private readonly bases: BaseIndex) {}

  async read(ids: readonly string[]): Promise<Map<string, Buffer>> {
    const wanted = [...new Set(ids)]
      .map((id) => ({ id, at: this.bases.get(id)! }))
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
    const out = new Map<string, Buffer>();
    await Promise.all(
      runs.map(async (run) => {
        const handle = await this.#open(run.file);
        if (!handle) return;
        const buf = Buffer.allocUnsafe(run.end - run.offset);
        let got = 0;
        try {
          while (got < buf.length) {
            const { bytesRead } = await handle.read(buf, got, buf.length - got, run.offset + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
        } catch {
          return;
        }
        for (const { id, at } of run.items) {
          const from = at.offset - run.offset;
          if (from + at.length > got) continue;
          const base = buf.subarray(from, from + at.length);
          if (hash('sha256', base, 'hex') === id) out.set(id, base);
        }
      }),
    );
    return out;
  }

  #open(file: string): Promise<FileHandle | null> {
    let h = this.#handles.get(file);
    if (!h) {
      h = open(file, 'r').catch(() => null);
      this.#handles.set(file, h);
    }
    return h;
  }

  async close(): Promise<void> {
    for (const h of this.#handles.values()) await (await h)?.close();
    this.#handles.clear();
  }
}

/** The chunk rebuilt from its delta and base, or null when it does not match its id (or there is no base). */
function rebuild(delta: Uint8Array, base: Buffer | undefined, chunk: { id: string; length: number }): Buffer | null {
  if (!base) return null;
  let plain: Buffer;
  try {
    plain = decodeDelta(delta, base, chunk.length);
  } catch {
    return null;
  }
  return plain.length === chunk.length && hash('sha256', plain, 'hex') === chunk.id ? plain : null;
}
