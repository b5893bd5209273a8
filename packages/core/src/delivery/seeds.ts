import { hash as digest } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../errors.js';
import { chunkFile, type ChunkingParams } from './fastcdc.js';
import { parseManifest, type ImageManifest } from './manifest.js';
import type { Staging } from './staging.js';

/** The chunks still missing, by id, with every offset each one goes to. */
export type NeededChunks = Map<string, { readonly length: number; readonly offsets: readonly number[] }>;

/** What seeding needs: the missing chunks (satisfied ones are removed) and where to write. */
export interface SeedTarget {
  readonly needed: NeededChunks;
  readonly staging: Staging;
  /** Called with the image bytes each satisfied chunk provides. */
  readonly took: (bytes: number) => void;
  readonly signal?: AbortSignal;
}

async function take(target: SeedTarget, id: string, data: Uint8Array): Promise<void> {
  const entry = target.needed.get(id);
  if (!entry) return;
  target.needed.delete(id);
  await target.staging.write(data, entry.offsets);
  await target.staging.record(id);
  target.took(entry.length * entry.offsets.length);
}

/**
 * Uses a complete local version as a seed: its manifest says where each chunk is, so only the
 * chunks still needed are read, and each is hashed again before use (the file may have changed).
 * Returns its manifest, or null when the version has no readable manifest or image.
 */
export async function seedFromVersion(versionDir: string, target: SeedTarget): Promise<ImageManifest | null> {
  let manifest: ImageManifest;
  try {
    manifest = parseManifest(await readFile(join(versionDir, '.tandem', 'manifest.json')), join(versionDir, '.tandem', 'manifest.json'));
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
    const buf = Buffer.allocUnsafe(manifest.chunking.maxSize);
    for (const c of manifest.chunks) {
      if (target.signal?.aborted) return manifest;
      if (c.zero || !target.needed.has(c.id)) continue;
      const { bytesRead } = await handle.read(buf, 0, c.length, c.offset);
      const data = buf.subarray(0, bytesRead);
      if (bytesRead === c.length && digest('sha256', data, 'hex') === c.id) await take(target, c.id, data);
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
  try {
    for await (const chunk of chunkFile(path, params)) {
      if (target.needed.size === 0 || target.signal?.aborted) return;
      if (!lengths.has(chunk.length)) continue;
      const id = digest('sha256', chunk.data, 'hex');
      if (target.needed.has(id)) await take(target, id, chunk.data);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`Seed file ${path} does not exist.`, { cause: err });
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
