import { createHash } from 'node:crypto';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { checkChunkingParams, type ChunkingParams } from './fastcdc.js';
import { isSafeRelativePath } from './paths.js';

/** One chunk of an image: its id (SHA-256 of its bytes), where it sits and how long it is. */
export interface ChunkRef {
  readonly id: string;
  readonly offset: number;
  readonly length: number;
  /** All zeros: a client makes it locally instead of fetching it. */
  readonly zero?: boolean;
}

/** Where a chunk's compressed bytes are: index into `storage.packs`, offset and size there. */
export type ChunkLocation = readonly [pack: number, offset: number, size: number];

/** The special pack name for "this package file" (the file form of a package). */
export const PACKAGE_SELF = '@package';

/**
 * A version of a workspace: its workspace file, its image as a list of chunks, and where the
 * chunks' compressed bytes are stored. The same format is used inside a package (file or
 * directory) and in a repository (only `storage` differs).
 */
export interface ImageManifest {
  readonly format: 'tandem.manifest/v1';
  readonly workspace: {
    readonly name: string;
    readonly version: string;
    /** The workspace file, verbatim; `spec.image.source` points at `image.path`. */
    readonly file: { readonly name: string; readonly text: string; readonly sha256: string };
  };
  readonly image: {
    /** Relative to the workspace file's directory. */
    readonly path: string;
    readonly format: string;
    readonly size: number;
    readonly sha256: string;
  };
  readonly chunking: ChunkingParams;
  readonly compression: 'zstd';
  readonly createdAt: string;
  readonly chunks: readonly ChunkRef[];
  readonly storage: {
    /**
     * Where the compressed chunks are: pack objects relative to the repository root, data files
     * relative to a package directory, or `@package` in a package file.
     */
    readonly packs: readonly string[];
    /** Every distinct non-zero chunk id. */
    readonly locations: Readonly<Record<string, ChunkLocation>>;
  };
  /**
   * Present when the image is encrypted: chunk ids are keyed (HMAC-SHA256), chunks are
   * AES-256-GCM ciphertext, `image.sha256` is a keyed digest, and `mac` authenticates the whole
   * manifest under a key derived from the image's data key.
   */
  readonly encryption?: ManifestEncryption;
}

/** How an encrypted image's manifest says so (see `ImageManifest.encryption`). */
export interface ManifestEncryption {
  readonly scheme: typeof ENCRYPTION_SCHEME;
  /** The image id its envelopes name (the workspace name). */
  readonly imageId: string;
  /** The data key's public id ({@link DataKey.id}). */
  readonly keyId: string;
  /** HMAC-SHA256 of the manifest's JSON with this field set to 64 zeros. */
  readonly mac: string;
}

/** The one encryption scheme of manifest v1. */
export const ENCRYPTION_SCHEME = 'tandem.chunks/hmac-sha256-ids+aes-256-gcm/v1';

const HEX64 = /^[0-9a-f]{64}$/;
const uint = z.number().int().nonnegative();
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** A manifest never needs more than this once decompressed (about 3 million chunks). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/**
 * The manifest as stored: JSON, zstd-compressed, with the chunk table in columns (ids as one
 * base64 string of 32-byte digests, lengths, indices of zero chunks, and a flat list of
 * pack/offset/size triples for distinct chunks in order of first appearance, the offset relative
 * to the end of the previous chunk in that pack and the size relative to the chunk's length).
 * About 33 bytes per chunk, nearly all of it the digest, so fetching a manifest costs little
 * next to the chunks it lists.
 */
const WireSchema = z.strictObject({
  format: z.literal('tandem.manifest/v1'),
  workspace: z.strictObject({
    name: z.string().min(1).max(63),
    version: z.string().min(1).max(128),
    file: z.strictObject({ name: z.string().min(1), text: z.string(), sha256: z.string().regex(HEX64) }),
  }),
  image: z.strictObject({
    path: z.string().min(1),
    format: z.string().min(1),
    size: uint,
    sha256: z.string().regex(HEX64),
  }),
  chunking: z.strictObject({
    algorithm: z.literal('fastcdc'),
    gear: z.string(),
    gearSha256: z.string(),
    minSize: uint,
    avgSize: uint,
    maxSize: uint,
    normalization: uint,
  }),
  compression: z.literal('zstd'),
  createdAt: z.string(),
  chunks: z.strictObject({ ids: z.base64(), lengths: z.array(z.number().int().positive()), zero: z.array(uint) }),
  storage: z.strictObject({ packs: z.array(z.string()), locations: z.array(z.number().int()) }),
  encryption: z
    .strictObject({
      scheme: z.literal(ENCRYPTION_SCHEME),
      imageId: z.string().min(1).max(128),
      keyId: z.string().regex(/^[0-9a-f]{32}$/),
      mac: z.string().regex(HEX64),
    })
    .optional(),
});

/**
 * Parses and checks a manifest: its shape, that chunks tile the image exactly, that every
 * non-zero chunk has a location in a listed pack, and that no path leaves its directory.
 * `source` names where it came from in error messages.
 */
