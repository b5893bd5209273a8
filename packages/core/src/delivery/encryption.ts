import { createHmac, timingSafeEqual } from 'node:crypto';
import { IntegrityError, KeyUnavailableError } from '../errors.js';
import { type ChunkCipher } from '../crypto/chunk-cipher.js';
import { deriveKey, type DataKey } from '../crypto/data-key.js';
import { requireDataKey } from '../crypto/release.js';
import { wipe } from '../crypto/secret.js';
import { compressChunkSync, decompressChunk } from './compress.js';
import { ENCRYPTION_SCHEME, serializeManifest, type ImageManifest, type ManifestEncryption } from './manifest.js';

/**
 * Serializes an encrypted image's manifest with its MAC: HMAC-SHA256, under a key derived from
 * the data key, of everything in the manifest except where the chunks are stored (a repository
 * stores them elsewhere than the package did, and a wrong location only yields a chunk that
 * fails its GCM check) and its deltas (each encrypted delta is bound to its chunk and base ids
 * by its own key and GCM tag, and the rebuilt chunk is checked against its keyed id). Whoever
 * lacks the data key cannot alter the chunk list, the workspace file or the image digest
 * unnoticed, even where no signed repository metadata covers the manifest (a package on
 * removable media).
 */
export function sealManifest(manifest: ImageManifest, dataKey: DataKey, imageId: string): Buffer {
  const encryption: ManifestEncryption = { scheme: ENCRYPTION_SCHEME, imageId, keyId: dataKey.id, mac: '' };
  const unsealed = { ...manifest, encryption };
  return serializeManifest({ ...unsealed, encryption: { ...encryption, mac: macOf(unsealed, dataKey) } });
}

/**
 * Checks that `dataKey` is the key `manifest` was encrypted with and that the manifest is as
 * its packer wrote it. AuthError for another key, IntegrityError for an altered manifest.
 */
export function verifyManifest(manifest: ImageManifest, dataKey: DataKey, source: string): void {
  const enc = manifest.encryption;
  if (!enc) return;
  requireDataKey(dataKey, enc.keyId, `${manifest.workspace.name} ${manifest.workspace.version}`);
  const expected = Buffer.from(macOf(manifest, dataKey), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(enc.mac.padEnd(64, '0').slice(0, 64), 'hex'))) {
    throw new IntegrityError(
      `The encrypted manifest ${source} was altered or damaged: its MAC does not match. Nothing was fetched; get the package or repository again.`,
      { details: { source, reason: 'manifest-mac' } },
    );
  }
}

function macOf(m: ImageManifest, dataKey: DataKey): string {
  const key = deriveKey(dataKey, 'manifest');
  try {
    const enc = m.encryption;
    const h = createHmac('sha256', key).update(
      JSON.stringify([
        // v2 only says that deltas are listed; like storage, deltas are outside the MAC (a push
        // keeps only those whose base the repository has, and each is authenticated on its own).
        m.format === 'tandem.manifest/v2' ? 'tandem.manifest/v1' : m.format,
        m.workspace,
        m.image,
        m.chunking,
        m.compression,
        m.createdAt,
        enc?.scheme,
        enc?.imageId,
        enc?.keyId,
        m.chunks.length,
      ]),
    );
    const row = Buffer.alloc(32 + 8 + 1);
    for (const c of m.chunks) {
      row.write(c.id, 0, 'hex');
      row.writeDoubleBE(c.length, 32);
      row[40] = c.zero ? 1 : 0;
      h.update(row);
    }
    return h.digest('hex');
  } finally {
    wipe(key);
  }
}

/** Compresses (when that helps) and then encrypts a plaintext chunk for a pack: ciphertext and tag. */
export function encodeEncryptedChunk(
  cipher: ChunkCipher,
  id: string,
  plain: Uint8Array,
  level?: number,
): [ciphertext: Buffer, tag: Buffer] {
  const packed = compressChunkSync(plain, level);
  try {
    return cipher.encryptParts(id, packed);
  } finally {
    wipe(packed);
  }
}

/**
 * Decrypts and decompresses a chunk from a pack and checks its keyed id. IntegrityError when it
 * was altered (the GCM tag or the id does not match). The caller wipes the result.
 */
export function decodeEncryptedChunk(cipher: ChunkCipher, id: string, sealed: Uint8Array, length: number): Buffer {
  const packed = cipher.decrypt(id, sealed);
  const plain = decompressChunk(packed, length, id);
  if (plain.buffer !== packed.buffer) wipe(packed);
  if (plain.length !== length || cipher.chunkId(plain) !== id) {
    wipe(plain);
    throw new IntegrityError(`Encrypted chunk ${id} does not match its keyed id; the package was altered.`, {
      details: { chunk: id },
    });
  }
  return plain;
}

/** The refusal of an encrypted workspace that has no key here: what is missing and how to get it. */
export function missingKeyError(manifest: ImageManifest, source: string): KeyUnavailableError {
  const imageId = manifest.encryption?.imageId ?? manifest.workspace.name;
  return new KeyUnavailableError(
    `${manifest.workspace.name} ${manifest.workspace.version} (${source}) is encrypted, and there is no envelope with its key for this device. Nothing was fetched. Send this device's key (tandem keys device show) to your administrator, who seals one (tandem keys seal --image ${imageId} ...); then pass it with --envelope FILE or put it in the state directory (envelopes/${imageId}.envelope).`,
    { details: { source, imageId, keyId: manifest.encryption?.keyId, version: manifest.workspace.version } },
  );
}
