import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { Hmac256 } from './hmac.js';
import { IntegrityError } from '../errors.js';
import { deriveKey, type DataKey } from './data-key.js';
import { wipe } from './secret.js';

/** Bytes an encrypted chunk adds: the AES-GCM tag. */
export const CHUNK_TAG_BYTES = 16;
const NONCE = Buffer.alloc(12);

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
  /** The data key's id, which a manifest records. */
  readonly keyId: string;

  constructor(dataKey: DataKey) {
    this.#idKey = deriveKey(dataKey, 'chunk-id');
    this.#encKey = deriveKey(dataKey, 'chunk-encryption');
    this.#ids = new Hmac256(this.#idKey);
    this.#keys = new Hmac256(this.#encKey);
    this.keyId = dataKey.id;
  }

  /** The keyed id of a plaintext chunk: HMAC-SHA256 under the id key, hex. */
  chunkId(plain: Uint8Array): string {
    return this.#ids.digest(plain).toString('hex');
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

  #chunkKey(id: string): Buffer {
    return this.#keys.digest(Buffer.from(id, 'hex'));
  }

  dispose(): void {
    wipe(this.#idKey, this.#encKey);
    this.#ids.dispose();
    this.#keys.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
