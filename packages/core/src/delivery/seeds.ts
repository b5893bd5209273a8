import { hash as digest } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../errors.js';
import { chunkFile, type ChunkingParams } from './fastcdc.js';
import type { BaseLocation } from './delta-fetch.js';
import { parseManifest, type ImageManifest } from './manifest.js';

/** The chunks still missing, by id, with every offset each one goes to. */
export type NeededChunks = Map<string, { readonly length: number; readonly offsets: readonly number[] }>;

/** Where seeding puts what it finds. */
export interface SeedTarget {
  readonly needed: NeededChunks;
  /** Takes a verified chunk that is needed (and removes it from `needed`). */
  readonly put: (id: string, data: Uint8Array) => Promise<void>;
  readonly signal?: AbortSignal;
  /**
   * Bases of deltas to look for in seed files: where each one found is goes into `found` (the
   * chunk is hashed, not kept).
   */
  readonly bases?: { readonly wanted: ReadonlySet<string>; readonly found: Map<string, BaseLocation> };
}

const BLOCK = 16 * 1024 * 1024;

/**
 * Uses a complete local version as a seed: its manifest says where each chunk is, so only the
 * chunks still needed are read (in large sequential blocks), and each is hashed again before
 * use (the file may have changed since). Returns the version's manifest, or null when it has no
 * readable manifest or image.
 */
export async function seedFromVersion(versionDir: string, target: SeedTarget): Promise<ImageManifest | null> {
  let manifest: ImageManifest;
  try {
    const file = join(versionDir, '.tandem', 'manifest.zst');
    manifest = parseManifest(await readFile(file), file);
  } catch {
    return null;
  }
  let handle;
  try {
    handle = await open(join(versionDir, ...manifest.image.path.split('/')), 'r');
  } catch {
    return null;
  }
  try {
    let block = Buffer.alloc(0);
    let blockAt = 0;
    for (const c of manifest.chunks) {
      if (target.needed.size === 0 || target.signal?.aborted) break;
      if (c.zero || !target.needed.has(c.id)) continue;
      if (c.offset < blockAt || c.offset + c.length > blockAt + block.length) {
        // A fresh block each time: chunks handed on keep pointing into the old one.
        block = Buffer.allocUnsafe(Math.max(BLOCK, c.length));
        const { bytesRead } = await handle.read(block, 0, block.length, c.offset);
        block = block.subarray(0, bytesRead);
        blockAt = c.offset;
      }
      const data = block.subarray(c.offset - blockAt, c.offset - blockAt + c.length);
      if (data.length === c.length && digest('sha256', data, 'hex') === c.id) await target.put(c.id, data);
    }
  } finally {
    await handle.close();
  }
  return manifest;
}

/**
 * Uses any file as a seed (an older image, a copy on removable media): cuts it with the new
 * version's chunking parameters and takes every chunk whose hash is needed. Chunks of a length
 * nothing needs are not even hashed.
 */
export async function seedFromFile(path: string, params: ChunkingParams, target: SeedTarget): Promise<void> {
  const lengths = new Set([...target.needed.values()].map((e) => e.length));
  const bases = target.bases?.wanted.size ? target.bases : undefined;
  try {
    for await (const chunk of chunkFile(path, params)) {
      if (target.needed.size === 0 || target.signal?.aborted) return;
      if (!lengths.has(chunk.length) && !bases) continue;
      const id = digest('sha256', chunk.data, 'hex');
      if (target.needed.has(id)) await target.put(id, chunk.data);
      else if (bases?.wanted.has(id) && !bases.found.has(id))
        bases.found.set(id, { file: path, offset: chunk.offset, length: chunk.length });
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`Seed file ${path} does not exist.`, { cause: err });
    throw err;
  }
}

const zeroIds = new Map<number, string>();

/** The chunk id of `length` zero bytes. */
export function zeroChunkId(length: number): string {
  let id = zeroIds.get(length);
  if (!id) {
    id = digest('sha256', Buffer.alloc(length), 'hex');
    zeroIds.set(length, id);
  }
  return id;
}
