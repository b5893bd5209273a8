import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ChunkCipher } from '../crypto/chunk-cipher.js';
import { deriveKey, type DataKey } from '../crypto/data-key.js';
import { wipe } from '../crypto/secret.js';
import { CancelledError, IntegrityError } from '../errors.js';
import type { EncryptedImage, EncryptedImageStore } from './at-rest.js';
import { fetchEncryptedDeltas, indexEncryptedBases, type EncryptedBaseLocation } from './delta-encrypted.js';
import { chunkFile, chunkStream, type FileChunk } from './fastcdc.js';
import { planRanges, type RangeRequest } from './fetch-plan.js';
import { syncDir, type InstallDir } from './install-dir.js';
import { distinctChunks, parseManifest, type ImageManifest } from './manifest.js';
import type { ProgressTracker } from './progress.js';
import { VERSION_META_DIR } from './staging.js';
import type { RepoStore } from './store/types.js';
import { EncryptedChunkDecoders } from './workers.js';

/** What an installed encrypted version records about itself, in `.tandem/encryption.json`. */
interface InstalledEncryption {
  readonly imageId: string;
  readonly keyId: string;
  readonly format: string;
}

const BLOCK = 4 * 1024 * 1024;
/** Writes to, and reads from, the encrypted image in flight at once. */
const IN_FLIGHT = 4;

/**
 * Gathers writes that follow each other in the image into one write of up to {@link BLOCK}
 * (a cold pull's chunks arrive in image order), several in flight: one request to the
 * encrypted image per 4 MiB instead of one per chunk, and no wait for each. It copies what it is given, so callers may wipe their buffers at
 * once, and wipes its own after each write.
 */
class WriteCombiner {
  readonly #image: EncryptedImage;
  /** Writes in flight, each with its own buffer; at most {@link IN_FLIGHT}. */
  readonly #inflight = new Set<Promise<void>>();
  /** Wiped buffers of finished writes, reused: fresh memory costs a page fault per 4 KiB. */
  readonly #spare: Buffer[] = [];
  #buffer: Buffer = Buffer.alloc(BLOCK);
  #start = 0;
  #length = 0;
  #failed: Error | undefined;

