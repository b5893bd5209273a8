import { InvalidInputError } from '../errors.js';
import { DELTA_OVERHEAD_BYTES, type ChunkCipher } from '../crypto/chunk-cipher.js';
import type { DataKey } from '../crypto/data-key.js';
import { wipe } from '../crypto/secret.js';
import type { EncryptedImage } from './at-rest.js';
import { decodeDelta, encodeDelta, ResemblanceIndex, superFeatures } from './delta.js';
import { fetchDeltaRanges } from './delta-fetch.js';
import { decodeEncryptedChunk, verifyManifest } from './encryption.js';
import type { ImageManifest } from './manifest.js';
import { openPackage, type WorkspacePackage } from './package-file.js';
import type { NeededChunks } from './seeds.js';
import type { RepoStore } from './store/types.js';

// Deltas of encrypted images (issues 11 and 18). The publisher holds no data key, so the deltas
// are made where the plaintext is: by `packWorkspace` with `encryption.deltaFrom`, against the
// previous version's encrypted package, read with the same data key. Each delta (zstd with the
// base chunk's plaintext as dictionary) is encrypted with `ChunkCipher.encryptDelta`; push copies
// it to the repository like a chunk; the endpoint rebuilds the chunk from its base, read through
// the at-rest encryption of an installed version, and checks the keyed id.

/**
 * The previous version of an encrypted image, as bases for the deltas of the next one: its
 * chunks' super-features, and its package to read a base from (decrypted and checked in memory).
 */
export class EncryptedDeltaBases {
  readonly #pkg: WorkspacePackage;
  readonly #cipher: ChunkCipher;
  readonly #index = new ResemblanceIndex();
  readonly #lengths = new Map<string, number>();
  /** The previous version's chunk after, and before, each of its chunks (zeros left out). */
  readonly #after = new Map<string, string>();
  readonly #before = new Map<string, string>();

  private constructor(pkg: WorkspacePackage, cipher: ChunkCipher) {
    this.#pkg = pkg;
    this.#cipher = cipher;
  }

