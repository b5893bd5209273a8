import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { HostError, IntegrityError, TandemError, UnsupportedCapabilityError } from '../errors.js';
import type { DataKey } from '../crypto/data-key.js';
import { missingKeyError, verifyManifest } from './encryption.js';
import type { EncryptedImageStore } from './at-rest.js';
import { installEncrypted } from './pull-encrypted.js';
import { toHostError } from './io-errors.js';
import type { EventBus } from '../events/bus.js';
import { planRanges, type ChunkToFetch } from './fetch-plan.js';
import { exists, InstallDir, type InstalledPointer } from './install-dir.js';
import { distinctChunks, parseManifest, sha256Hex, type ImageManifest } from './manifest.js';
import { ProgressTracker, type SyncProgress } from './progress.js';
import { seedFromFile, seedFromVersion, zeroChunkId, type NeededChunks, type SeedTarget } from './seeds.js';
import { fetchRanges } from './fetch-ranges.js';
import { fetchDeltas, indexBases, wantedBases, type BaseIndex } from './delta-fetch.js';
import { ChunkWorkers, ImageCursor } from './workers.js';
import { SeedSink, Staging, VERSION_META_DIR } from './staging.js';
import { openStore, type OpenStoreOptions } from './store/open.js';
import type { RepoStore } from './store/types.js';
import { RepositoryClient } from './trust/client.js';
import { DirectoryTrustStore } from './trust/trust-store.js';

/** Options for {@link pullWorkspace}. */
export interface PullOptions {
  /** The repository: a URL (`https://`, `s3://`), a directory, or an open store. */
  repo: string | RepoStore;
  /** Options for opening `repo` when it is an address (parallel connections, ranges, ...). */
  storeOptions?: OpenStoreOptions;
  /** The workspace's name in the repository. */
  workspace: string;
  /** The install directory of this workspace on this endpoint. */
  dir: string;
  /** An exact version. */
  version?: string;
  /** A channel (`stable`, `pilot`); default `stable`, else the highest version. */
  channel?: string;
  /** Extra seed files (older images, copies on removable media). */
  seeds?: readonly string[];
  /** The repository's root.json, obtained out of band; needed on the first pull into `dir`. */
  trustedRoot?: Uint8Array;
  /** Requests in flight; default 8. */
  parallel?: number;
  /** Versions kept, the installed one included; default 2. */
  retain?: number;
  /**
   * Disk images a defined VM still uses (a session not yet restarted on the new version). A
   * version holding one is never removed by the retention rule, whatever `retain` says.
   */
  inUse?: Iterable<string>;
  /** Largest merged range request; default 8 MiB. */
  maxRangeBytes?: number;
  /** Merge ranges across gaps up to this size; default 0 (neighbours only). */
  maxGap?: number;
  /**
   * Worker threads verifying and writing chunks; default the CPU count less one, at least 2 (a
   * direct write waits for the disk, and another thread verifies meanwhile) and at most 4.
   */
  workers?: number;
  /**
   * Write whole pages of the new image, and read them back for the final check, with direct I/O
   * (O_DIRECT), past the page cache; default true. Falls back by itself where the file system
   * does not take it.
   */
  directIo?: boolean;
  /**
   * The data key of an encrypted workspace, asked for once its manifest is verified and before
   * any chunk is fetched (typically: find the envelope, {@link openEnvelope} it). Return
   * undefined when there is none: the pull stops with a KeyUnavailableError saying how to get
   * one. The pull disposes of the key (zeroes it) when it ends.
   */
  key?: (need: EncryptedImageNeed) => Promise<DataKey | undefined>;
  /**
   * Where an encrypted workspace's image is kept, encrypted, on this endpoint (the adapter's
   * on-the-fly disk encryption, such as `libvirtEncryptedImages()`). Without it an encrypted
   * workspace is refused: its plaintext never touches a disk.
   */
  encryptedImages?: EncryptedImageStore;
  events?: EventBus;
  onProgress?: (progress: SyncProgress) => void;
  clock?: Clock;
  signal?: AbortSignal;
}

