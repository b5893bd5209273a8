import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRanges, type ChunkToFetch } from './fetch-plan.js';

/** Chunks laid out back to back in a few packs, some of them wanted. */
const layout = fc
  .array(
    fc.record({ pack: fc.constantFrom('a', 'b', 'c'), size: fc.integer({ min: 1, max: 5000 }), wanted: fc.boolean() }),
    { maxLength: 200 },
  )
  .map((entries) => {
    const at: Record<string, number> = {};
    return entries.map((e, i) => {
      const offset = at[e.pack] ?? 0;
      at[e.pack] = offset + e.size;
      return {
        chunk: { id: String(i), pack: e.pack, offset, size: e.size, length: e.size * 2 } satisfies ChunkToFetch,
        wanted: e.wanted,
      };
    });
  });

describe('planRanges', () => {
  it('covers every chunk exactly once, within its pack, with ranges under the limit', () => {
    fc.assert(
      fc.property(layout, fc.integer({ min: 1000, max: 20_000 }), (all, maxBytes) => {
        const wanted = all.filter((c) => c.wanted).map((c) => c.chunk);
        const ranges = planRanges(wanted, { maxBytes });
        const seen = ranges.flatMap((r) => r.chunks.map((c) => c.id)).sort();
        expect(seen).toEqual(wanted.map((c) => c.id).sort());
        for (const r of ranges) {
          if (r.chunks.length > 1) expect(r.length).toBeLessThanOrEqual(maxBytes);
          for (const c of r.chunks) {
            expect(c.pack).toBe(r.pack);
            expect(r.offset + c.at).toBe(c.offset);
            expect(c.at + c.size).toBeLessThanOrEqual(r.length);
          }
        }
      }),
    );
  });

  it('merges neighbours only (no wasted bytes) by default, and minimally', () => {
    fc.assert(
      fc.property(layout, (all) => {
        const wanted = all.filter((c) => c.wanted).map((c) => c.chunk);
        const ranges = planRanges(wanted, { maxBytes: Number.MAX_SAFE_INTEGER });
        const bytes = ranges.reduce((n, r) => n + r.length, 0);
        expect(bytes).toBe(wanted.reduce((n, c) => n + c.size, 0));
        // One range per run of neighbours in a pack.
        const runs = new Set(
          wanted.map(
            (c) =>
              `${c.pack}:${wanted.some((d) => d.pack === c.pack && d.offset + d.size === c.offset) ? 'x' : c.offset}`,
          ),
        );
        expect(ranges.length).toBe([...runs].filter((r) => !r.endsWith(':x')).length);
      }),
    );
  });

  it('bridges small gaps when asked to', () => {
    const chunks: ChunkToFetch[] = [
      { id: 'a', pack: 'p', offset: 0, size: 100, length: 100 },
      { id: 'b', pack: 'p', offset: 150, size: 100, length: 100 },
      { id: 'c', pack: 'p', offset: 1000, size: 100, length: 100 },
    ];
    expect(planRanges(chunks).length).toBe(3);
    const bridged = planRanges(chunks, { maxGap: 64 });
    expect(bridged.map((r) => [r.offset, r.length])).toEqual([
      [0, 250],
      [1000, 100],
    ]);
  });
});