  /**
   * Opens the previous version's encrypted package (a file or a directory) and indexes its chunks.
   * InvalidInputError when it is not encrypted, is another workspace's, or is encrypted with
   * another data key; IntegrityError when its manifest or a chunk was altered.
   */
  static async open(
    path: string,
    workspace: string,
    dataKey: DataKey,
    cipher: ChunkCipher,
  ): Promise<EncryptedDeltaBases> {
    const pkg = await openPackage(path);
    try {
      const m = pkg.manifest;
      const expected = `expected the previous version's package of ${workspace}, encrypted with data key ${dataKey.id}`;
      if (!m.encryption)
        throw new InvalidInputError(`deltaFrom ${path} is not an encrypted package; ${expected}.`, {
          details: { path },
        });
      if (m.workspace.name !== workspace)
        throw new InvalidInputError(`deltaFrom ${path} is a package of ${m.workspace.name}; ${expected}.`, {
          details: { path },
        });
      if (m.encryption.keyId !== dataKey.id)
        throw new InvalidInputError(
          `deltaFrom ${path} is encrypted with data key ${m.encryption.keyId}; ${expected} (versions share chunks and deltas only under one data key).`,
          { details: { path, keyId: m.encryption.keyId } },
        );
      verifyManifest(m, dataKey, path);
      const bases = new EncryptedDeltaBases(pkg, cipher);
      const cs = m.chunks;
      for (let j = 0; j < cs.length; j++) {
        if (cs[j]!.zero) continue;
        if (j + 1 < cs.length && !cs[j + 1]!.zero) bases.#after.set(cs[j]!.id, cs[j + 1]!.id);
        if (j > 0 && !cs[j - 1]!.zero) bases.#before.set(cs[j]!.id, cs[j - 1]!.id);
      }
      for (const c of m.chunks) {
        if (c.zero || bases.#lengths.has(c.id)) continue;
        const plain = await bases.#read(c.id, c.length);
        try {
          bases.#index.add(c.id, superFeatures(plain));
          bases.#lengths.set(c.id, c.length);
        } finally {
          wipe(plain);
        }
      }
      return bases;
    } catch (err) {
      await pkg.close();
      throw err;
    }
  }

  /** The previous version's manifest. */
  get manifest(): ImageManifest {
    return this.#pkg.manifest;
  }

  /** True when the previous version has this chunk (then the endpoint has it: no delta needed). */
  has(id: string): boolean {
    return this.#lengths.has(id);
  }

  /**
   * An encrypted delta of a new chunk against a chunk of the previous version, checked by
   * rebuilding the chunk; or null when no candidate gives one at most 7/8 of the chunk's stored
   * size (as push's plaintext deltas). Candidates, in order: the most similar chunk by
   * super-features, then the duplicate-adjacency ones (as push's, DARE-style): the chunk that
   * followed the left neighbour's counterpart, and the one that preceded the right neighbour's
   * (`left`/`right`: the neighbour's id, or the base of its delta when it is new itself). They find
   * the bases of the chunks around an edit, partly old and partly new. The caller adds the delta
   * to the package.
   */
  async deltaFor(
    id: string,
    plain: Uint8Array,
    storedSize: number,
    neighbours: { left?: string | undefined; right?: string | undefined } = {},
  ): Promise<{ base: string; sealed: Buffer } | null> {
    const tried = new Set<string>([id]);
    const candidates = [
      () => this.#index.find(superFeatures(plain), id),
      () => (neighbours.left === undefined ? undefined : this.#after.get(neighbours.left)),
      () => (neighbours.right === undefined ? undefined : this.#before.get(neighbours.right)),
    ];
    for (const candidate of candidates) {
      const baseId = candidate();
      if (baseId === undefined || tried.has(baseId) || !this.#lengths.has(baseId)) continue;
      tried.add(baseId);
      const made = await this.#deltaAgainst(id, plain, storedSize, baseId);
      if (made) return made;
    }
    return null;
  }

  async #deltaAgainst(
    id: string,
    plain: Uint8Array,
    storedSize: number,
    baseId: string,
  ): Promise<{ base: string; sealed: Buffer } | null> {
    const base = await this.#read(baseId, this.#lengths.get(baseId)!);
    try {
      const delta = encodeDelta(plain, base);
      if ((delta.length + DELTA_OVERHEAD_BYTES) * 8 > storedSize * 7) return null;
      const back = decodeDelta(delta, base, plain.length);
      const same = back.equals(plain);
      wipe(back);
      if (!same) return null;
      const sealed = this.#cipher.encryptDelta(id, baseId, delta);
      wipe(delta);
      return { base: baseId, sealed };
    } finally {
      wipe(base);
    }
  }

  async #read(id: string, length: number): Promise<Buffer> {
    const sealed = await this.#pkg.readChunk(this.#pkg.manifest.storage.locations[id]!);
    return decodeEncryptedChunk(this.#cipher, id, sealed, length);
  }

  async close(): Promise<void> {
    await this.#pkg.close();
  }
}

/**
 * The packaged delta of an encrypted chunk that `tandem push` copies to the repository: the
 * package's first delta whose base the repository has (`known`), read from the package; or
 * undefined. Its size is checked here, its content only by endpoints (the publisher has no key).
 */
export async function packagedDelta(
  pkg: WorkspacePackage,
  id: string,
  length: number,
  known: (id: string) => boolean,
): Promise<{ id: string; base: string; data: Buffer } | undefined> {
  const ref = pkg.manifest.deltas?.[id]?.find((d) => known(d.base));
  if (!ref) return undefined;
  const data = await pkg.readChunk(ref.location);
  if (data.length <= DELTA_OVERHEAD_BYTES || data.length > length + DELTA_OVERHEAD_BYTES)
    throw new InvalidInputError(
      `Package ${pkg.path} is damaged: the encrypted delta of chunk ${id} has ${data.length} bytes; copy the package again, or make it again with \`tandem pack --encrypt\`.`,
      { details: { path: pkg.path, chunk: id } },
    );
  return { id, base: ref.base, data };
}

/** Where a base chunk is on this endpoint: in an installed version's encrypted image. */
export interface EncryptedBaseLocation {
  readonly image: string;
  readonly offset: number;
  readonly length: number;
}

/** Records, from an installed version's manifest, where the bases wanted by `manifest`'s deltas are. */
export function indexEncryptedBases(
  manifest: ImageManifest,
  needed: NeededChunks,
  installed: ImageManifest,
  image: string,
  out: Map<string, EncryptedBaseLocation>,
): void {
  if (!manifest.deltas) return;
  const wanted = new Set<string>();
  for (const id of needed.keys()) for (const d of manifest.deltas[id] ?? []) wanted.add(d.base);
  for (const c of installed.chunks)
    if (!c.zero && wanted.has(c.id) && !out.has(c.id)) out.set(c.id, { image, offset: c.offset, length: c.length });
}

/** What {@link fetchEncryptedDeltas} needs. */
export interface EncryptedDeltaFetch {
  readonly store: RepoStore;
  readonly manifest: ImageManifest;
  readonly needed: NeededChunks;
  readonly bases: ReadonlyMap<string, EncryptedBaseLocation>;
  readonly cipher: ChunkCipher;
  /** Opens an installed version's encrypted image for reading. */
  readonly openImage: (path: string) => Promise<EncryptedImage>;
  readonly parallel: number;
  readonly maxRangeBytes: number;
  /** Takes a rebuilt, verified chunk and removes it from `needed`; the caller's buffer to wipe. */
  readonly put: (id: string, plain: Buffer) => Promise<void>;
  /** Bytes of deltas received. */
  readonly fetched: (bytes: number) => void;
  readonly signal?: AbortSignal;
}

/**
 * For every needed chunk with a delta whose base an installed version holds: fetches the
 * encrypted deltas (merged range requests, `parallel` in flight), decrypts each, reads its base
 * through the at-rest encryption (in batches, neighbours in one read) and checks its keyed id,
 * rebuilds the chunk and hands it on only when its keyed id matches. A delta that fails any check
 * (tampered, another pair's, another key's, a base that changed) is counted as rejected and its
 * chunk stays needed, to be fetched whole; so is a delta pack the repository lacks. Any other
 * failure to fetch stops the other workers and is thrown once none runs. The loop is the
 * plaintext pull's ({@link fetchDeltaRanges}) with decryption as its rebuild step. Plaintext
 * stays in memory and is wiped.
 */
export async function fetchEncryptedDeltas(ctx: EncryptedDeltaFetch): Promise<{ rebuilt: number; rejected: number }> {
  const { bases, cipher } = ctx;
  if (bases.size === 0) return { rebuilt: 0, rejected: 0 };
  return fetchDeltaRanges(
    ctx,
    (id) => {
      const at = bases.get(id);
      return at && { file: at.image, offset: at.offset, length: at.length };
    },
    (file) => ctx.openImage(file),
    {
      baseMatches: (id, base) => cipher.chunkId(base) === id,
      rebuild: (c, sealed, base) => {
        let delta: Buffer;
        try {
          delta = cipher.decryptDelta(c.id, c.base, sealed);
        } catch {
          return null;
        }
        try {
          const plain = decodeDelta(delta, base, c.length);
          if (plain.length === c.length && cipher.chunkId(plain) === c.id) return plain;
          wipe(plain);
          return null;
        } catch {
          return null;
        } finally {
          wipe(delta);
        }
      },
      discard: wipe,
    },
  );
}
