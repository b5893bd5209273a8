import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { GEAR } from './gear.js';

/**
 * Resemblance detection for near-duplicate chunks (post-deduplication delta compression), in the
 * style of Odess (Zhang et al., "Odess: Speeding up Resemblance Detection for Redundancy
 * Elimination by Fast Content-Defined Sampling", MSST 2021): a Gear rolling hash runs over the
 * chunk, positions where the hash has its low {@link SAMPLE_BITS} bits zero are sampled (content
 * defined, so an edit only changes the samples near it), and each of {@link FEATURES} features is
 * the maximum over the samples of a different linear transform of the hash (as in N-transform
 * super-feature sketches, Finesse/Odess). Groups of {@link FEATURES_PER_SF} features are hashed
 * into {@link SUPER_FEATURES} super-features; two chunks sharing any super-feature are very likely
 * near-duplicates.
 */
export const FEATURES = 12;
/** Features per super-feature. */
export const FEATURES_PER_SF = 4;
/** Super-features per chunk. */
export const SUPER_FEATURES = FEATURES / FEATURES_PER_SF;
/** One sampled position in 2^SAMPLE_BITS (64). */
export const SAMPLE_BITS = 6;

const SAMPLE_MASK = (1 << SAMPLE_BITS) - 1;
/** A gear table of its own (the chunker's, scrambled), so samples do not line up with cut points. */
const SKETCH_GEAR = Int32Array.from(GEAR, (g) => Math.imul(g ^ 0x5bd1e995, 0x9e3779b1));
const MUL = Int32Array.from({ length: FEATURES }, (_, k) => Math.imul(k * 2 + 1, 0x2545f491) | 1);
const ADD = Int32Array.from({ length: FEATURES }, (_, k) => Math.imul(k + 7, 0x68e31da4));

/** The super-features of a chunk's plaintext; all zeros when it has too few samples to tell. */
export function superFeatures(data: Uint8Array): Uint32Array {
  // Signed 32-bit arithmetic throughout: values stay small integers for V8 (an unsigned value
  // above 2^31 would be a heap number and slow the loop several times).
  const f = new Int32Array(FEATURES).fill(-0x80000000);
  const gear = SKETCH_GEAR;
  let h = 0;
  let samples = 0;
  const n = data.length;
  for (let i = 0; i < n; i++) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & SAMPLE_MASK) !== 0) continue;
    samples++;
    for (let k = 0; k < FEATURES; k++) {
      const v = (Math.imul(MUL[k]!, h) + ADD[k]!) | 0;
      if (v > f[k]!) f[k] = v;
    }
  }
  const out = new Uint32Array(SUPER_FEATURES);
  if (samples < 4) return out;
  for (let j = 0; j < SUPER_FEATURES; j++) {
    let x = 0x811c9dc5 ^ j;
    for (let k = j * FEATURES_PER_SF; k < (j + 1) * FEATURES_PER_SF; k++) x = Math.imul(x ^ f[k]!, 0x01000193);
    // 0 means "no super-feature".
    out[j] = x >>> 0 || 1;
  }
  return out;
}

/** An index from super-features to candidate base chunks; later additions win ties. */
export class ResemblanceIndex {
  readonly #bySf = new Map<number, string>();
  readonly #sfs = new Map<string, Uint32Array>();

  /** Adds a candidate base chunk by id with its super-features. */
  add(id: string, sfs: Uint32Array): void {
    this.#sfs.set(id, sfs);
    for (let j = 0; j < sfs.length; j++) if (sfs[j]) this.#bySf.set(sfs[j]! * SUPER_FEATURES + j, id);
  }

  /** The super-features recorded for a chunk id, if any. */
  featuresOf(id: string): Uint32Array | undefined {
    return this.#sfs.get(id);
  }

  /** The candidate sharing the most super-features with `sfs` (other than `self`), or undefined. */
  find(sfs: Uint32Array, self?: string): string | undefined {
    const votes = new Map<string, number>();
    let best: string | undefined;
    let bestVotes = 0;
    for (let j = 0; j < sfs.length; j++) {
      if (!sfs[j]) continue;
      const id = this.#bySf.get(sfs[j]! * SUPER_FEATURES + j);
      if (id === undefined || id === self) continue;
      const v = (votes.get(id) ?? 0) + 1;
      votes.set(id, v);
      if (v > bestVotes) [best, bestVotes] = [id, v];
    }
    return best;
  }