  constructor(image: EncryptedImage) {
    this.#image = image;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.#length > 0 && offset !== this.#start + this.#length) await this.#send();
    if (data.length > BLOCK) {
      await this.flush();
      await this.#image.write(offset, data);
      return;
    }
    if (this.#length + data.length > BLOCK) await this.#send();
    if (this.#length === 0) this.#start = offset;
    this.#buffer.set(data, this.#length);
    this.#length += data.length;
  }

  /** Sends what is gathered and waits for every write in flight. */
  async flush(): Promise<void> {
    await this.#send();
    await Promise.all([...this.#inflight]);
    if (this.#failed) throw this.#failed;
  }

  /** Sends the gathered bytes without waiting for them, once fewer than IN_FLIGHT are in flight. */
  async #send(): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#length === 0) return;
    while (this.#inflight.size >= IN_FLIGHT) await Promise.race([...this.#inflight]);
    const whole = this.#buffer;
    const buffer = whole.subarray(0, this.#length);
    const write: Promise<void> = this.#image
      .write(this.#start, buffer)
      .catch((err: unknown) => {
        this.#failed ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        wipe(buffer);
        this.#inflight.delete(write);
        this.#spare.push(whole);
      });
    this.#inflight.add(write);
    this.#buffer = this.#spare.pop() ?? Buffer.alloc(BLOCK);
    this.#length = 0;
  }
}

/** The key an encrypted workspace's image is kept under on this endpoint: derived from its data key. */
export function diskKeyFor(dataKey: DataKey): Buffer {
  return deriveKey(dataKey, 'disk');
}

/** What {@link installEncrypted} needs from the pull. */
export interface EncryptedInstall {
  readonly store: RepoStore;
  readonly install: InstallDir;
  readonly manifest: ImageManifest;
  readonly manifestBytes: Uint8Array;
  readonly manifestSha256: string;
  readonly dataKey: DataKey;
  readonly images: EncryptedImageStore;
  readonly progress: ProgressTracker;
  readonly seeds: readonly string[];
  readonly parallel: number;
  readonly maxRangeBytes: number;
  readonly signal?: AbortSignal;
  /** Filled in with the chunks rebuilt from deltas and the deltas rejected (fetched whole instead). */
  readonly deltas?: { rebuilt: number; rejected: number };
}

/**
 * Installs a version of an encrypted workspace: the image is made encrypted at rest through
 * `images` (the hypervisor's own format), filled from seeds (installed versions, read through
 * the same encryption; plaintext seed files the user points at) and from fetched chunks, each
 * decrypted and checked in memory and written straight into the encrypted image; then the whole
 * image is read back and checked against the manifest's keyed digest. Plaintext exists only in
 * memory. The version directory appears complete or not at all; the caller switches to it.
 * Returns the number of chunks fetched. A stopped pull (cancelled, a fault, the process killed)
 * leaves its encrypted staging image behind; the next pull of the same manifest reopens it and
 * reads back every chunk, keeping those whose keyed id checks out (nothing is trusted from a
 * journal, so writes a kill lost are simply fetched again), and fetches only the rest.
 */
export async function installEncrypted(job: EncryptedInstall): Promise<number> {
  const { manifest, install, progress } = job;
  const version = manifest.workspace.version;
  const enc = manifest.encryption!;
  const staging = install.stagingDir(version);
  const imageFile = join(staging, ...manifest.image.path.split('/'));
  const marker = join(staging, RESUME_FILE);
  const diskKey = diskKeyFor(job.dataKey);
  const cipher = new ChunkCipher(job.dataKey);
  let image: EncryptedImage | undefined;
  let fetched = 0;
  let startAfresh = false;
  let target: WriteCombiner | undefined;
  let decoders: EncryptedChunkDecoders | undefined;
  try {
    image = await reopenStaged(job, marker, imageFile, diskKey);
    const resumed = image !== undefined;
    if (!image) {
      await rm(staging, { recursive: true, force: true });
      await mkdir(dirname(imageFile), { recursive: true });
      // Written before the image: a pull killed at any later point can be resumed.
      await writeFile(marker, JSON.stringify({ manifestSha256: job.manifestSha256, keyId: enc.keyId }) + '\n');
      image = await job.images.create(imageFile, manifest.image.size, diskKey);
    }
    const combiner = new WriteCombiner(image);
    target = combiner;
    const needed = distinctChunks(manifest);
    for (const c of manifest.chunks) {
      if (!c.zero) continue;
      // Sparse images need nothing written; a store that writes its ciphertext itself marks the run.
      if (image.writeZeroes) await image.writeZeroes(c.offset, c.length);
      progress.bytesFromSeeds += c.length;
    }
    if (resumed) {
      progress.phase = 'seeding';
      await keepVerified(image, cipher, needed, (bytes) => {
        progress.bytesResumed += bytes;
        progress.tick();
      });
    }
    const put = async (id: string, data: Uint8Array): Promise<void> => {
      const entry = needed.get(id);
      if (!entry || data.length !== entry.length) return;
      needed.delete(id);
      for (const offset of entry.offsets) await combiner.write(offset, data);
      progress.bytesFromSeeds += entry.length * entry.offsets.length;
      progress.tick();
    };
    progress.phase = 'seeding';
    const seed = async (chunks: AsyncIterable<FileChunk>): Promise<void> => {
      for await (const chunk of chunks) {
        if (needed.size === 0) break;
        if (job.signal?.aborted) throw new CancelledError('The pull was cancelled.');
        const id = cipher.chunkId(chunk.data);
        if (needed.has(id)) await put(id, Buffer.from(chunk.data));
      }
    };
    const bases = new Map<string, EncryptedBaseLocation>();
    for (const v of await install.versions()) {
      if (needed.size === 0) break;
      const old = await installedEncryption(install.versionDir(v));
      if (old?.keyId !== enc.keyId) continue;
      const oldManifest = await readFile(join(install.versionDir(v), VERSION_META_DIR, 'manifest.zst'))
        .then((bytes) => parseManifest(bytes, `installed version ${v}`))
        .catch(() => null);
      if (!oldManifest) continue;
      const oldImagePath = await imagePathOf(install.versionDir(v));
      if (!oldImagePath) continue;
      indexEncryptedBases(manifest, needed, oldManifest, oldImagePath, bases);
      const source = await job.images.open(oldImagePath, diskKey, { readOnly: true }).catch(() => undefined);
      if (!source) continue;
      try {
        await seed(chunkStream(blocksOf(source, oldManifest.image.size), manifest.chunking));
      } finally {
        await source.close();
      }
    }
    for (const file of job.seeds) if (needed.size > 0) await seed(chunkFile(resolve(file), manifest.chunking));
    if (manifest.deltas && needed.size > 0) {
      const d = await fetchEncryptedDeltas({
        store: job.store,
        manifest,
        needed,
        bases,
        cipher,
        openImage: (path) => job.images.open(path, diskKey, { readOnly: true }),
        parallel: job.parallel,
        maxRangeBytes: job.maxRangeBytes,
        put,
        fetched: (bytes) => {
          progress.bytesFetched += bytes;
          progress.tick();
        },
        ...(job.signal ? { signal: job.signal } : {}),
      });
      if (job.deltas) Object.assign(job.deltas, d);
    }

    const items = [...needed].map(([id, e]) => {
      const [pack, offset, size] = manifest.storage.locations[id]!;
      return { id, pack: manifest.storage.packs[pack]!, offset, size, length: e.length };
    });
    const ranges = job.store.ranges
      ? planRanges(items, { maxBytes: job.maxRangeBytes, maxGap: 0 })
      : planRanges(items, { maxBytes: Number.MAX_SAFE_INTEGER, maxGap: Number.MAX_SAFE_INTEGER });
    progress.bytesNeeded = ranges.reduce((n, r) => n + r.length, 0);
    progress.startFetching();
    progress.tick(true);
    // Fetches run in parallel, and so does decoding (worker threads: GCM, zstd, keyed ids);
    // writing goes one range at a time, in range (image) order, which keeps memory bounded and
    // the image's in-order digest from reading back.
    let writing: Promise<void> = Promise.resolve();
    const fetchOne = async (range: RangeRequest): Promise<void> => {
      const decoded = job.store
        .getRange(range.pack, range.offset, range.length, { ...(job.signal ? { signal: job.signal } : {}) })
        .then((body) => decoders!.decode(body, range.chunks, `pack ${range.pack}`));
      decoded.catch(() => undefined); // awaited below, once the ranges before it are written
      const done = writing.then(async () => {
        const plains = await decoded;
        try {
          for (const [i, c] of range.chunks.entries()) {
            const entry = needed.get(c.id);
            if (!entry) continue;
            needed.delete(c.id);
            for (const offset of entry.offsets) await combiner.write(offset, plains[i]!);
            fetched++;
          }
        } finally {
          for (const p of plains) wipe(p);
        }
        progress.bytesFetched += range.length;
        progress.tick();
      });
      writing = done.catch(() => undefined);
      await done;
    };
    if (ranges.length > 0) {
      const keys = cipher.chunkKeys();
      try {
        decoders = new EncryptedChunkDecoders(keys);
      } finally {
        wipe(keys.idKey, keys.encKey);
      }
    }
    const queue = [...ranges];
    await Promise.all(
      Array.from({ length: Math.min(job.parallel, queue.length) }, async () => {
        for (let r = queue.shift(); r; r = queue.shift()) await fetchOne(r);
      }),
    );
    await combiner.flush();
    if (needed.size > 0)
      throw new IntegrityError(`${needed.size} chunks of ${manifest.workspace.name} ${version} were not delivered.`);

    progress.phase = 'verifying';
    progress.tick(true);
    // A store that hashed the plaintext as it was written spares reading the image back.
    let plainDigest = await image.digest?.(manifest.image.size);
    if (plainDigest === undefined) {
      const h = createHash('sha256');
      for await (const block of blocksOf(image, manifest.image.size)) h.update(block);
      plainDigest = h.digest('hex');
    }
    const digest = cipher.imageDigest(plainDigest);
    if (digest !== manifest.image.sha256) {
      startAfresh = true;
      throw new IntegrityError(
        `The assembled image of ${manifest.workspace.name} ${version} does not match its keyed digest; nothing was installed, and the next pull starts afresh.`,
        { details: { expected: manifest.image.sha256, actual: digest } },
      );
    }
    await image.close();
    image = undefined;

    progress.phase = 'installing';
    progress.tick(true);
    const meta = join(staging, VERSION_META_DIR);
    await mkdir(meta, { recursive: true });
    await writeFile(join(meta, 'manifest.zst'), job.manifestBytes);
    await writeFile(join(meta, 'manifest.sha256'), job.manifestSha256);
    const record: InstalledEncryption = { imageId: enc.imageId, keyId: enc.keyId, format: job.images.format };
    await writeFile(join(meta, 'encryption.json'), JSON.stringify({ ...record, image: manifest.image.path }) + '\n');
    await writeFile(
      join(staging, manifest.workspace.file.name),
      encryptedWorkspaceFile(manifest, job.images.format, enc.imageId),
    );
    await rm(marker, { force: true });
    await syncDir(dirname(imageFile));
    const versionDir = install.versionDir(version);
    // Both files of a two-file format (a qcow2 and its data file) move with the directory, together.
    await job.images.relocate?.(imageFile, join(versionDir, ...manifest.image.path.split('/')), diskKey);
    await rm(versionDir, { recursive: true, force: true });
    await mkdir(dirname(versionDir), { recursive: true });
    await rename(staging, versionDir);
    await syncDir(dirname(versionDir));
    return fetched;
  } catch (err) {
    // What was verified and gathered is written, so the next pull can keep it.
    if (!startAfresh) await target?.flush().catch(() => undefined);
    await image?.close().catch(() => undefined);
    // Kept for the next pull to resume from, unless the assembled image itself was wrong.
    if (startAfresh) await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await decoders?.close();
    wipe(diskKey);
    cipher.dispose();
  }
}

/** Marks an encrypted staging image as belonging to one manifest (and data key). */
const RESUME_FILE = '.tandem-resume.json';
/** Chunks read back at once when a pull resumes. */
const RESUME_READS = 8;

/**
 * The staging image a stopped pull of the same manifest left, opened with the disk key; or
 * undefined (then the caller starts afresh) when there is none, it is for another manifest or
 * key, or it does not open.
 */
async function reopenStaged(
  job: EncryptedInstall,
  marker: string,
  imageFile: string,
  diskKey: Uint8Array,
): Promise<EncryptedImage | undefined> {
  const text = await readFile(marker, 'utf8').catch(() => null);
  if (!text) return undefined;
  let left: { manifestSha256?: unknown; keyId?: unknown };
  try {
    left = JSON.parse(text) as typeof left;
  } catch {
    return undefined;
  }
  if (left.manifestSha256 !== job.manifestSha256 || left.keyId !== job.manifest.encryption?.keyId) return undefined;
  const image = await job.images.open(imageFile, diskKey).catch(() => undefined);
  if (image && image.size < job.manifest.image.size) {
    await image.close().catch(() => undefined);
    return undefined;
  }
  return image;
}

/**
 * Reads back, from a resumed staging image, every chunk still `needed`, and drops from `needed`
 * those whose keyed id checks out at every offset: they were written before the pull stopped.
 */
async function keepVerified(
  image: EncryptedImage,
  cipher: ChunkCipher,
  needed: Map<string, { length: number; offsets: number[] }>,
  resumed: (bytes: number) => void,
): Promise<void> {
  const entries = [...needed];
  const check = async ([id, entry]: (typeof entries)[number]): Promise<void> => {
    for (const offset of entry.offsets) {
      const data = await image.read(offset, entry.length);
      try {
        if (cipher.chunkId(data) !== id) return;
      } finally {
        wipe(data);
      }
    }
    needed.delete(id);
    resumed(entry.length * entry.offsets.length);
  };
  await Promise.all(
    Array.from({ length: Math.min(RESUME_READS, entries.length) }, async () => {
      for (let e = entries.shift(); e; e = entries.shift()) await check(e);
    }),
  );
}

/**
 * The first `size` bytes of an encrypted image, in blocks. An image can be larger than the
 * plaintext it was made for (qemu-img rounds sizes up to whole sectors): the rest is not read.
 */
async function* blocksOf(image: EncryptedImage, size: number): AsyncGenerator<Buffer> {
  const end = Math.min(size, image.size);
  const ahead: Promise<Buffer>[] = [];
  let next = 0;
  const fill = (): void => {
    while (ahead.length < IN_FLIGHT && next < end) {
      const read = image.read(next, Math.min(BLOCK, end - next));
      read.catch(() => undefined);
      ahead.push(read);
      next += BLOCK;
    }
  };
  try {
    fill();
    while (ahead.length > 0) {
      const block = await ahead.shift()!;
      fill();
      try {
        yield block;
      } finally {
        wipe(block);
      }
    }
  } finally {
    await Promise.allSettled(ahead);
  }
}

async function installedEncryption(dir: string): Promise<InstalledEncryption | undefined> {
  const text = await readFile(join(dir, VERSION_META_DIR, 'encryption.json'), 'utf8').catch(() => null);
  return text ? (JSON.parse(text) as InstalledEncryption) : undefined;
}

async function imagePathOf(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, VERSION_META_DIR, 'encryption.json'), 'utf8').catch(() => null);
  const image = text ? (JSON.parse(text) as { image?: unknown }).image : undefined;
  return typeof image === 'string' ? join(dir, ...image.split('/')) : undefined;
}

/**
 * The installed workspace file of an encrypted version: the image is the encrypted one (its
 * format the at-rest format), and `spec.image.encryption.keyId` names the key a start needs.
 */
function encryptedWorkspaceFile(manifest: ImageManifest, format: string, keyId: string): string {
  const text = manifest.workspace.file.text;
  if (manifest.workspace.file.name.endsWith('.json')) {
    const data = JSON.parse(text) as { spec: { image: Record<string, unknown> } };
    data.spec.image['format'] = format;
    data.spec.image['encryption'] = { keyId };
    return JSON.stringify(data, null, 2) + '\n';
  }
  const doc = parseDocument(text);
  doc.setIn(['spec', 'image', 'format'], format);
  doc.setIn(['spec', 'image', 'encryption'], doc.createNode({ keyId }));
  return doc.toString();
}
