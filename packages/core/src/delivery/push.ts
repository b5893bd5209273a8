import { createHash, hash } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import { ConflictError, InvalidInputError } from '../errors.js';
import { decompressChunk } from './compress.js';
import { CHUNK_TAG_BYTES } from '../crypto/chunk-cipher.js';
import {
  parseManifest,
  serializeManifest,
  sha256Hex,
  type ChunkLocation,
  type DeltaRef,
  type ImageManifest,
} from './manifest.js';
import {
  decodeDelta,
  encodeDelta,
  parseSketch,
  ResemblanceIndex,
  serializeSketch,
  superFeatures,
  zstdDictionarySupported,
} from './delta.js';
import { compareVersions } from './paths.js';
import { openPackage } from './package-file.js';
import { packagedDelta } from './delta-encrypted.js';
import type { RepoStore } from './store/types.js';
import type { KeySet } from './trust/keys.js';
import { consistentTargetPath, type TargetFile } from './trust/metadata.js';
import { readRepository, updateTargets, type ExpiryPolicy } from './trust/publisher.js';

/** Options for {@link pushPackage}. */
export interface PushOptions {
  /** The package made by `packWorkspace`: a package file or a package directory. */
  package: string;
  /** The repository. */
  store: RepoStore;
  /** Targets, snapshot and timestamp keys. */
  keys: KeySet;
  /** Channels to point at this version (`stable`, `pilot`, ...). */
  channels?: readonly string[];
  /** Largest pack object, in bytes; default 64 MiB. */
  packSize?: number;
  clock?: Clock;
  expiry?: Partial<ExpiryPolicy>;
  onProgress?: (progress: PushProgress) => void;
  /**
   * Near-duplicate chunks as deltas (see docs/delivery.md): for each new chunk, a similar chunk
   * of the workspace's earlier versions is found by resemblance detection and a delta against it
   * is stored too when it is at most 7/8 of the compressed chunk. Chunks next to an unchanged
   * chunk also try the chunk that was next to it in those versions (the chunks around an edit).
   * `false` turns it off; default on, against the chunks of the last 2 published versions (and of
   * every version a channel points at). Not on a Node.js whose zstd has no dictionaries. An
   * encrypted package's deltas are made by `packWorkspace` (`encryption.deltaFrom`; the publisher
   * holds no key): push copies those whose base the repository has, unless this is `false`.
   */
  deltas?: false | { versions?: number };
}

/** Progress and result counters of a push. */
export interface PushProgress {
  /** Distinct chunks in the version. */
  readonly chunks: number;
  readonly chunksUploaded: number;
  readonly chunksSkipped: number;
  /** Compressed bytes uploaded. */
  readonly bytesUploaded: number;
  /** Compressed bytes not uploaded because the repository had them. */
  readonly bytesSkipped: number;
  /** Delta objects stored (see {@link PushOptions.deltas}), and their bytes. */
  readonly deltas: number;
  readonly deltaBytes: number;
}

/** What {@link pushPackage} did. */
export interface PushResult extends PushProgress {
  readonly workspace: string;
  readonly version: string;
  readonly manifestPath: string;
  /** New pack objects written. */
  readonly packs: readonly string[];
  /** The version was already there with the same content; only channels changed. */
  readonly alreadyPublished: boolean;
}

/** Where a workspace version's manifest lives in a repository. */
export function manifestPathFor(workspace: string, version: string): string {
  return `manifests/${workspace}/${version}.manifest`;
}

/**
 * Publishes a package (a file or a directory, see {@link openPackage}) into a repository: uploads
 * only the chunks the repository does not have yet (in pack objects of up to `packSize`), the
 * version's manifest, and newly signed targets, snapshot and timestamp metadata. One publisher at
 * a time per repository. Every chunk uploaded is decompressed and checked against its id first,
 * so a damaged package (a bad copy on removable media) is refused with an InvalidInputError
 * instead of publishing a chunk that every later version would reuse.
 *
 * @example
 * ```ts
 * const keys = await loadKeys('keys');
 * const result = await pushPackage({ package: 'erp-3.2.0.tandem', store: openStore('repo'), keys, channels: ['stable'] });
 * console.log(result.bytesUploaded, 'bytes uploaded,', result.bytesSkipped, 'already there');
 * ```
 */
