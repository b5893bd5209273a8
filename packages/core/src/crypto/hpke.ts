import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import type { webcrypto } from 'node:crypto';
import { wipe } from './secret.js';

// @hpke/core types its keys as the DOM's CryptoKey, which this package's libraries lack.
type HpkeKey = webcrypto.CryptoKey;

// One suite for every envelope; HPKE base mode (RFC 9180), single shot.
const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

/** What a sealed data key is bound to: HPKE's info, so it opens only for exactly this grant. */
export interface SealBinding {
  readonly authority: string;
  readonly deviceId: string;
  readonly imageId: string;
  readonly versions: string;
  readonly dataKeyId: string;
}

function infoOf(b: SealBinding): Buffer {
  return Buffer.from(
    `tandem.key-envelope/v1\n${JSON.stringify([b.authority, b.deviceId, b.imageId, b.versions, b.dataKeyId])}`,
    'utf8',
  );
}

/** Seals `secret` for the X25519 public key `recipient` (raw bytes). */
export async function hpkeSeal(
  recipient: Uint8Array,
  binding: SealBinding,
  secret: Uint8Array,
): Promise<{ enc: Buffer; ciphertext: Buffer }> {
  const publicKey = (await suite.kem.importKey('raw', toArrayBuffer(recipient), true)) as unknown as HpkeKey;
  const sealed = await suite.seal({ recipientPublicKey: publicKey as never, info: infoOf(binding) }, secret);
  return { enc: Buffer.from(sealed.enc), ciphertext: Buffer.from(sealed.ct) };
}

/** Opens what {@link hpkeSeal} sealed; rejects (HPKE's OpenError) when anything differs. The caller wipes the result. */
export async function hpkeOpen(
  privateKey: Uint8Array,
  binding: SealBinding,
  enc: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Buffer> {
  const copy = toArrayBuffer(privateKey);
  try {
    const key = (await suite.kem.importKey('raw', copy, false)) as unknown as HpkeKey;
    const plain = await suite.open(
      { recipientKey: key as never, enc: toArrayBuffer(enc), info: infoOf(binding) },
      ciphertext,
    );
    const out = Buffer.alloc(plain.byteLength);
    out.set(new Uint8Array(plain));
    wipe(new Uint8Array(plain));
    return out;
  } finally {
    wipe(new Uint8Array(copy));
  }
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length);
  new Uint8Array(out).set(bytes);
  return out;
}
