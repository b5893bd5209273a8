import { hash as digest, createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { parseDocument } from 'yaml';
import { systemClock, type Clock } from '../clock.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { loadWorkspaceFile } from '../workspace/load.js';
import { WorkspaceSchema, type Workspace } from '../workspace/schema.js';
import { compressChunkSync, DEFAULT_ZSTD_LEVEL } from './compress.js';
import { chunkFile, chunkingParams, type ChunkingOptions, type ChunkingParams } from './fastcdc.js';
import {
  parseManifest,
  serializeManifest,
  sha256Hex,
  type ChunkLocation,
  type ChunkRef,
  type DeltaRef,
  type ImageManifest,
} from './manifest.js';
import { createPackageDirectory, DEFAULT_VOLUME_SIZE, minVolumeSize } from './package-directory.js';
import { createPackageFile, type PackageFormat, type PackageSink } from './package-file.js';
import { isSafeRelativePath } from './paths.js';
import { toHostError } from './io-errors.js';
import { ChunkCipher } from '../crypto/chunk-cipher.js';
import type { DataKey } from '../crypto/data-key.js';
import { encodeEncryptedChunk, sealManifest } from './encryption.js';
import { EncryptedDeltaBases } from './delta-encrypted.js';
import { zstdDictionarySupported } from './delta.js';

/** Options for {@link packWorkspace}. */
export interface PackOptions {
  /** The workspace file (`tandem.workspace.yaml`); its image is `spec.image.source`. */
  workspaceFile: string;
  /**
   * The package to write: a file, or a directory with `format: 'directory'`. What is there is
   * replaced once the new package is complete (for the directory form only an empty directory
   * or an earlier package directory; anything else is refused).
   */
  out: string;
  /**
   * `file` (one file) or `directory` (a manifest and data files of at most `volumeSize` each).
   * Default: `directory` when `volumeSize` is given, `out` is an existing directory or ends with
   * a path separator; `file` otherwise.
   */
  format?: PackageFormat;
  /**
   * Largest data file of the directory form, in bytes; default {@link DEFAULT_VOLUME_SIZE}
   * (1 GiB: FAT32 holds files up to 4 GiB less one byte). At least a little over the chunking's
   * `maxSize`, since a chunk is never split.
   */
  volumeSize?: number;
  /** Chunking parameters; default FastCDC 16/64/256 KiB. */
  chunking?: ChunkingOptions | ChunkingParams;
  /** zstd level (1-19); default 3. */
  level?: number;
  /**
   * Package as this version instead of the workspace file's `metadata.version` (a build stamps
   * each version without editing the file); the packaged workspace file says it too.
   */
  version?: string;
  /**
   * Encrypts the package with this image's data key: keyed chunk ids (HMAC-SHA256), AES-256-GCM
   * chunks, a keyed image digest and an authenticated manifest. `imageId` is what envelopes name;
   * default the workspace name. Use the same data key for every version, so they share chunks.
   *
   * `deltaFrom` is the previous version's encrypted package (file or directory, same workspace,
   * same data key): each new chunk that resembles one of its chunks gets an encrypted delta
   * against it in the package too (see docs/encryption.md), which `pushPackage` publishes when
   * the repository has that base, so endpoints holding the previous version fetch only the
   * delta. The publisher needs no key for it: the deltas are made here, on plaintext.
   */
  encryption?: { dataKey: DataKey; imageId?: string; deltaFrom?: string };
  /** Called as the image is read. */
  onProgress?: (progress: PackProgress) => void;
  clock?: Clock;
}

/** Progress of a pack. */
export interface PackProgress {
  readonly bytesRead: number;
  readonly bytesTotal: number;
  readonly chunks: number;
}

/** What {@link packWorkspace} made. */
export interface PackResult {
  /** The package file or directory. */
  readonly path: string;
  readonly format: PackageFormat;
  /** The manifest as written into the package. */
  readonly manifest: ImageManifest;
  /** Size of the package: the file, or the manifest and data files of the directory. */
  readonly packageBytes: number;
  /** The directory form's data files (names inside the directory, in order); empty for a file. */
  readonly dataFiles: readonly string[];
  readonly chunks: number;
  readonly distinctChunks: number;
  readonly zeroChunks: number;
  /** Encrypted deltas in the package (with `encryption.deltaFrom`), and their bytes. */
  readonly deltas: number;
  readonly deltaBytes: number;
}

/**
 * Builds a workspace package: the workspace file and its image, cut with FastCDC, each distinct
 * chunk compressed with zstd, and a manifest with the chunk ids, offsets and lengths and the
 * whole image's SHA-256. The package is one file, or one directory of a manifest and data files
 * (`format: 'directory'`); either appears atomically at `out` when complete, and a pack that
 * fails or is killed leaves no package there.
 *
 * @example
 * ```ts
 * const { manifest } = await packWorkspace({ workspaceFile: 'ws/tandem.workspace.yaml', out: 'erp-3.2.0.tandem' });
 * console.log(manifest.image.sha256);
 * // For removable media: a directory of data files of at most 1 GiB each.
 * await packWorkspace({ workspaceFile: 'ws/tandem.workspace.yaml', out: '/media/usb/erp-3.2.0', format: 'directory' });
 * ```
 */
export async function packWorkspace(options: PackOptions): Promise<PackResult> {
  const clock = options.clock ?? systemClock;
  const params =
    'algorithm' in (options.chunking ?? {}) ? (options.chunking as ChunkingParams) : chunkingParams(options.chunking);
  const level = options.level ?? DEFAULT_ZSTD_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 19)
    throw new InvalidInputError(`zstd level ${level} is out of range; expected 1 to 19.`);
  const format = await packageFormatFor(options);
  const volumeSize = options.volumeSize ?? DEFAULT_VOLUME_SIZE;
  if (format === 'directory' && (!Number.isSafeInteger(volumeSize) || volumeSize < minVolumeSize(params.maxSize))) {
    throw new InvalidInputError(
      `Volume size ${volumeSize} is too small for chunks of up to ${params.maxSize} bytes (a chunk is never split); use at least ${minVolumeSize(params.maxSize)} bytes.`,
    );
  }
  const loaded = await loadWorkspaceFile(options.workspaceFile);
  const workspace =
    options.version === undefined ? loaded.workspace : withVersion(loaded.workspace, options.version, loaded.file);
  const source = workspace.spec.image.source;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new InvalidInputError(
      `${loaded.file}: spec.image.source is a reference (${source}); pack needs a local image file.`,
      { details: { file: loaded.file } },
    );
  }
  const imageFile = resolve(loaded.baseDir, source);
  let imageSize: number;
  try {
    const st = await stat(imageFile);
    if (!st.isFile())
      throw new InvalidInputError(`${loaded.file}: spec.image.source ${imageFile} is not a regular file.`);
    imageSize = st.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`${loaded.file}: the image ${imageFile} (spec.image.source) does not exist.`, {
        cause: err,
        details: { file: loaded.file },
      });
    }
    throw err;
  }
  let text = await readFile(loaded.file, 'utf8');
  if (options.version !== undefined)
    text = rewriteWorkspaceText(text, ['metadata', 'version'], options.version, loaded.file.endsWith('.json'));
  // The image keeps its place next to the workspace file when it is inside its directory;
  // otherwise it goes to images/ and the packaged workspace file says so.
  let imagePath = relative(loaded.baseDir, imageFile).split(sep).join('/');
  if (isAbsolute(imagePath) || !isSafeRelativePath(imagePath)) {
    imagePath = `images/${basename(imageFile)}`;
    text = rewriteWorkspaceText(text, ['spec', 'image', 'source'], `./${imagePath}`, loaded.file.endsWith('.json'));
  }

  const out = resolve(options.out);
  await mkdir(dirname(out), { recursive: true });
  let sink: PackageSink;
  try {
    sink = format === 'directory' ? await createPackageDirectory(out, volumeSize) : await createPackageFile(out);
  } catch (err) {
    throw toHostError(err, `writing package ${out}`);
  }
  const cipher = options.encryption ? new ChunkCipher(options.encryption.dataKey) : undefined;
  let bases: EncryptedDeltaBases | undefined;
  try {
    const deltaFrom = options.encryption?.deltaFrom;
    // Without zstd dictionaries (Node.js 22 before 22.19) no deltas can be made: whole chunks only.
    if (deltaFrom !== undefined && cipher && zstdDictionarySupported())
      bases = await EncryptedDeltaBases.open(
        resolve(deltaFrom),
        workspace.metadata.name,
        options.encryption!.dataKey,
        cipher,
      );
    const deltas: Record<string, DeltaRef[]> = {};
    let deltaBytes = 0;
    // A new chunk's delta waits for the next chunk (its right neighbour, a candidate base).
    let waiting: { id: string; plain: Buffer; size: number; left: string | undefined } | undefined;
    const baseOf = new Map<string, string>();
    const makeDelta = async (right: string | undefined): Promise<void> => {
      if (!waiting || !bases) return;
      const w = waiting;
      waiting = undefined;
      try {
        const delta = await bases.deltaFor(w.id, w.plain, w.size, { left: w.left, right });
        if (delta) {
          deltas[w.id] = [{ base: delta.base, location: await sink.add(delta.sealed) }];
          baseOf.set(w.id, delta.base);
          deltaBytes += delta.sealed.length;
        }
      } finally {
        w.plain.fill(0);
      }
    };
    let previous: { id: string; zero: boolean } | undefined;
    const chunks: ChunkRef[] = [];
    const locations: Record<string, ChunkLocation> = {};
    const imageHash = createHash('sha256');
    let zeroChunks = 0;
    let bytesRead = 0;
    let lastReport = clock.now();
    for await (const chunk of chunkFile(imageFile, params)) {
      const data = chunk.data;
      imageHash.update(data);
      const id = cipher ? cipher.chunkId(data) : digest('sha256', data, 'hex');
      const zero = isZero(data);
      if (waiting) await makeDelta(zero ? undefined : id);
      const left = previous && !previous.zero ? (baseOf.get(previous.id) ?? previous.id) : undefined;
      previous = { id, zero };
      chunks.push(
        zero
          ? { id, offset: chunk.offset, length: chunk.length, zero: true }
          : { id, offset: chunk.offset, length: chunk.length },
      );
      bytesRead += chunk.length;
      if (zero) zeroChunks++;
      else if (!(id in locations)) {
        // Synchronous zstd: node's async zstd builds a new context per call and is many times slower.
        const stored = cipher ? encodeEncryptedChunk(cipher, id, data, level) : compressChunkSync(data, level);
        locations[id] = await sink.add(stored);
        if (bases && !bases.has(id)) {
          const size = Array.isArray(stored) ? stored[0].length + stored[1].length : stored.length;
          waiting = { id, plain: Buffer.from(data), size, left };
        }
      }
      if (options.onProgress && clock.now() - lastReport >= 200) {
        lastReport = clock.now();
        options.onProgress({ bytesRead, bytesTotal: imageSize, chunks: chunks.length });
      }
    }
    await makeDelta(undefined);
    if (bytesRead !== imageSize) {
      throw new InvalidInputError(
        `The image ${imageFile} changed size while it was packed (${imageSize} -> ${bytesRead} bytes); pack it again when nothing writes to it.`,
      );
    }
    const plainSha256 = imageHash.digest('hex');
    const imageSha256 = cipher ? cipher.imageDigest(plainSha256) : plainSha256;
    let manifest: ImageManifest | undefined;
    const written = await sink.commit((packs) => {
      const made: ImageManifest = {
        format: 'tandem.manifest/v1',
        workspace: {
          name: workspace.metadata.name,
          version: workspace.metadata.version,
          file: { name: basename(loaded.file), text, sha256: sha256Hex(text) },
        },
        image: { path: imagePath, format: workspace.spec.image.format, size: imageSize, sha256: imageSha256 },
        chunking: params,
        compression: 'zstd',
        createdAt: new Date(clock.now()).toISOString(),
        chunks,
        storage: { packs, locations },
        ...(Object.keys(deltas).length > 0 ? { deltas } : {}),
      };
      if (!options.encryption) {
        manifest = made;
        return serializeManifest(made);
      }
      const bytes = sealManifest(made, options.encryption.dataKey, options.encryption.imageId ?? made.workspace.name);
      manifest = parseManifest(bytes, out);
      return bytes;
    });
    options.onProgress?.({ bytesRead, bytesTotal: imageSize, chunks: chunks.length });
    return {
      path: out,
      format,
      manifest: manifest!,
      packageBytes: written.bytes,
      dataFiles: written.dataFiles,
      chunks: chunks.length,
      distinctChunks: Object.keys(locations).length,
      zeroChunks,
      deltas: Object.keys(deltas).length,
      deltaBytes,
    };
  } catch (err) {
    await sink.abort();
    throw toHostError(err, `writing package ${out}`);
  } finally {
    await bases?.close();
    cipher?.dispose();
  }
}