export async function pushPackage(options: PushOptions): Promise<PushResult> {
  const clock = options.clock ?? systemClock;
  const packSize = options.packSize ?? 64 * 1024 * 1024;
  if (!Number.isSafeInteger(packSize) || packSize < 1024 * 1024)
    throw new InvalidInputError(`packSize ${packSize} is too small; use at least 1 MiB.`);
  const deltaVersions = options.deltas === false ? 0 : (options.deltas?.versions ?? 2);
  if (!Number.isSafeInteger(deltaVersions) || deltaVersions < 0)
    throw new InvalidInputError(`deltas.versions ${deltaVersions}: expected a whole number of versions, 0 or more.`);
  const { store } = options;
  const pkg = await openPackage(options.package);
  try {
    const m = pkg.manifest;
    const trusted = await readRepository(store, clock);
    const manifestPath = manifestPathFor(m.workspace.name, m.workspace.version);
    const existing = trusted.targets.targets[manifestPath];
    const ids = Object.keys(m.storage.locations);
    if (existing) {
      const old = await fetchVerified(store, manifestPath, existing);
      if (old.image.sha256 !== m.image.sha256 || old.workspace.file.sha256 !== m.workspace.file.sha256) {
        throw new ConflictError(
          `${m.workspace.name} ${m.workspace.version} is already published with different content; versions are immutable, so raise metadata.version in the workspace file and pack again.`,
        );
      }
      if (options.channels?.length)
        await updateTargets(options, (targets) => withChannels(targets, manifestPath, options.channels ?? []));
      const zero = {
        chunks: ids.length,
        chunksUploaded: 0,
        chunksSkipped: ids.length,
        bytesUploaded: 0,
        bytesSkipped: 0,
        deltas: 0,
        deltaBytes: 0,
      };
      return {
        ...zero,
        workspace: m.workspace.name,
        version: m.workspace.version,
        manifestPath,
        packs: [],
        alreadyPublished: true,
      };
    }

    // Every chunk any published version already has, and where.
    const known = new Map<string, KnownChunk>();
    const published: { path: string; file: TargetFile; manifest: ImageManifest }[] = [];
    for (const [path, file] of Object.entries(trusted.targets.targets)) {
      const other = await fetchVerified(store, path, file);
      published.push({ path, file, manifest: other });
      const lengths = new Map(other.chunks.map((c) => [c.id, c.length]));
      for (const [id, [p, offset, size]] of Object.entries(other.storage.locations)) {
        if (!known.has(id)) known.set(id, { pack: other.storage.packs[p]!, offset, size, length: lengths.get(id)! });
      }
    }
    const useDeltas = deltaVersions > 0 && !m.encryption && zstdDictionarySupported();
    // Super-features of the candidate bases (and of every chunk this version shares with them).
    const index = new ResemblanceIndex();
    const neighbours: Neighbours = { after: new Map(), before: new Map() };
    if (!m.encryption) {
      const mine = published.filter((p) => p.file.custom.workspace === m.workspace.name);
      mine.sort((a, b) => compareVersions(a.file.custom.version, b.file.custom.version));
      const recent = mine.slice(Math.max(0, mine.length - Math.max(1, deltaVersions)));
      const chosen = new Set([...recent, ...mine.filter((p) => p.file.custom.channels.length > 0)]);
      for (const p of mine.filter((x) => chosen.has(x))) {
        await loadSketch(store, p.path, p.manifest, known, index);
        if (useDeltas) addNeighbours(p.manifest, neighbours);
      }
    }

    const packs: string[] = [];
    const packIndex = new Map<string, number>();
    const indexOf = (pack: string): number => {
      let i = packIndex.get(pack);
      if (i === undefined) {
        i = packs.length;
        packs.push(pack);
        packIndex.set(pack, i);
      }
      return i;
    };
    const locations: Record<string, ChunkLocation> = {};
    const progress = {
      chunks: ids.length,
      chunksUploaded: 0,
      chunksSkipped: 0,
      bytesUploaded: 0,
      bytesSkipped: 0,
      deltas: 0,
      deltaBytes: 0,
    };
    const deltas: Record<string, DeltaRef[]> = {};
    let pendingDeltas: { id: string; base: string; data: Buffer }[] = [];
    let pendingDeltaBytes = 0;
    const sketch = new Map<string, Uint32Array>();
    const newPacks: string[] = [];
    let pending: { id: string; data: Buffer }[] = [];
    const pendingIds = new Set<string>();
    let pendingBytes = 0;
    const writePack = async (parts: readonly { data: Buffer }[]): Promise<number> => {
      const body = Buffer.concat(parts.map((p) => p.data));
      const digest = createHash('sha256').update(body).digest('hex');
      const path = `packs/${digest.slice(0, 2)}/${digest}.pack`;
      if (!(await store.has(path))) await store.put!(path, body);
      newPacks.push(path);
      return indexOf(path);
    };
    // Deltas go to packs of their own: whole chunks stay back to back for cold pulls, and the
    // deltas of an update are neighbours for the endpoints that fetch only them.
    const flushDeltas = async (): Promise<void> => {
      if (pendingDeltas.length === 0) return;
      const i = await writePack(pendingDeltas);
      let at = 0;
      for (const d of pendingDeltas) {
        deltas[d.id] = [{ base: d.base, location: [i, at, d.data.length] }];
        at += d.data.length;
      }
      progress.deltas += pendingDeltas.length;
      progress.deltaBytes += at;
      pendingDeltas = [];
      pendingDeltaBytes = 0;
    };
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const body = { length: pending.reduce((n, p) => n + p.data.length, 0) };
      const i = await writePack(pending);
      let at = 0;
      for (const p of pending) {
        locations[p.id] = [i, at, p.data.length];
        at += p.data.length;
      }
      progress.chunksUploaded += pending.length;
      progress.bytesUploaded += body.length;
      pending = [];
      pendingIds.clear();
      pendingBytes = 0;
      options.onProgress?.({ ...progress });
    };
    if (!store.put) throw new InvalidInputError(`${store.location} is read-only; push to a directory or an S3 bucket.`);
    // The base each delta was made against, by chunk id (the next chunk's neighbour candidate).
    const baseOf = new Map<string, string>();
    // Chunks in image order, so a pull reads neighbouring chunks with one range request.
    for (let i = 0; i < m.chunks.length; i++) {
      const chunk = m.chunks[i]!;
      if (chunk.zero || locations[chunk.id] || pendingIds.has(chunk.id)) continue;
      const loc = m.storage.locations[chunk.id]!;
      const have = known.get(chunk.id);
      if (have) {
        if (!m.encryption && !index.featuresOf(chunk.id))
          sketch.set(chunk.id, await featuresFromRepo(store, chunk.id, have));
        locations[chunk.id] = [indexOf(have.pack), have.offset, have.size];
        progress.chunksSkipped++;
        progress.bytesSkipped += have.size;
        continue;
      }
      const data = await pkg.readChunk(loc);
      // An encrypted chunk can only be checked with its key, which a publisher need not hold:
      // its size is checked here, its content by every endpoint that decrypts it.
      if (m.encryption) {
        checkEncryptedChunkSize(pkg.path, chunk.id, chunk.length, data);
        // Encrypted deltas were made at pack time (the publisher has no key); one is kept only
        // when the repository has its base, which endpoints of earlier versions then hold.
        const delta =
          deltaVersions > 0 ? await packagedDelta(pkg, chunk.id, chunk.length, (b) => known.has(b)) : undefined;
        if (delta) {
          pendingDeltas.push(delta);
          pendingDeltaBytes += delta.data.length;
          if (pendingDeltaBytes >= packSize) await flushDeltas();
        }
      } else {
        const plain = checkPackagedChunk(pkg.path, chunk.id, chunk.length, data);
        const sfs = superFeatures(plain);
        sketch.set(chunk.id, sfs);
        if (useDeltas) {
          const delta = await deltaFor(store, known, plain, chunk.id, data.length, [
            () => index.find(sfs, chunk.id),
            () => neighbourCandidate(m.chunks[i - 1], neighbours.after, baseOf),
            () => neighbourCandidate(m.chunks[i + 1], neighbours.before, baseOf),
          ]);
          if (delta) {
            baseOf.set(chunk.id, delta.base);
            pendingDeltas.push({ id: chunk.id, base: delta.base, data: delta.data });
            pendingDeltaBytes += delta.data.length;
            if (pendingDeltaBytes >= packSize) await flushDeltas();
          }
        }
      }
      pending.push({ id: chunk.id, data });
      pendingIds.add(chunk.id);
      pendingBytes += data.length;
      if (pendingBytes >= packSize) await flush();
    }
    await flush();
    await flushDeltas();

    // An encrypted package's own deltas point into the package: only those copied above are listed.
    const { deltas: _fromPackage, ...packaged } = m;
    const manifest: ImageManifest = {
      ...packaged,
      storage: { packs, locations },
      ...(Object.keys(deltas).length > 0 ? { deltas } : {}),
    };
    const bytes = serializeManifest(manifest);
    // TUF consistent snapshots: the hash-prefixed copy is what TUF clients (and Tandem) read; the
    // plain path stays for Tandem endpoints older than that copy.
    await store.put(consistentTargetPath(manifestPath, sha256Hex(bytes)), bytes);
    await store.put(manifestPath, bytes);
    const target: TargetFile = {
      length: bytes.length,
      hashes: { sha256: sha256Hex(bytes) },
      custom: {
        workspace: m.workspace.name,
        version: m.workspace.version,
        channels: [],
        imageSha256: m.image.sha256,
        imageSize: m.image.size,
      },
    };
    if (!m.encryption) {
      const order = [...new Set(m.chunks.filter((c) => !c.zero).map((c) => c.id))];
      await store.put(
        sketchPathFor(manifestPath),
        serializeSketch(order, (id) => sketch.get(id) ?? index.featuresOf(id)),
      );
    }
    await updateTargets(options, (targets) =>
      withChannels({ ...targets, [manifestPath]: target }, manifestPath, options.channels ?? []),
    );
    return {
      ...progress,
      workspace: m.workspace.name,
      version: m.workspace.version,
      manifestPath,
      packs: newPacks,
      alreadyPublished: false,
    };
  } finally {
    await pkg.close();
  }
}