export function parseManifest(bytes: Uint8Array, source: string): ImageManifest {
  const bad = (what: string, cause?: unknown): InvalidInputError =>
    new InvalidInputError(`Manifest ${source} is not a Tandem manifest: ${what}.`, { cause, details: { source } });
  let text: string;
  try {
    const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    text = (
      raw.subarray(0, 4).equals(ZSTD_MAGIC) ? zstdDecompressSync(raw, { maxOutputLength: MAX_MANIFEST_BYTES }) : raw
    ).toString('utf8');
  } catch (err) {
    throw bad(`cannot decompress it (${(err as Error).message})`, err);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`, err);
  }
  const parsed = WireSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(`${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
  }
  const wire = parsed.data;
  const ids = Buffer.from(wire.chunks.ids, 'base64');
  const count = wire.chunks.lengths.length;
  if (ids.length !== count * 32) throw bad(`chunks.ids holds ${ids.length / 32} ids for ${count} lengths`);
  const zero = new Set(wire.chunks.zero);
  const chunks: ChunkRef[] = new Array<ChunkRef>(count);
  const locations: Record<string, ChunkLocation> = {};
  const loc = wire.storage.locations;
  const packEnds = new Map<number, number>();
  let next = 0;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const id = ids.toString('hex', i * 32, i * 32 + 32);
    const length = wire.chunks.lengths[i]!;
    if (zero.has(i)) chunks[i] = { id, offset, length, zero: true };
    else {
      chunks[i] = { id, offset, length };
      if (!(id in locations)) {
        if (next + 3 > loc.length) throw bad('storage.locations is shorter than the chunk list');
        // Stored as deltas: offset from where the previous chunk of that pack ended, size
        // against the uncompressed length (both usually tiny, so they compress to almost nothing).
        const pack = loc[next]!;
        const at = (packEnds.get(pack) ?? 0) + loc[next + 1]!;
        const size = length + loc[next + 2]!;
        if (at < 0 || size <= 0) throw bad(`storage.locations has an impossible entry for chunk ${i}`);
        locations[id] = [pack, at, size];
        packEnds.set(pack, at + size);
        next += 3;
      }
    }
    offset += length;
  }
  if (next !== loc.length) throw bad('storage.locations is longer than the chunk list');
  const manifest: ImageManifest = {
    format: wire.format,
    workspace: wire.workspace,
    image: wire.image,
    chunking: { ...wire.chunking, algorithm: 'fastcdc' },
    compression: 'zstd',
    createdAt: wire.createdAt,
    chunks,
    storage: { packs: wire.storage.packs, locations },
    ...(wire.encryption ? { encryption: wire.encryption } : {}),
  };
  checkManifest(manifest, source);
  return manifest;
}

function checkManifest(m: ImageManifest, source: string): void {
  const fail = (what: string): never => {
    throw new InvalidInputError(`Manifest ${source} is inconsistent: ${what}.`, { details: { source } });
  };
  checkChunkingParams(m.chunking, `chunking parameters in manifest ${source}`);
  if (!isSafeRelativePath(m.image.path))
    fail(`image path ${JSON.stringify(m.image.path)} leaves the workspace directory`);
  if (!isSafeRelativePath(m.workspace.file.name) || m.workspace.file.name.includes('/')) {
    fail(`workspace file name ${JSON.stringify(m.workspace.file.name)} is not a plain file name`);
  }
  if (sha256Hex(m.workspace.file.text) !== m.workspace.file.sha256)
    fail('the workspace file does not match its SHA-256');
  for (const pack of m.storage.packs) {
    if (pack !== PACKAGE_SELF && !isSafeRelativePath(pack))
      fail(`pack path ${JSON.stringify(pack)} leaves the repository`);
  }
  let offset = 0;
  for (const [i, c] of m.chunks.entries()) {
    if (c.offset !== offset) fail(`chunk ${i} starts at ${c.offset}, expected ${offset}`);
    if (c.length > m.chunking.maxSize) fail(`chunk ${i} is longer than maxSize`);
    offset += c.length;
    if (!c.zero) {
      const loc = m.storage.locations[c.id];
      if (!loc) fail(`chunk ${c.id} has no location`);
      else if (loc[0] >= m.storage.packs.length) fail(`chunk ${c.id} is in pack ${loc[0]}, which is not listed`);
    }
  }
  if (offset !== m.image.size) fail(`chunks cover ${offset} bytes, the image has ${m.image.size}`);
}

/** Serializes a manifest: compact columns, zstd-compressed (see the wire format above). */
export function serializeManifest(manifest: ImageManifest): Buffer {
  const ids = Buffer.allocUnsafe(manifest.chunks.length * 32);
  const lengths: number[] = [];
  const zero: number[] = [];
  const locations: number[] = [];
  const placed = new Set<string>();
  const packEnds = new Map<number, number>();
  manifest.chunks.forEach((c, i) => {
    ids.write(c.id, i * 32, 'hex');
    lengths.push(c.length);
    if (c.zero) zero.push(i);
    else if (!placed.has(c.id)) {
      placed.add(c.id);
      const loc = manifest.storage.locations[c.id];
      if (!loc) throw new InvalidInputError(`Chunk ${c.id} has no storage location; the manifest cannot be written.`);
      locations.push(loc[0], loc[1] - (packEnds.get(loc[0]) ?? 0), loc[2] - c.length);
      packEnds.set(loc[0], loc[1] + loc[2]);
    }
  });
  const { encryption, ...rest } = manifest;
  const wire = {
    ...rest,
    chunks: { ids: ids.toString('base64'), lengths, zero },
    storage: { packs: manifest.storage.packs, locations },
    ...(encryption ? { encryption } : {}),
  };
  return zstdCompressSync(Buffer.from(JSON.stringify(wire), 'utf8'), {
    params: { [constants.ZSTD_c_compressionLevel]: 9 },
  });
}

/** SHA-256 of text or bytes, hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Distinct non-zero chunks of a manifest, each with every image offset it is written to. */
export function distinctChunks(manifest: ImageManifest): Map<string, { length: number; offsets: number[] }> {
  const out = new Map<string, { length: number; offsets: number[] }>();
  for (const c of manifest.chunks) {
    if (c.zero) continue;
    const entry = out.get(c.id);
    if (entry) entry.offsets.push(c.offset);
    else out.set(c.id, { length: c.length, offsets: [c.offset] });
  }
  return out;
}
