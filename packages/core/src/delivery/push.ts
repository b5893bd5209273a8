import { createHash, hash } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import { ConflictError, InvalidInputError } from '../errors.js';
import { decompressChunk } from './compress.js';
import { CHUNK_TAG_BYTES } from '../crypto/chunk-cipher.js';
import { parseManifest, serializeManifest, sha256Hex, type ChunkLocation, type ImageManifest } from './manifest.js';
import { openPackage } from './package-file.js';
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
    const known = new Map<string, { pack: string; offset: number; size: number }>();
    for (const [path, file] of Object.entries(trusted.targets.targets)) {
      const other = await fetchVerified(store, path, file);
      for (const [id, [p, offset, size]] of Object.entries(other.storage.locations)) {
        if (!known.has(id)) known.set(id, { pack: other.storage.packs[p]!, offset, size });
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
    const progress = { chunks: ids.length, chunksUploaded: 0, chunksSkipped: 0, bytesUploaded: 0, bytesSkipped: 0 };
    const newPacks: string[] = [];
    let pending: { id: string; data: Buffer }[] = [];
    const pendingIds = new Set<string>();
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const body = Buffer.concat(pending.map((p) => p.data));
      const digest = createHash('sha256').update(body).digest('hex');
      const path = `packs/${digest.slice(0, 2)}/${digest}.pack`;
      if (!(await store.has(path))) await store.put!(path, body);
      newPacks.push(path);
      const i = indexOf(path);
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
    // Chunks in image order, so a pull reads neighbouring chunks with one range request.
    for (const chunk of m.chunks) {
      if (chunk.zero || locations[chunk.id] || pendingIds.has(chunk.id)) continue;
      const loc = m.storage.locations[chunk.id]!;
      const have = known.get(chunk.id);
      if (have) {
        locations[chunk.id] = [indexOf(have.pack), have.offset, have.size];
        progress.chunksSkipped++;
        progress.bytesSkipped += have.size;
        continue;
      }
      const data = await pkg.readChunk(loc);
      // An encrypted chunk can only be checked with its key, which a publisher need not hold:
      // its size is checked here, its content by every endpoint that decrypts it.
      if (m.encryption) checkEncryptedChunkSize(pkg.path, chunk.id, chunk.length, data);
      else checkPackagedChunk(pkg.path, chunk.id, chunk.length, data);
      pending.push({ id: chunk.id, data });
      pendingIds.add(chunk.id);
      pendingBytes += data.length;
      if (pendingBytes >= packSize) await flush();
    }
    await flush();

    const manifest: ImageManifest = { ...m, storage: { packs, locations } };
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

/** Checks that a chunk read from a package decompresses to the bytes its id names. */
function checkPackagedChunk(path: string, id: string, length: number, data: Buffer): void {
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