/** An encrypted chunk is its compressed or stored bytes (at most its length) and a 16-byte tag. */
function checkEncryptedChunkSize(path: string, id: string, length: number, data: Buffer): void {
  if (data.length <= CHUNK_TAG_BYTES || data.length > length + CHUNK_TAG_BYTES) {
    throw new InvalidInputError(
      `Package ${path} is damaged: encrypted chunk ${id} has ${data.length} bytes for ${length} of image; copy the package again, or make it again with \`tandem pack --encrypt\`.`,
      { details: { path, chunk: id } },
    );
  }
}

/** Checks that a chunk read from a package decompresses to the bytes its id names; returns them. */
function checkPackagedChunk(path: string, id: string, length: number, data: Buffer): Buffer {
  let plain: Buffer | undefined;
  let cause: unknown;
  try {
    plain = decompressChunk(data, length, id);
  } catch (err) {
    cause = err;
  }
  if (plain?.length !== length || hash('sha256', plain, 'hex') !== id) {
    throw new InvalidInputError(
      `Package ${path} is damaged: chunk ${id} does not ${plain ? 'match its id' : 'decompress'}; copy the package again, or make it again with \`tandem pack\`.`,
      { ...(cause ? { cause } : {}), details: { path, chunk: id } },
    );
  }
  return plain;
}

