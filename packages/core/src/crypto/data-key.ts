import { createHmac, hkdfSync, randomFillSync } from 'node:crypto';
import { inspect } from 'node:util';
import { InvalidInputError } from '../errors.js';
import { SecretKey, wipe } from './secret.js';

/** Bytes in a data key (AES-256). */
export const DATA_KEY_BYTES = 32;

/**
 * The random 256-bit key of one image. It stays the same across the image's versions, so the
 * same plaintext chunk has the same keyed id and ciphertext in every version and deltas stay
 * small; a new data key (rotation) therefore means a full download. Its {@link DataKey.id} is a
 * check value (HMAC of a fixed label), public: it tells keys apart without revealing them.
 *
 * @example
 * ```ts
 * using key = DataKey.generate();
 * console.log(key.id); // 32 hex digits, safe to print
 * ```
 */
export class DataKey extends SecretKey {
  /** The key's public check value, 32 hex digits. */
  readonly id: string;

  constructor(bytes: Uint8Array) {
    if (bytes.length !== DATA_KEY_BYTES)
      throw new InvalidInputError(`A data key has ${DATA_KEY_BYTES} bytes, not ${bytes.length}.`, {
        details: { expected: DATA_KEY_BYTES, actual: bytes.length },
      });
    super(bytes, 'data key');
    this.id = dataKeyIdOf(bytes);
  }

  /** A new random data key. */
  static generate(): DataKey {
    const bytes = randomFillSync(Buffer.alloc(DATA_KEY_BYTES));
    try {
      return new DataKey(bytes);
    } finally {
      wipe(bytes);
    }
  }

  override toJSON(): Record<string, unknown> {
    return { dataKey: this.id };
  }

  override toString(): string {
    return `[data key ${this.id}]`;
  }

  override [inspect.custom](): string {
    return `DataKey [${this.id}]`;
  }
}

/** The check value of data-key bytes. */
export function dataKeyIdOf(bytes: Uint8Array): string {
  return createHmac('sha256', bytes).update('tandem data key id v1').digest('hex').slice(0, 32);
}

/** What a data key is used for; each purpose gets a key of its own, derived with HKDF-SHA256. */
export type DataKeyPurpose = 'chunk-id' | 'chunk-encryption' | 'delta-encryption' | 'manifest' | 'disk';

/**
 * A 256-bit key for one purpose, derived from the data key with HKDF-SHA256 (the purpose in the
 * info string), so a key for chunk ids can never decrypt anything. The caller wipes it.
 */
export function deriveKey(dataKey: DataKey, purpose: DataKeyPurpose): Buffer {
  return dataKey.use((ikm) => Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), `tandem ${purpose} v1`, 32)));
}
