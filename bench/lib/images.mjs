// The benchmark images shared by bench/delivery.mjs and bench/crypto.mjs: a disk-like version 1
// and a version 2 with a share of it changed, the same bytes on every run.
import { createCipheriv, createHash } from 'node:crypto';

const MIB = 1024 * 1024;

/** Deterministic bytes: AES-256-CTR keyed by a label. */
export const pseudoRandom = (size, label) => {
  const key = createHash('sha256').update(`tandem-bench/delivery/${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
};

/**
 * Version 1 (`size` bytes of pseudo-random data, about 20% of it in runs of zeros of 256 KiB to
 * 16 MiB, as unused blocks of a disk) and version 2 (`changed` of it changed in scattered edits
 * of 64 KiB to 1 MiB, alternately overwrites and inserts). The layout comes from mulberry32 with
 * a fixed seed, so every run measures the same images.
 */
export function benchImages(size, changed) {
  let seed = 0x6d65_6476;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo));
  const v1 = pseudoRandom(size, 'v1');
  for (let zeros = 0; zeros < size * 0.2;) {
    const len = int(256 * 1024, 16 * MIB);
    const at = int(0, size - len);
    v1.fill(0, at, at + len);
    zeros += len;
  }
  const target = size * changed;
  const edits = [];
  for (let total = 0; total < target;) {
    const len = Math.min(int(64 * 1024, MIB), Math.ceil(target - total));
    edits.push({ at: int(0, size - len), len, insert: edits.length % 2 === 1 });
    total += len;
  }
  edits.sort((a, b) => a.at - b.at);
  const parts = [];
  let pos = 0;
  for (const e of edits) {
    if (e.at < pos) continue;
    parts.push(v1.subarray(pos, e.at));
    parts.push(pseudoRandom(e.len, `edit-${parts.length}`));
    pos = e.insert ? e.at : e.at + e.len;
  }
  parts.push(v1.subarray(pos));
  const changedBytes = parts.reduce((n, p, i) => n + (i % 2 === 1 && i < parts.length - 1 ? p.length : 0), 0);
  return { v1, v2: Buffer.concat(parts), changed: changedBytes, edits: edits.length };
}