/** A chunk some published version has: where its stored bytes are, and its length. */
interface KnownChunk {
  readonly pack: string;
  readonly offset: number;
  readonly size: number;
  readonly length: number;
}

/** Where push keeps a version's super-features (publisher-side only; see serializeSketch). */
function sketchPathFor(manifestPath: string): string {
  return manifestPath.replace(/\.manifest$/, '.sketch');
}

/** Reads a published chunk from the repository and checks it against its id. */
async function readKnown(store: RepoStore, id: string, c: KnownChunk): Promise<Buffer> {
  const data = await store.getRange(c.pack, c.offset, c.size);
  const plain = decompressChunk(data, c.length, id);
  if (plain.length !== c.length || hash('sha256', plain, 'hex') !== id)
    throw new ConflictError(
      `Chunk ${id} in ${c.pack} of ${store.location} does not match its id; repair the repository before pushing.`,
    );
  return plain;
}

async function featuresFromRepo(store: RepoStore, id: string, c: KnownChunk): Promise<Uint32Array> {
  return superFeatures(await readKnown(store, id, c));
}

/**
 * Adds a published version's chunks to the resemblance index: from its sketch, or (a version
 * pushed before sketches existed) from its chunks, read from the repository once.
 */
async function loadSketch(
  store: RepoStore,
  manifestPath: string,
  manifest: ImageManifest,
  known: ReadonlyMap<string, KnownChunk>,
  index: ResemblanceIndex,
): Promise<void> {
  const data = await store.get(sketchPathFor(manifestPath));
  const parsed = data ? parseSketch(data) : null;
  for (const c of manifest.chunks) {
    if (c.zero || index.featuresOf(c.id)) continue;
    const sfs = parsed?.get(c.id) ?? (await featuresFromRepo(store, c.id, known.get(c.id)!));
    index.add(c.id, sfs);
  }
}

