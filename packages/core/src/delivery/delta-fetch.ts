import { hash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
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
  let rebuilt = 0;
  let rejected = 0;
  const worker = async (): Promise<void> => {
    for (let r = queue.shift(); r; r = queue.shift()) {
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
      for (const c of r.chunks) {
        const chunk = await rebuild(
          data.subarray(c.at, c.at + c.size),
          bases.get(baseOf.get(c.id)!)!,
          baseOf.get(c.id)!,
          c,
        );
        if (chunk) {
          await ctx.put(c.id, chunk);
          rebuilt++;
        } else rejected++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.parallel, queue.length)) }, worker));
  return { rebuilt, rejected };
}

async function rebuild(
  delta: Uint8Array,
  at: BaseLocation,
  baseId: string,
  chunk: { id: string; length: number },
): Promise<Buffer | null> {
  const base = Buffer.allocUnsafe(at.length);
  const handle = await open(at.file, 'r').catch(() => null);
  if (!handle) return null;
  try {
    const { bytesRead } = await handle.read(base, 0, at.length, at.offset);
    if (bytesRead !== at.length || hash('sha256', base, 'hex') !== baseId) return null;
  } finally {
    await handle.close();
  }
  let plain: Buffer;
  try {
    plain = decodeDelta(delta, base, chunk.length);
  } catch {
    return null;
  }
  return plain.length === chunk.length && hash('sha256', plain, 'hex') === chunk.id ? plain : null;
}
