import { hash as digest, createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { parseDocument } from 'yaml';
import { systemClock, type Clock } from '../clock.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { loadWorkspaceFile } from '../workspace/load.js';
import { compressChunkSync, DEFAULT_ZSTD_LEVEL } from './compress.js';
import { chunkFile, chunkingParams, type ChunkingOptions, type ChunkingParams } from './fastcdc.js';
import {
  PACKAGE_SELF,
  serializeManifest,
  sha256Hex,
  type ChunkLocation,
  type ChunkRef,
  type ImageManifest,
} from './manifest.js';
import { PACKAGE_MAGIC, packageTrailer } from './package-file.js';
import { isSafeRelativePath } from './paths.js';
import { toHostError } from './io-errors.js';

/** Options for {@link packWorkspace}. */
export interface PackOptions {
  /** The workspace file (`tandem.workspace.yaml`); its image is `spec.image.source`. */
  workspaceFile: string;
  /** The package file to write. */
  out: string;
  /** Chunking parameters; default FastCDC 16/64/256 KiB. */
  chunking?: ChunkingOptions | ChunkingParams;
  /** zstd level (1-19); default 3. */
  level?: number;
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
  readonly path: string;
  readonly manifest: ImageManifest;
  /** Size of the package file. */
  readonly packageBytes: number;
  readonly chunks: number;
  readonly distinctChunks: number;
  readonly zeroChunks: number;
}

/**
 * Builds a workspace package: the workspace file and its image, cut with FastCDC, each distinct
 * chunk compressed with zstd, and a manifest with the chunk ids, offsets and lengths and the
 * whole image's SHA-256. The file appears atomically at `out` when complete.
 *
 * @example
 * ```ts
 * const { manifest } = await packWorkspace({ workspaceFile: 'ws/tandem.workspace.yaml', out: 'erp-3.2.0.tandem' });
 * console.log(manifest.image.sha256);
 * ```
 */
export async function packWorkspace(options: PackOptions): Promise<PackResult> {
  const clock = options.clock ?? systemClock;
  const params =
    'algorithm' in (options.chunking ?? {}) ? (options.chunking as ChunkingParams) : chunkingParams(options.chunking);
  const level = options.level ?? DEFAULT_ZSTD_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 19)
    throw new InvalidInputError(`zstd level ${level} is out of range; expected 1 to 19.`);
  const loaded = await loadWorkspaceFile(options.workspaceFile);
  const { workspace } = loaded;
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
  // The image keeps its place next to the workspace file when it is inside its directory;
  // otherwise it goes to images/ and the packaged workspace file says so.
  let imagePath = relative(loaded.baseDir, imageFile).split(sep).join('/');
  if (isAbsolute(imagePath) || !isSafeRelativePath(imagePath)) {
    imagePath = `images/${basename(imageFile)}`;
    text = rewriteImageSource(text, imagePath, loaded.file.endsWith('.json'));
  }

  const out = resolve(options.out);
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.partial-${process.pid}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.write(PACKAGE_MAGIC, 0, PACKAGE_MAGIC.length, 0);
    let at = PACKAGE_MAGIC.length;
    const chunks: ChunkRef[] = [];
    const locations: Record<string, ChunkLocation> = {};
    const queued = new Set<string>();
    const imageHash = createHash('sha256');
    // Compressed chunks are written in batches: one write per chunk costs more than the chunking.
    let batch: Buffer[] = [];
    let outBytes = 0;
    let written = PACKAGE_MAGIC.length;
    const flush = async (): Promise<void> => {
      await handle.writev(batch, written);
      written += outBytes;
      batch = [];
      outBytes = 0;
    };
    let zeroChunks = 0;
    let bytesRead = 0;
    let lastReport = clock.now();
    for await (const chunk of chunkFile(imageFile, params)) {
      const data = chunk.data;
      imageHash.update(data);
      const id = digest('sha256', data, 'hex');
      const zero = isZero(data);
      chunks.push(
        zero
          ? { id, offset: chunk.offset, length: chunk.length, zero: true }
          : { id, offset: chunk.offset, length: chunk.length },
      );
      bytesRead += chunk.length;
      if (zero) zeroChunks++;
      else if (!queued.has(id)) {
        queued.add(id);
        // Synchronous zstd: node's async zstd builds a new context per call and is many times slower.
        const compressed = compressChunkSync(data, level);
        locations[id] = [0, at, compressed.length];
        at += compressed.length;
        batch.push(compressed);
        outBytes += compressed.length;
        if (outBytes >= 8 * 1024 * 1024) await flush();
      }
      if (options.onProgress && clock.now() - lastReport >= 200) {
        lastReport = clock.now();
        options.onProgress({ bytesRead, bytesTotal: imageSize, chunks: chunks.length });
      }
    }
    await flush();
    if (bytesRead !== imageSize) {
      throw new InvalidInputError(
        `The image ${imageFile} changed size while it was packed (${imageSize} -> ${bytesRead} bytes); pack it again when nothing writes to it.`,
      );
    }
    const manifest: ImageManifest = {
      format: 'tandem.manifest/v1',
      workspace: {
        name: workspace.metadata.name,
        version: workspace.metadata.version,
        file: { name: basename(loaded.file), text, sha256: sha256Hex(text) },
      },
      image: { path: imagePath, format: workspace.spec.image.format, size: imageSize, sha256: imageHash.digest('hex') },
      chunking: params,
      compression: 'zstd',
      createdAt: new Date(clock.now()).toISOString(),
      chunks,
      storage: { packs: [PACKAGE_SELF], locations },
    };
    const header = serializeManifest(manifest);
    await handle.write(header, 0, header.length, at);
    const trailer = packageTrailer(at, header.length);
    await handle.write(trailer, 0, trailer.length, at + header.length);
    await handle.sync();
    await handle.close();
    await rename(tmp, out);
    options.onProgress?.({ bytesRead, bytesTotal: imageSize, chunks: chunks.length });
    return {
      path: out,
      manifest,
      packageBytes: at + header.length + trailer.length,
      chunks: chunks.length,
      distinctChunks: Object.keys(locations).length,
      zeroChunks,
    };
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw toHostError(err, `writing package ${out}`);
  }
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

function rewriteImageSource(text: string, path: string, json: boolean): string {
  if (json) {
    const data = JSON.parse(text) as { spec: { image: { source: string } } };
    data.spec.image.source = `./${path}`;
    return JSON.stringify(data, null, 2) + '\n';
  }
  const doc = parseDocument(text);
  doc.setIn(['spec', 'image', 'source'], `./${path}`);
  return doc.toString();
}
