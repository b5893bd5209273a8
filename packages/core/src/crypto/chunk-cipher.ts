import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { Hmac256 } from './hmac.js';
import { IntegrityError } from '../errors.js';
import { deriveKey, type DataKey } from './data-key.js';
import { wipe } from './secret.js';

/** Bytes an encrypted chunk adds: the AES-GCM tag. */
export const CHUNK_TAG_BYTES = 16;
const NONCE = Buffer.alloc(12);
const DELTA_NONCE_BYTES = 12;
/** Bytes an encrypted delta adds: its random nonce and the AES-GCM tag. */
export const DELTA_OVERHEAD_BYTES = DELTA_NONCE_BYTES + CHUNK_TAG_BYTES;
const DELTA_AAD = Buffer.from('tandem delta v1', 'latin1');

/**
 * The chunk keys of one image, derived from its data key: one for keyed chunk ids
 * (HMAC-SHA256), one from which every distinct chunk gets an AES-256-GCM key of its own.
 *
 * Encryption is deterministic on purpose: the same plaintext chunk has the same id and the same
 * ciphertext in every version of the image, so versions share unchanged chunks in the
 * repository and on the wire. A chunk's key is HMAC(encryption key, chunk id), so no two
 * different plaintexts ever share a key (and the fixed nonce is never reused with one key for
 * two messages). What it reveals: which chunks of two versions are equal, and chunk lengths.
 * Dispose of it after use.
 *
 * @example
 * ```ts
 * using cipher = new ChunkCipher(dataKey);
 * const id = cipher.chunkId(plain);
 * const sealed = cipher.encrypt(id, plain);
 * cipher.decrypt(id, sealed); // plain again
 * ```
 */
export class ChunkCipher implements Disposable {
  #idKey: Buffer;
  #encKey: Buffer;
  #ids: Hmac256;
  #keys: Hmac256;
  #deltaKey: Buffer;
  #deltaKeys: Hmac256;
  /** The data key's id, which a manifest records. */
  readonly keyId: string;

  constructor(dataKey: DataKey) {
    this.#idKey = deriveKey(dataKey, 'chunk-id');
    this.#encKey = deriveKey(dataKey, 'chunk-encryption');
    this.#ids = new Hmac256(this.#idKey);
    this.#keys = new Hmac256(this.#encKey);
    this.#deltaKey = deriveKey(dataKey, 'delta-encryption');
    this.#deltaKeys = new Hmac256(this.#deltaKey);
    this.keyId = dataKey.id;
  }

  /** The keyed id of a plaintext chunk: HMAC-SHA256 under the id key, hex. */
  chunkId(plain: Uint8Array): string {
    return this.#ids.digest(plain).toString('hex');
  }

  /**
   * Copies of the id key and the chunk-encryption key, for worker threads that decode chunks
   * (the pull's); the caller wipes them.
   * @internal
   */
  chunkKeys(): { idKey: Buffer; encKey: Buffer } {
    return { idKey: Buffer.from(this.#idKey), encKey: Buffer.from(this.#encKey) };
  }

  /** The keyed digest of a whole image's plaintext SHA-256, so a manifest shows no plaintext hash. */
  imageDigest(plainSha256: string): string {
    return createHmac('sha256', this.#idKey).update(`image ${plainSha256}`).digest('hex');
  }

  /** Encrypts a (compressed or stored) chunk: ciphertext then the 16-byte tag. */
  encrypt(id: string, data: Uint8Array): Buffer {
    const [body, tag] = this.encryptParts(id, data);
    return Buffer.concat([body, tag], body.length + CHUNK_TAG_BYTES);
  }

  /** {@link ChunkCipher.encrypt} as its two parts, ciphertext and tag, to be written back to back uncopied. */
  encryptParts(id: string, data: Uint8Array): [ciphertext: Buffer, tag: Buffer] {
    const key = this.#chunkKey(id);
    try {
      const c = createCipheriv('aes-256-gcm', key, NONCE);
      const body = c.update(data);
      c.final();
      return [body, c.getAuthTag()];
    } finally {
      wipe(key);
    }
  }

  /** Decrypts what {@link ChunkCipher.encrypt} made; IntegrityError when it was altered or the key is wrong. */
  decrypt(id: string, sealed: Uint8Array): Buffer {
    if (sealed.length < CHUNK_TAG_BYTES)
      throw new IntegrityError(`Encrypted chunk ${id} is shorter than its tag; it is damaged.`, {
        details: { chunk: id },
      });
    const key = this.#chunkKey(id);
    try {
      const d = createDecipheriv('aes-256-gcm', key, NONCE);
      d.setAuthTag(sealed.subarray(sealed.length - CHUNK_TAG_BYTES));
      const plain = d.update(sealed.subarray(0, sealed.length - CHUNK_TAG_BYTES));
      d.final();
      return plain;
    } catch (err) {
      throw new IntegrityError(
        `Encrypted chunk ${id} does not decrypt: the repository copy was altered or damaged, or the data key is not this image's.`,
        { cause: err, details: { chunk: id } },
      );
    } finally {
      wipe(key);
    }
  }

  /**
   * Encrypts a delta of chunk `id` against chunk `base`: a random nonce, the ciphertext and the
   * tag, under a key of its own for that pair (HMAC of both ids under a key derived for deltas).
   * Unlike a chunk, a delta is not deterministic: another packer (another zstd) may make other
   * delta bytes for the same pair, and a fixed nonce would then be reused. A delta whose ids are
   * swapped for another pair's does not decrypt.
   */
  encryptDelta(id: string, base: string, delta: Uint8Array): Buffer {
    const key = this.#deltaKeyOf(id, base);
    try {
      const nonce = randomBytes(DELTA_NONCE_BYTES);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      c.setAAD(DELTA_AAD);
      const body = c.update(delta);
      c.final();
      return Buffer.concat([nonce, body, c.getAuthTag()], body.length + DELTA_OVERHEAD_BYTES);
    } finally {
      wipe(key);
    }
  }

  /**
   * Decrypts what {@link ChunkCipher.encryptDelta} made for the same pair of ids; IntegrityError
   * when it was altered, is another pair's, or the key is wrong.
   */
  decryptDelta(id: string, base: string, sealed: Uint8Array): Buffer {
    if (sealed.length < DELTA_OVERHEAD_BYTES)
      throw new IntegrityError(`The encrypted delta of chunk ${id} is shorter than its nonce and tag; it is damaged.`, {
        details: { chunk: id, base },
      });
    const key = this.#deltaKeyOf(id, base);
    try {
      const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, DELTA_NONCE_BYTES));
      d.setAAD(DELTA_AAD);
      d.setAuthTag(sealed.subarray(sealed.length - CHUNK_TAG_BYTES));
      const plain = d.update(sealed.subarray(DELTA_NONCE_BYTES, sealed.length - CHUNK_TAG_BYTES));
      d.final();
      return plain;
    } catch (err) {
      throw new IntegrityError(
        `The encrypted delta of chunk ${id} against ${base} does not decrypt: it was altered or damaged, or the data key is not this image's.`,
        { cause: err, details: { chunk: id, base } },
      );
    } finally {
      wipe(key);
    }
  }

  #chunkKey(id: string): Buffer {
    return this.#keys.digest(Buffer.from(id, 'hex'));
  }

  #deltaKeyOf(id: string, base: string): Buffer {
    return this.#deltaKeys.digest(Buffer.from(`${id}${base}`, 'hex'));
  }

  dispose(): void {
    wipe(this.#idKey, this.#encKey, this.#deltaKey);
    this.#ids.dispose();
    this.#keys.dispose();
    this.#deltaKeys.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