/**
 * The package form for {@link packWorkspace}: `format` when given; else `directory` when a
 * volume size is given, `out` ends with a path separator or is an existing directory; else
 * `file`.
 */
async function packageFormatFor(options: PackOptions): Promise<PackageFormat> {
  if (options.format !== undefined) {
    if (options.format !== 'file' && options.format !== 'directory') {
      throw new InvalidInputError(
        `Package format ${JSON.stringify(options.format)} is not known; expected "file" or "directory".`,
      );
    }
    if (options.format === 'file' && options.volumeSize !== undefined)
      throw new InvalidInputError('A volume size applies to the directory form only; drop it or ask for a directory.');
    return options.format;
  }
  if (options.volumeSize !== undefined || options.out.endsWith('/') || options.out.endsWith(sep)) return 'directory';
  const st = await stat(options.out).catch(() => null);
  return st?.isDirectory() ? 'directory' : 'file';
}

const ZEROS = Buffer.alloc(64 * 1024);

/** True when every byte is zero. */
export function isZero(data: Uint8Array): boolean {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const end = Math.min(data.length, at + ZEROS.length);
    if (Buffer.compare(data.subarray(at, end), ZEROS.subarray(0, end - at)) !== 0) return false;
  }
  return true;
}

/** Sets one value in a workspace file's text (YAML keeps its comments). */
function rewriteWorkspaceText(text: string, path: readonly string[], value: string, json: boolean): string {
  if (json) {
    const data = JSON.parse(text) as Record<string, unknown>;
    let node = data;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
    node[path[path.length - 1]!] = value;
    return JSON.stringify(data, null, 2) + '\n';
  }
  const doc = parseDocument(text);
  doc.setIn([...path], value);
  return doc.toString();
}

/** The workspace as another version; the version must be one the workspace file could say. */
function withVersion(workspace: Workspace, version: string, file: string): Workspace {
  const checked = WorkspaceSchema.shape.metadata.shape.version.safeParse(version);
  if (!checked.success) {
    throw new InvalidInputError(
      `Version ${JSON.stringify(version)} for ${file}: ${checked.error.issues[0]?.message ?? 'not a version'}.`,
      { details: { file, version } },
    );
  }
  return { ...workspace, metadata: { ...workspace.metadata, version } };
}
