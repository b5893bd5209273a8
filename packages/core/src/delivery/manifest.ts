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

/**
 * A delta object of a chunk: the chunk compressed with `base` (the id of another chunk) as its
 * zstd dictionary, stored at `location` (like a chunk's). An endpoint holding the base rebuilds
 * the chunk from it and checks it against the chunk's id.
 */
export interface DeltaRef {
  readonly base: string;
  readonly location: ChunkLocation;
}

/** The special pack name for "this package file" (the file form of a package). */
export const PACKAGE_SELF = '@package';

/**
 * A version of a workspace: its workspace file, its image as a list of chunks, and where the
 * chunks' compressed bytes are stored. The same format is used inside a package (file or
 * directory) and in a repository (only `storage` differs).
 */
export interface ImageManifest {
  /** v2 when the manifest lists deltas ({@link ImageManifest.deltas}); v1 otherwise. */
  readonly format: 'tandem.manifest/v1' | 'tandem.manifest/v2';
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
   * Delta objects of chunks, by chunk id (only in repositories: `tandem push` makes them against
   * chunks of earlier versions). The whole chunk is always stored too.
   */
  readonly deltas?: Readonly<Record<string, readonly DeltaRef[]>>;
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
  format: z.union([z.literal('tandem.manifest/v1'), z.literal('tandem.manifest/v2')]),
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
  // v2: per delta, the index of its chunk in `chunks`, its base id (32 bytes each, in one base64
  // string) and its pack, offset and size (three numbers each, absolute).
  deltas: z.strictObject({ of: z.array(uint), bases: z.base64(), locations: z.array(uint) }).optional(),
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
  let deltas: Record<string, DeltaRef[]> | undefined;
  if (wire.deltas) {
    if (wire.format !== 'tandem.manifest/v2') throw bad('deltas need format tandem.manifest/v2');
    const { of, locations: dl } = wire.deltas;
    const bases = Buffer.from(wire.deltas.bases, 'base64');
    if (bases.length !== of.length * 32 || dl.length !== of.length * 3)
      throw bad(`deltas lists ${of.length} chunks with ${bases.length / 32} bases and ${dl.length / 3} locations`);
    deltas = {};
    for (let i = 0; i < of.length; i++) {
      const chunk = chunks[of[i]!];
      if (!chunk || chunk.zero) throw bad(`deltas names chunk ${of[i]}, which is not a stored chunk`);
      const base = bases.toString('hex', i * 32, i * 32 + 32);
      if (base === chunk.id) throw bad(`chunk ${chunk.id} has a delta against itself`);
      const size = dl[i * 3 + 2]!;
      if (size <= 0) throw bad(`the delta of chunk ${chunk.id} is empty`);
      (deltas[chunk.id] ??= []).push({ base, location: [dl[i * 3]!, dl[i * 3 + 1]!, size] });
    }
  } else if (wire.format === 'tandem.manifest/v2') throw bad('format tandem.manifest/v2 without deltas');
  const manifest: ImageManifest = {
    format: wire.format,
    workspace: wire.workspace,
    image: wire.image,
    chunking: { ...wire.chunking, algorithm: 'fastcdc' },
    compression: 'zstd',
    createdAt: wire.createdAt,
    chunks,
    storage: { packs: wire.storage.packs, locations },
    ...(deltas ? { deltas } : {}),
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
  for (const [id, refs] of Object.entries(m.deltas ?? {})) {
    for (const r of refs) {
      if (!HEX64.test(r.base)) fail(`the delta of chunk ${id} names base ${JSON.stringify(r.base)}, not a chunk id`);
      if (r.location[0] >= m.storage.packs.length)
        fail(`the delta of chunk ${id} is in pack ${r.location[0]}, which is not listed`);
    }
  }
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
  const { encryption, deltas, ...rest } = manifest;
  let wireDeltas: { of: number[]; bases: string; locations: number[] } | undefined;
  const refs = Object.entries(deltas ?? {}).filter(([, r]) => r.length > 0);
  if (refs.length > 0) {
    const indexOf = new Map<string, number>();
    manifest.chunks.forEach((c, i) => {
      if (!c.zero && !indexOf.has(c.id)) indexOf.set(c.id, i);
    });
    const of: number[] = [];
    const bases: Buffer[] = [];
    const dl: number[] = [];
    for (const [id, list] of refs) {
      const i = indexOf.get(id);
      if (i === undefined) throw new InvalidInputError(`A delta names chunk ${id}, which the image does not have.`);
      for (const r of list) {
        of.push(i);
        bases.push(Buffer.from(r.base, 'hex'));
        dl.push(...r.location);
      }
    }
    wireDeltas = { of, bases: Buffer.concat(bases).toString('base64'), locations: dl };
  }
  const wire = {
    ...rest,
    format: wireDeltas ? 'tandem.manifest/v2' : 'tandem.manifest/v1',
    chunks: { ids: ids.toString('base64'), lengths, zero },
    storage: { packs: manifest.storage.packs, locations },
    ...(wireDeltas ? { deltas: wireDeltas } : {}),
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