/**
 * Where each chunk of the candidate versions sits: the chunk after it and the chunk before it
 * (zero chunks left out: they are everywhere and never bases).
 */
interface Neighbours {
  readonly after: Map<string, string>;
  readonly before: Map<string, string>;
}

/** Records a candidate version's neighbours (a later version's win). */
function addNeighbours(manifest: ImageManifest, into: Neighbours): void {
  const cs = manifest.chunks;
  for (let j = 0; j < cs.length; j++) {
    if (cs[j]!.zero) continue;
    if (j + 1 < cs.length && !cs[j + 1]!.zero) into.after.set(cs[j]!.id, cs[j + 1]!.id);
    if (j > 0 && !cs[j - 1]!.zero) into.before.set(cs[j]!.id, cs[j - 1]!.id);
  }
}

/**
 * Duplicate-adjacency candidates (as in DARE, Xia et al., "DARE: A Deduplication-Aware
 * Resemblance Detection and Elimination Scheme", MSST 2014): a new chunk next to a chunk an older
 * version has (or next to a new chunk whose delta is against one) is likely similar to the chunk
 * that was next to it there. This finds the base of the chunks around an edit, which are partly
 * old and partly new: too little alike for super-features, but half old on average.
 */
function neighbourCandidate(
  beside: { readonly id: string; readonly zero?: boolean } | undefined,
  map: ReadonlyMap<string, string>,
  baseOf: ReadonlyMap<string, string>,
): string | undefined {
  if (!beside || beside.zero) return undefined;
  return map.get(baseOf.get(beside.id) ?? beside.id);
}

/**
 * The first delta that is kept, trying the candidates in order (each one only when the ones
 * before it gave none): resemblance first, then neighbours. Null when none is kept.
 */
async function deltaFor(
  store: RepoStore,
  known: ReadonlyMap<string, KnownChunk>,
  plain: Buffer,
  id: string,
  storedSize: number,
  candidates: readonly (() => string | undefined)[],
): Promise<{ base: string; data: Buffer } | null> {
  const tried = new Set<string>([id]);
  for (const candidate of candidates) {
    const baseId = candidate();
    const base = baseId === undefined || tried.has(baseId) ? undefined : known.get(baseId);
    if (!base) continue;
    tried.add(baseId!);
    const data = await makeDelta(store, plain, baseId!, base, storedSize);
    if (data) return { base: baseId!, data };
  }
  return null;
}

/**
 * A delta of `plain` against a published base chunk, checked by rebuilding the chunk from it; or
 * null when it is not clearly smaller than the chunk's stored size (it must save an eighth).
 */
async function makeDelta(
  store: RepoStore,
  plain: Buffer,
  baseId: string,
  base: KnownChunk,
  storedSize: number,
): Promise<Buffer | null> {
  const baseBytes = await readKnown(store, baseId, base);
  const delta = encodeDelta(plain, baseBytes);
  if (delta.length * 8 > storedSize * 7) return null;
  if (!decodeDelta(delta, baseBytes, plain.length).equals(plain)) return null;
  return delta;
}

function withChannels(
  targets: Readonly<Record<string, TargetFile>>,
  path: string,
  channels: readonly string[],
): Record<string, TargetFile> {
  const workspace = targets[path]!.custom.workspace;
  const out: Record<string, TargetFile> = {};
  for (const [p, file] of Object.entries(targets)) {
    if (file.custom.workspace !== workspace) out[p] = file;
    else {
      const kept = file.custom.channels.filter((c) => !channels.includes(c));
      out[p] = {
        ...file,
        custom: { ...file.custom, channels: p === path ? [...new Set([...kept, ...channels])] : kept },
      };
    }
  }
  return out;
}

async function fetchVerified(store: RepoStore, path: string, file: TargetFile): Promise<ImageManifest> {
  const data =
    (await store.get(consistentTargetPath(path, file.hashes.sha256), { maxBytes: file.length })) ??
    (await store.get(path, { maxBytes: file.length }));
  if (!data || sha256Hex(data) !== file.hashes.sha256) {
    throw new ConflictError(
      `${path} in ${store.location} does not match its signed digest; repair the repository before pushing.`,
    );
  }
  return parseManifest(data, path);
}