  get size(): number {
    return this.#sfs.size;
  }
}

/** zstd level of deltas. */
const DELTA_LEVEL = 3;

/**
 * A delta of `chunk` against `base`: zstd with the base as a raw-content dictionary. Throws when
 * this Node.js has no zstd dictionaries (see {@link zstdDictionarySupported}).
 */
export function encodeDelta(chunk: Uint8Array, base: Uint8Array): Buffer {
  return zstdCompressSync(chunk, {
    dictionary: Buffer.from(base.buffer, base.byteOffset, base.byteLength),
    params: { [constants.ZSTD_c_compressionLevel]: DELTA_LEVEL },
  });
}

/** Rebuilds a chunk from its delta and base, producing at most `length` bytes. Throws on bad data. */
export function decodeDelta(delta: Uint8Array, base: Uint8Array, length: number): Buffer {
  return zstdDecompressSync(delta, {
    dictionary: Buffer.from(base.buffer, base.byteOffset, base.byteLength),
    maxOutputLength: Math.max(1, length),
    // One output buffer of the chunk's size, not 16 KiB pieces joined afterwards.
    chunkSize: Math.max(64, length),
  });
}

let supported: boolean | undefined;

/**
 * True when this Node.js's zstd takes a dictionary (the `dictionary` option of `zstdCompressSync`
 * came with Node.js 24.6 and 22.19; older 22.x versions ignore it). Checked once by compressing
 * random bytes against themselves: with a dictionary that costs a few bytes, without one more
 * than the data. Without it, push stores no deltas and pull fetches whole chunks.
 */
export function zstdDictionarySupported(): boolean {
  if (supported === undefined) {
    try {
      const data = randomBytes(4096);
      const d = encodeDelta(data, data);
      supported = d.length < 512 && decodeDelta(d, data, data.length).equals(data);
    } catch {
      supported = false;
    }
  }
  return supported;
}

const SKETCH_MAGIC = Buffer.from('TNDSKT1\n', 'latin1');

/**
 * Serializes the super-features of a version's distinct chunks (in the order given): the
 * publisher's own record (`manifests/<workspace>/<version>.sketch`), read by later pushes to find
 * bases without reading the chunks again. Not needed by endpoints, not signed: a wrong sketch
 * only makes a poorer base choice, and every delta is checked against its chunk at push.
 */
export function serializeSketch(ids: readonly string[], sfs: (id: string) => Uint32Array | undefined): Buffer {
  const out = Buffer.alloc(SKETCH_MAGIC.length + 4 + ids.length * (32 + SUPER_FEATURES * 4));
  SKETCH_MAGIC.copy(out, 0);
  out.writeUInt32LE(ids.length, SKETCH_MAGIC.length);
  let at = SKETCH_MAGIC.length + 4;
  for (const id of ids) {
    out.write(id, at, 'hex');
    at += 32;
    const f = sfs(id) ?? new Uint32Array(SUPER_FEATURES);
    for (let j = 0; j < SUPER_FEATURES; j++, at += 4) out.writeUInt32LE(f[j]!, at);
  }
  return out;
}

/** Reads a sketch written by {@link serializeSketch}; null when it is not one. */
export function parseSketch(data: Uint8Array): Map<string, Uint32Array> | null {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < SKETCH_MAGIC.length + 4 || !b.subarray(0, SKETCH_MAGIC.length).equals(SKETCH_MAGIC)) return null;
  const count = b.readUInt32LE(SKETCH_MAGIC.length);
  const entry = 32 + SUPER_FEATURES * 4;
  if (b.length !== SKETCH_MAGIC.length + 4 + count * entry) return null;
  const out = new Map<string, Uint32Array>();
  let at = SKETCH_MAGIC.length + 4;
  for (let i = 0; i < count; i++) {
    const id = b.toString('hex', at, at + 32);
    const f = new Uint32Array(SUPER_FEATURES);
    for (let j = 0; j < SUPER_FEATURES; j++) f[j] = b.readUInt32LE(at + 32 + j * 4);
    out.set(id, f);
    at += entry;
  }
  return out;
}
