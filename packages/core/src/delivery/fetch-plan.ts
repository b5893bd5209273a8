/** A chunk to fetch: where its compressed bytes are, and how long it is uncompressed. */
export interface ChunkToFetch {
  readonly id: string;
  readonly pack: string;
  readonly offset: number;
  /** Compressed size. */
  readonly size: number;
  /** Uncompressed length. */
  readonly length: number;
}

/** One request: a byte range of a pack and the chunks inside it (`at` is relative to `offset`). */
export interface RangeRequest {
  readonly pack: string;
  readonly offset: number;
  readonly length: number;
  readonly chunks: readonly (ChunkToFetch & { readonly at: number })[];
}

/** How ranges are merged. */
export interface RangePlanOptions {
  /** Merge chunks whose gap is at most this many bytes (the gap is fetched and thrown away); default 0. */
  maxGap?: number;
  /** Do not grow a merged range past this many bytes; default 8 MiB. */
  maxBytes?: number;
}

/**
 * Groups chunks into as few range requests as possible: chunks of the same pack whose bytes
 * are neighbours (or within `maxGap`) share a request, up to `maxBytes` each. Pure.
 *
 * @example
 * ```ts
 * const requests = planRanges(missing, { maxBytes: 8 << 20 });
 * ```
 */
export function planRanges(chunks: readonly ChunkToFetch[], options: RangePlanOptions = {}): RangeRequest[] {
  const maxGap = options.maxGap ?? 0;
  const maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
  const sorted = [...chunks].sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.offset - b.offset));
  const out: RangeRequest[] = [];
  let current: { pack: string; offset: number; end: number; chunks: (ChunkToFetch & { at: number })[] } | undefined;
  for (const c of sorted) {
    const end = c.offset + c.size;
    if (
      current &&
      current.pack === c.pack &&
      c.offset >= current.end &&
      c.offset - current.end <= maxGap &&
      end - current.offset <= maxBytes
    ) {
      current.chunks.push({ ...c, at: c.offset - current.offset });
      current.end = end;
      continue;
    }
    if (current && current.pack === c.pack && c.offset < current.end) {
      // The same bytes listed twice (two ids cannot share bytes, but be safe): reuse them.
      if (end <= current.end) {
        current.chunks.push({ ...c, at: c.offset - current.offset });
        continue;
      }
    }
    if (current)
      out.push({
        pack: current.pack,
        offset: current.offset,
        length: current.end - current.offset,
        chunks: current.chunks,
      });
    current = { pack: c.pack, offset: c.offset, end, chunks: [{ ...c, at: 0 }] };
  }
  if (current)
    out.push({
      pack: current.pack,
      offset: current.offset,
      length: current.end - current.offset,
      chunks: current.chunks,
    });
  return out;
}