/** What an encrypted workspace's manifest asks of {@link PullOptions.key}. */
export interface EncryptedImageNeed {
  readonly imageId: string;
  readonly version: string;
  /** The data key's public id. */
  readonly keyId: string;
  /**
   * When the version was packed (the manifest's `createdAt`, covered by signed repository
   * metadata): a trusted time for the device's {@link TrustedTime} record.
   */
  readonly createdAt: string;
  /**
   * When the repository's timestamp metadata (the TUF timestamp role) was signed, once verified:
   * the latest trusted time the repository vouches for. Absent for repositories published
   * before Tandem recorded it.
   */
  readonly repositoryTime?: string;
}

/** What {@link pullWorkspace} did. */
export interface PullResult {
  readonly workspace: string;
  readonly version: string;
  readonly previousVersion: string | null;
  /** The version was installed already; nothing was fetched. */
  readonly upToDate: boolean;
  /** Absolute paths of the installed workspace file and image. */
  readonly workspaceFile: string;
  readonly image: string;
  readonly imageSha256: string;
  readonly bytesTotal: number;
  readonly bytesResumed: number;
  readonly bytesFromSeeds: number;
  /** Bytes received from the repository, metadata included. */
  readonly bytesFetched: number;
  readonly requests: number;
  readonly chunksFetched: number;
  /** Chunks rebuilt from a delta against a chunk this endpoint held (their deltas count in `bytesFetched`). */
  readonly chunksFromDeltas: number;
  /**
   * Deltas that did not rebuild their chunk (damaged or tampered, or a base changed on disk):
   * each of those chunks was fetched whole instead.
   */
  readonly deltasRejected: number;
  /**
   * Image bytes that did not cross the network: the image's size less the bytes fetched (seeds,
   * resumed chunks and compression all count). 0 when more was fetched than the image holds.
   */
  readonly bytesSaved: number;
  /** Versions removed by the retention rule. */
  readonly removedVersions: readonly string[];
}

/**
 * Installs a workspace version from a signed repository: resolves it from verified metadata,
 * takes every chunk it can from local seeds (installed versions, seed files, runs of zeros),
 * fetches the rest in parallel merged range requests, verifies every chunk and then the whole
 * image, and switches the `installed.json` pointer atomically. The installed version is never
 * touched before the new one is verified; an interrupted pull resumes without fetching the
 * chunks it had verified.
 *
 * @example
 * ```ts
 * const result = await pullWorkspace({ repo: 'https://cdn.example.com/tandem/', workspace: 'legacy-erp', dir: '/var/lib/tandem/legacy-erp', channel: 'stable', trustedRoot });
 * console.log(result.version, result.bytesFetched, 'bytes fetched');
 * ```
 */
export async function pullWorkspace(options: PullOptions): Promise<PullResult> {
  const clock = options.clock ?? systemClock;
  const store =
    typeof options.repo === 'string' ? openStore(options.repo, { clock, ...options.storeOptions }) : options.repo;
  const install = new InstallDir(resolve(options.dir));
  const context = { workspace: options.workspace };
  const progress = new ProgressTracker(options.workspace, options.version ?? options.channel ?? '?', clock, (p) => {
    options.onProgress?.(p);
    options.events?.publish(
      'sync.progress',
      {
        version: p.version,
        bytesNeeded: p.bytesNeeded,
        bytesFromSeeds: p.bytesFromSeeds,
        bytesFetched: p.bytesFetched,
        bytesPerSecond: p.bytesPerSecond,
        etaMs: p.etaMs,
      },
      context,
    );
  });
  const start = store.stats();
  const traffic = (): { bytes: number; requests: number } => {
    const now = store.stats();
    return { bytes: now.bytesReceived - start.bytesReceived, requests: now.requests - start.requests };
  };
  let unlock: (() => Promise<void>) | undefined;
  let dataKey: DataKey | undefined;
  let chunksFromDeltas = 0;
  let deltasRejected = 0;
  try {
    unlock = await install.lock();
    const client = new RepositoryClient({
      store,
      trust: new DirectoryTrustStore(install.trustDir),
      ...(options.trustedRoot ? { initialRoot: options.trustedRoot } : {}),
      clock,
    });
    await client.refresh();
    const target = client.resolve(options.workspace, {
      ...(options.version ? { version: options.version } : {}),
      ...(options.channel ? { channel: options.channel } : {}),
    });
    const manifestBytes = await client.fetchTarget(target);
    const manifest = parseManifest(manifestBytes, target.path);
    const manifestSha256 = sha256Hex(manifestBytes);
    checkManifestMatchesTarget(manifest, target.file.custom, options.workspace, target.path);
    if (manifest.encryption) {
      const enc = manifest.encryption;
      dataKey = await options.key?.({
        imageId: enc.imageId,
        version: manifest.workspace.version,
        keyId: enc.keyId,
        createdAt: manifest.createdAt,
        ...(client.trusted.timestamp.issued ? { repositoryTime: client.trusted.timestamp.issued } : {}),
      });
      if (!dataKey) throw missingKeyError(manifest, target.path);
      verifyManifest(manifest, dataKey, target.path);
      if (!options.encryptedImages)
        throw new UnsupportedCapabilityError(
          `${options.workspace} ${manifest.workspace.version} is encrypted and its key checks out, but this pull has no way to keep the image encrypted on this disk (encryptedImages: the adapter's, such as libvirtEncryptedImages()), and Tandem never writes an encrypted image's plaintext to disk. Nothing was fetched.`,
          { details: { workspace: options.workspace, version: manifest.workspace.version } },
        );
    }
    progress.version = manifest.workspace.version;
    progress.bytesTotal = manifest.image.size;

    const previous = await install.installed();
    const finish = async (upToDate: boolean, fetched: number): Promise<PullResult> => {
      const removedVersions = await install.applyRetention(options.retain ?? 2, options.inUse);
      await install.cleanStaging();
      progress.phase = 'done';
      progress.tick(true);
      const t = traffic();
      const result: PullResult = {
        workspace: options.workspace,
        version: manifest.workspace.version,
        previousVersion: previous?.version ?? null,
        upToDate,
        workspaceFile: join(install.versionDir(manifest.workspace.version), manifest.workspace.file.name),
        image: join(install.versionDir(manifest.workspace.version), ...manifest.image.path.split('/')),
        imageSha256: manifest.image.sha256,
        bytesTotal: manifest.image.size,
        bytesResumed: progress.bytesResumed,
        bytesFromSeeds: progress.bytesFromSeeds,
        bytesFetched: t.bytes,
        requests: t.requests,
        chunksFetched: fetched,
        chunksFromDeltas,
        deltasRejected,
        bytesSaved: Math.max(0, manifest.image.size - t.bytes),
        removedVersions,
      };
      options.events?.publish(
        'sync.completed',
        {
          version: result.version,
          bytesFetched: result.bytesFetched,
          bytesFromSeeds: result.bytesFromSeeds,
          requests: result.requests,
        },
        context,
      );
      return result;
    };
    const pointer: InstalledPointer = {
      workspace: options.workspace,
      version: manifest.workspace.version,
      manifestSha256,
      imageSha256: manifest.image.sha256,
      workspaceFile: `versions/${manifest.workspace.version}/${manifest.workspace.file.name}`,
      image: `versions/${manifest.workspace.version}/${manifest.image.path}`,
      installedAt: new Date(clock.now()).toISOString(),
    };
    if (previous?.version === manifest.workspace.version && previous.manifestSha256 === manifestSha256)
      return await finish(true, 0);
    if (dataKey && options.encryptedImages) {
      const deltas = { rebuilt: 0, rejected: 0 };
      const fetched = await installEncrypted({
        deltas,
        store,
        install,
        manifest,
        manifestBytes,
        manifestSha256,
        dataKey,
        images: options.encryptedImages,
        progress,
        seeds: options.seeds ?? [],
        parallel: options.parallel ?? 8,
        maxRangeBytes: options.maxRangeBytes ?? 8 * 1024 * 1024,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      [chunksFromDeltas, deltasRejected] = [deltas.rebuilt, deltas.rejected];
      await install.switchTo(pointer);
      return await finish(false, fetched);
    }
    // A retained version (a rollback to the previous one) needs no download, only a check.
    if (await intactVersion(install.versionDir(manifest.workspace.version), manifest, manifestSha256)) {
      progress.phase = 'installing';
      await install.switchTo(pointer);
      return await finish(false, 0);
    }

    const staging = await Staging.open(install, manifest, manifestBytes, manifestSha256);
    const workers = new ChunkWorkers(staging.imageFile, options.workers, options.directIo ?? true);
    let fetched = 0;
    try {
      const needed: NeededChunks = distinctChunks(manifest);
      const cursor = new ImageCursor(manifest.chunks);
      let hashedTo = 0;
      const written = (offsets: Iterable<number>): void => {
        for (const o of offsets) cursor.mark(o);
        const upTo = cursor.advance();
        if (upTo > hashedTo) workers.hashTo((hashedTo = upTo));
      };
      progress.phase = 'seeding';
      // Resume: chunks a stopped pull verified are checked again locally, never fetched again.
      for (const id of staging.journaled) {
        const entry = needed.get(id);
        if (entry && (await staging.verify(id, entry.length, entry.offsets))) {
          needed.delete(id);
          progress.bytesResumed += entry.length * entry.offsets.length;
          written(entry.offsets);
        }
      }
      for (const c of manifest.chunks) {
        if (!c.zero) continue;
        if (zeroChunkId(c.length) !== c.id)
          throw new IntegrityError(
            `${target.path} marks chunk ${c.id} as zeros, but it is not; the manifest is forged.`,
          );
        // The partial image is sparse: zeros are there without being written.
        progress.bytesFromSeeds += c.length;
        cursor.mark(c.offset);
      }
      written([]);
      const sink = new SeedSink(needed, staging, (bytes, offsets) => {
        progress.bytesFromSeeds += bytes;
        written(offsets);
        progress.tick();
      });
      const bases: BaseIndex = new Map();
      const seedTarget: SeedTarget = {
        needed,
        put: (id, data) => sink.put(id, data),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(manifest.deltas ? { bases: { wanted: wantedBases(manifest, needed), found: bases } } : {}),
      };
      const versions = await install.versions();
      for (const version of versions) {
        if (needed.size === 0) break;
        const dir = install.versionDir(version);
        const old = await seedFromVersion(dir, seedTarget);
        // Different chunking: cut the old image again the new way.
        if (old && old.chunking.avgSize !== manifest.chunking.avgSize)
          await seedFromFile(join(dir, ...old.image.path.split('/')), manifest.chunking, seedTarget);
      }
      for (const seed of options.seeds ?? [])
        if (needed.size > 0) await seedFromFile(resolve(seed), manifest.chunking, seedTarget);
      await sink.flush();
      // Near-duplicates: chunks rebuilt from a delta against a chunk this endpoint holds.
      if (manifest.deltas && needed.size > 0) {
        await indexBases(
          versions.map((v) => install.versionDir(v)),
          manifest,
          needed,
          bases,
        );
        const d = await fetchDeltas({
          store,
          manifest,
          needed,
          bases,
          parallel: options.parallel ?? 8,
          maxRangeBytes: options.maxRangeBytes ?? 8 * 1024 * 1024,
          put: (id, data) => sink.put(id, data),
          ...(options.signal ? { signal: options.signal } : {}),
        }).catch(async (err: unknown) => {
          // The chunks rebuilt before a failure (a dropped connection) are written and journaled
          // all the same, so the next pull resumes without fetching their deltas again.
          await sink.flush().catch(() => undefined);
          throw err;
        });
        await sink.flush();
        chunksFromDeltas = d.rebuilt;
        deltasRejected = d.rejected;
      }

      const items: ChunkToFetch[] = [...needed].map(([id, e]) => {
        const [pack, offset, size] = manifest.storage.locations[id]!;
        return { id, pack: manifest.storage.packs[pack]!, offset, size, length: e.length };
      });
      const ranges = store.ranges
        ? planRanges(items, { maxBytes: options.maxRangeBytes ?? 8 * 1024 * 1024, maxGap: options.maxGap ?? 0 })
        : planRanges(items, { maxBytes: Number.MAX_SAFE_INTEGER, maxGap: Number.MAX_SAFE_INTEGER });
      progress.bytesNeeded = ranges.reduce((n, r) => n + r.length, 0);
      progress.startFetching();
      progress.tick(true);
      const fetchedBefore = traffic().bytes;
      fetched = await fetchRanges(ranges, {
        store,
        needed,
        staging,
        workers,
        parallel: options.parallel ?? 8,
        ...(options.signal ? { signal: options.signal } : {}),
        written: (offsets) => {
          written(offsets);
          progress.bytesFetched = traffic().bytes - fetchedBefore;
          progress.requests = traffic().requests;
          progress.tick();
        },
      });
      progress.bytesFetched = traffic().bytes - fetchedBefore;

      progress.phase = 'verifying';
      progress.tick(true);
      workers.hashTo(manifest.image.size);
      const image = await workers.digest();
      if (image.sha256 !== manifest.image.sha256 || image.bytes !== manifest.image.size) {
        await staging.discard();
        const err = new IntegrityError(
          `The assembled image of ${options.workspace} ${manifest.workspace.version} does not match its SHA-256; nothing was installed, and the next pull starts afresh.`,
          {
            details: { expected: manifest.image.sha256, actual: image.sha256 },
          },
        );
        throw err;
      }
      progress.phase = 'installing';
      progress.tick(true);
      await workers.close();
      await staging.complete(manifest, install.versionDir(manifest.workspace.version));
    } catch (err) {
      await workers.close();
      await staging.close();
      throw err;
    }
    await install.switchTo(pointer);
    return await finish(false, fetched);
  } catch (err) {
    const mapped = toHostError(err, `pulling ${options.workspace}`);
    const error = TandemError.is(mapped)
      ? mapped
      : new HostError(`Pull failed: ${(err as Error).message}`, { cause: err });
    if (error instanceof IntegrityError) reportIntegrity(options, error);
    options.events?.publish(
      'sync.failed',
      { version: progress.version, code: error.code, message: error.message },
      context,
    );
    throw error;
  } finally {
    dataKey?.dispose();
    await unlock?.();
    if (typeof options.repo === 'string') store.close?.();
  }
}

function checkManifestMatchesTarget(
  m: ImageManifest,
  custom: { workspace: string; version: string; imageSha256: string; imageSize: number },
  workspace: string,
  path: string,
): void {
  if (
    m.workspace.name !== workspace ||
    m.workspace.version !== custom.version ||
    m.image.sha256 !== custom.imageSha256 ||
    m.image.size !== custom.imageSize
  ) {
    throw new IntegrityError(
      `${path} describes ${m.workspace.name} ${m.workspace.version}, not what targets metadata signed for it; the repository is inconsistent or forged.`,
    );
  }
  if (m.image.path.startsWith(`${VERSION_META_DIR}/`) || m.workspace.file.name === VERSION_META_DIR) {
    throw new IntegrityError(`${path} puts files in ${VERSION_META_DIR}/, which is reserved.`);
  }
}

async function intactVersion(dir: string, manifest: ImageManifest, manifestSha256: string): Promise<boolean> {
  const sha = await readFile(join(dir, VERSION_META_DIR, 'manifest.sha256'), 'utf8').catch(() => null);
  if (sha !== manifestSha256) return false;
  const file = join(dir, ...manifest.image.path.split('/'));
  if (!(await exists(file))) return false;
  const digestOf = await fileSha256(file).catch(() => null);
  return digestOf !== null && digestOf.size === manifest.image.size && digestOf.sha256 === manifest.image.sha256;
}

function reportIntegrity(options: PullOptions, err: IntegrityError): void {
  const d = err.details;
  const text = (k: string): string | undefined => (typeof d[k] === 'string' ? d[k] : undefined);
  const subject = text('chunk') ? `chunk ${text('chunk')}` : (text('source') ?? 'image');
  const expected = text('expected');
  const actual = text('actual');
  options.events?.publish(
    'integrity.failure',
    { subject, message: err.message, ...(expected ? { expected } : {}), ...(actual ? { actual } : {}) },
    { workspace: options.workspace },
  );
}

/** SHA-256 and size of a file, read as a stream. */
export async function fileSha256(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}
